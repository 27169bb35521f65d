/**
 * Finding and launching a real Chromium without a browser download.
 *
 * Which binary: env `TESSERA_CHROMIUM` (a path; or `@sparticuz/chromium` to force the fallback) →
 * `/usr/bin/chromium` (Debian's package, what `.ci/run` installs) → `@sparticuz/chromium`'s
 * `executablePath()` (the binary ships inside the npm package and unpacks to /tmp in ~2 s on first use).
 *
 * How: the harness starts Chromium itself (headless, `--remote-debugging-port=0`, a fresh
 * `--user-data-dir` in /tmp per launch, removed on close) and attaches playwright-core with
 * `chromium.connectOverCDP(url, { noDefaults: true })`. Not `chromium.launch`: Playwright turns on
 * focus emulation for every page it creates, which keeps pages "visible", and Chromium refuses to
 * freeze a visible page, so `Page.setWebLifecycleState({ state: 'frozen' })` silently does nothing.
 * With `noDefaults`, pages of the browser's default context (`profile`) get no such override.
 *
 * Contexts: `profile` is the one browser profile (a persistent context on the fresh user-data-dir):
 * its pages are tabs that share localStorage, cookies, BroadcastChannel and Web Locks, and they can
 * be frozen. `browser.newContext()` gives an isolated incognito-like profile (nothing shared with
 * `profile`), but Playwright's overrides apply there, so its pages cannot be frozen.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

/** Flags for a machine with no internet and no GPU; without the background-networking ones Chromium keeps dialling out. */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--no-default-browser-check',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-domain-reliability',
  '--disable-breakpad',
  '--disable-extensions',
  '--disable-features=Translate,MediaRouter,OptimizationHints',
  '--no-pings',
  '--password-store=basic',
  '--use-mock-keychain',
  '--disable-dev-shm-usage',
  '--mute-audio',
  '--hide-scrollbars',
];

export interface ChromiumLocation {
  executablePath: string;
  source: 'TESSERA_CHROMIUM' | '/usr/bin/chromium' | '@sparticuz/chromium';
}

/** Where the Chromium binary is (see the module comment for the order). Unpacks @sparticuz/chromium if that is the one. */
export async function findChromium(): Promise<ChromiumLocation> {
  const fromEnv = process.env.TESSERA_CHROMIUM;
  if (fromEnv && fromEnv !== '@sparticuz/chromium') {
    if (!existsSync(fromEnv)) throw new Error(`TESSERA_CHROMIUM=${fromEnv} does not exist`);
    return { executablePath: fromEnv, source: 'TESSERA_CHROMIUM' };
  }
  if (!fromEnv && existsSync('/usr/bin/chromium')) return { executablePath: '/usr/bin/chromium', source: '/usr/bin/chromium' };
  const { default: sparticuz } = await import('@sparticuz/chromium');
  return { executablePath: await sparticuz.executablePath(), source: '@sparticuz/chromium' };
}

/** `chromium --version`, bounded to 10 s. */
export function chromiumVersion(executablePath: string): Promise<string> {
  return new Promise((resolve) => {
    execFile(executablePath, ['--version', ...CHROMIUM_ARGS], { timeout: 10_000 }, (error, stdout) =>
      resolve(error ? `unknown (${error.message.split('\n')[0]})` : stdout.trim()),
    );
  });
}

/** A running Chromium. */
export interface LaunchedBrowser {
  browser: Browser;
  /** The default context: one profile whose pages are tabs that can be frozen. */
  profile: BrowserContext;
  executablePath: string;
  /** e.g. `156.0.8078.108` */
  version: string;
  /** Asks Chromium to quit (`Browser.close`), ends its process group (SIGKILL after 5 s) and deletes the profile dir. Idempotent. */
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const running = new Set<ChildProcess>();
process.once('exit', () =>
  running.forEach((p) => {
    try {
      if (p.pid) process.kill(-p.pid, 'SIGKILL');
    } catch {}
  }),
);

let logged = false;

/**
 * Starts headless Chromium with a fresh profile and attaches Playwright (see the module comment).
 * Logs which binary once per process (the vitest global setup logs it once per run and sets
 * `TESSERA_E2E_QUIET`).
 */
export async function launchBrowser(options: { args?: string[]; timeoutMs?: number } = {}): Promise<LaunchedBrowser> {
  const timeoutMs = options.timeoutMs ?? 90_000; // Chromium takes its time on a busy machine
  const { executablePath, source } = await findChromium();
  const userDataDir = mkdtempSync(join(tmpdir(), 'tessera-e2e-profile-'));
  const args = [
    '--headless',
    '--remote-debugging-address=127.0.0.1',
    '--remote-debugging-port=0',
    `--user-data-dir=${userDataDir}`,
    '--window-size=800,600',
    ...CHROMIUM_ARGS,
    ...(options.args ?? []),
    'about:blank',
  ];
  // Its own process group, so that closing ends every Chromium process we started (renderers,
  // GPU, network service), not only the main one, before the profile dir is deleted.
  const child = spawn(executablePath, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  running.add(child);
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => void (stderr = (stderr + d.toString()).slice(-4_000)));
  let exitedAlready = false;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exitedAlready = true;
      running.delete(child);
      resolve();
    }),
  );
  const killGroup = (signal: NodeJS.Signals) => {
    try {
      if (child.pid) process.kill(-child.pid, signal);
    } catch {
      // ESRCH: the group is gone already.
    }
  };

  let closing: Promise<void> | undefined;
  const close = (browser?: Browser) =>
    (closing ??= (async () => {
      if (browser?.isConnected()) {
        // A clean exit first: Chromium flushes the profile and quits.
        const cdp = await browser.newBrowserCDPSession().catch(() => undefined);
        await Promise.race([cdp?.send('Browser.close').catch(() => {}), sleep(3_000)]);
        await browser.close().catch(() => {});
      }
      if (!exitedAlready) killGroup('SIGTERM');
      await Promise.race([exited, sleep(5_000)]);
      killGroup('SIGKILL');
      await Promise.race([exited, sleep(2_000)]);
      // Stragglers of the group may still be writing for a moment: retry for up to 3 s.
      for (let attempt = 0; ; attempt++) {
        try {
          rmSync(userDataDir, { recursive: true, force: true });
          break;
        } catch (error) {
          if (attempt >= 30) throw error;
          await sleep(100);
        }
      }
    })());

  try {
    // Chromium writes its DevTools port into the profile once it listens.
    const portFile = join(userDataDir, 'DevToolsActivePort');
    const deadline = Date.now() + timeoutMs;
    while (!existsSync(portFile) || !readFileSync(portFile, 'utf8').includes('\n')) {
      if (exitedAlready) throw new Error(`Chromium exited at start:\n${stderr}`);
      if (Date.now() > deadline) throw new Error(`Chromium did not open its DevTools port in ${timeoutMs} ms:\n${stderr}`);
      await sleep(50);
    }
    const port = Number(readFileSync(portFile, 'utf8').split('\n')[0]);
    const browser = await chromium.connectOverCDP(`http://127.0.0.1:${port}`, { noDefaults: true, timeout: timeoutMs });
    const profile = browser.contexts()[0];
    if (!profile) throw new Error('Chromium has no default context');
    // The about:blank tab Chromium opened with: not needed.
    await Promise.all(profile.pages().map((p) => p.close()));
    const version = browser.version();
    if (!logged && !process.env.TESSERA_E2E_QUIET) {
      logged = true;
      console.log(`e2e: Chromium ${version} from ${source} (${executablePath})`);
    }
    return {
      browser,
      profile,
      executablePath,
      version,
      close: () => close(browser),
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/**
 * A new tab of `profile` in a window of its own, left on about:blank. A second tab in one window
 * would make the first a hidden background tab (throttled timers, no requestAnimationFrame): pages
 * of `profile` get none of Playwright's focus emulation that otherwise keeps every page visible.
 */
export async function openWindow({ browser, profile }: { browser: Browser; profile: BrowserContext }): Promise<Page> {
  const cdp = await browser.newBrowserCDPSession();
  try {
    const { targetId } = await cdp.send('Target.createTarget', { url: 'about:blank', newWindow: true });
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      for (const page of profile.pages()) {
        const session = await profile.newCDPSession(page);
        const { targetInfo } = await session.send('Target.getTargetInfo').finally(() => session.detach().catch(() => {}));
        if (targetInfo.targetId === targetId) return page;
      }
      await sleep(20);
    }
    throw new Error('the new window did not show up as a page');
  } finally {
    await cdp.detach().catch(() => {});
  }
}
