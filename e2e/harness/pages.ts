/**
 * The test stack: the page bundle (esbuild) in a temp dir, the reference server serving it on
 * 127.0.0.1 (a secure context, so Web Locks and BroadcastChannel exist), and a browser.
 *
 * @example
 * const stack = await startStack({ accessTokenTtl: 30 });
 * const a = await stack.newPage();             // a tab of the browser's one profile
 * const b = await stack.newPage();             // another tab: shares locks, channels, storage with a
 * await a.evaluate(() => window.harness.start({ storage: 'local' }));
 * await stack.resetProfile();                  // between tests: close the tabs, clear the origin's data
 * await stack.close();
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { silentLogger, startServer, type FaultSettings, type RunningServer, type ServerOptions, type StatsSnapshot } from '../../packages/server/src/index.ts';
import { launchBrowser, openWindow, type LaunchedBrowser } from './browser.ts';

const here = dirname(fileURLToPath(import.meta.url));

const INDEX_HTML = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Tessera e2e</title>
<style>body{font:16px system-ui,sans-serif;margin:2rem;color:#123}h1{font-size:1.4rem}#status{padding:.5rem 1rem;background:#e8f0fe;border-radius:6px;display:inline-block}</style>
</head>
<body><h1>Tessera e2e page</h1><p>Session: <span id="status">loading</span></p>
<script type="module" src="/app.js"></script></body>
</html>
`;

/** Bundles e2e/pages/app.ts and writes `app.js` + `index.html` into a new temp dir. Returns the dir. */
export async function buildPages(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-e2e-pages-'));
  await build({
    entryPoints: [join(here, '../pages/app.ts')],
    outfile: join(dir, 'app.js'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'chrome120',
    sourcemap: 'inline',
    logLevel: 'silent',
  });
  writeFileSync(join(dir, 'index.html'), INDEX_HTML);
  return dir;
}

export interface NewPageOptions {
  /** Open the page in this context. @default `stack.profile` (tabs of one profile; freezable) */
  context?: BrowserContext;
  /** Runs before the page loads, e.g. `(page) => page.clock.install()`. */
  beforeLoad?: (page: Page) => Promise<void>;
}

export interface Stack {
  server: RunningServer;
  /** The server's origin, e.g. `http://127.0.0.1:41234`. */
  url: string;
  browser: Browser;
  /** The browser's default context: one profile; its pages are tabs that share storage, BroadcastChannel and Web Locks, and can be frozen. */
  profile: BrowserContext;
  /** Chromium's version, e.g. `156.0.8078.108`. */
  version: string;
  /** A new isolated context (another, incognito-like profile; shares nothing with `profile`). Its pages cannot be frozen. */
  newContext(): Promise<BrowserContext>;
  /** A page with the test page loaded and `window.harness` ready (see {@link NewPageOptions}). */
  newPage(options?: NewPageOptions): Promise<Page>;
  /** GET /__stats. */
  stats(): Promise<StatsSnapshot>;
  /** POST /__stats/reset. */
  resetStats(): Promise<void>;
  /** POST /__faults (applies to POST /auth/refresh; omitted fields take their defaults, `{}` clears). Resolves the settings in force. */
  faults(settings: Partial<FaultSettings>): Promise<FaultSettings>;
  /** Closes every tab of `profile` and clears the server origin's cookies, localStorage and IndexedDB there. */
  resetProfile(): Promise<void>;
  /** Closes the browser, the server and removes the page dir. Idempotent. */
  close(): Promise<void>;
}

/**
 * Builds the page, starts the reference server (`faults: true`, `scryptCost: 1024`, silent logger
 * unless overridden) serving it, and launches Chromium.
 */
export async function startStack(serverOptions: ServerOptions = {}): Promise<Stack> {
  const dir = await buildPages();
  // The server (PGlite start, ~3 s) and Chromium start side by side.
  const [serverResult, browserResult] = await Promise.allSettled([
    startServer({ port: 0, host: '127.0.0.1', faults: true, scryptCost: 1024, logger: silentLogger, ...serverOptions, staticDir: dir }),
    launchBrowser(),
  ]);
  if (serverResult.status === 'rejected' || browserResult.status === 'rejected') {
    if (serverResult.status === 'fulfilled') await serverResult.value.close();
    if (browserResult.status === 'fulfilled') await browserResult.value.close();
    rmSync(dir, { recursive: true, force: true });
    throw serverResult.status === 'rejected' ? serverResult.reason : (browserResult as PromiseRejectedResult).reason;
  }
  const server: RunningServer = serverResult.value;
  const launched: LaunchedBrowser = browserResult.value;
  const url = server.url;
  const { browser, profile } = launched;
  const b = launched;
  const s = server;

  const newContext = () => browser.newContext({ baseURL: url, viewport: { width: 800, height: 600 } });
  let closing: Promise<void> | undefined;
  return {
    server: s,
    url,
    browser,
    profile,
    version: launched.version,
    newContext,
    newPage: (options) => openPage(launched, url, options),
    async stats() {
      const res = await fetch(`${url}/__stats`, { signal: AbortSignal.timeout(5_000) });
      return (await res.json()) as StatsSnapshot;
    },
    async resetStats() {
      await fetch(`${url}/__stats/reset`, { method: 'POST', signal: AbortSignal.timeout(5_000) });
    },
    async faults(settings) {
      const res = await fetch(`${url}/__faults`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(settings),
        signal: AbortSignal.timeout(5_000),
      });
      if (!res.ok) throw new Error(`POST /__faults answered ${res.status}: ${await res.text()}`);
      return (await res.json()) as FaultSettings;
    },
    resetProfile: () => clearProfile(launched, url),
    close() {
      closing ??= (async () => {
        await b.close().catch(() => {});
        await s.close();
        rmSync(dir, { recursive: true, force: true });
      })();
      return closing;
    },
  };
}

/**
 * A tab with the test page of `url` loaded and `window.harness` ready: by default a tab of the
 * browser's profile in a window of its own (see openWindow), else a page of `context`.
 */
export async function openPage(launched: LaunchedBrowser, url: string, { context = launched.profile, beforeLoad }: NewPageOptions = {}): Promise<Page> {
  const page = context === launched.profile ? await openWindow(launched) : await context.newPage();
  page.setDefaultTimeout(10_000);
  await beforeLoad?.(page);
  await page.goto(`${url}/`, { timeout: 10_000 });
  await page.waitForFunction(() => typeof window.harness === 'object', undefined, { timeout: 10_000 });
  return page;
}

/** Closes every tab of the profile and clears `url`'s cookies, localStorage, sessionStorage and IndexedDB there. */
export async function clearProfile(launched: LaunchedBrowser, url: string): Promise<void> {
  const { profile } = launched;
  await Promise.all(profile.pages().map((p) => p.close()));
  await profile.clearCookies();
  const page = await openWindow(launched);
  await page.goto(`${url}/`, { timeout: 10_000 });
  await page.evaluate(async () => {
    localStorage.clear();
    sessionStorage.clear();
    await Promise.all((await indexedDB.databases()).map((db) => db.name && indexedDB.deleteDatabase(db.name)));
  });
  await page.close();
}

/**
 * One stack for the tests of the enclosing `describe` (or file): started before them, its profile
 * reset after each test (unless `resetProfile: false`), closed after them all. The returned stack
 * is filled in by `beforeAll`, so use it inside tests and hooks only.
 *
 * @example
 * describe('two tabs', () => {
 *   const stack = useStack({ accessTokenTtl: 8 });
 *   it('…', async () => { const a = await stack.newPage(); … });
 * });
 */
export function useStack(serverOptions: ServerOptions = {}, { resetProfile = true }: { resetProfile?: boolean } = {}): Stack {
  const stack = {} as Stack;
  let started = false;
  beforeAll(async () => {
    Object.assign(stack, await startStack(serverOptions));
    started = true;
  });
  if (resetProfile)
    afterEach(async () => {
      if (started) await stack.resetProfile();
    });
  afterAll(async () => {
    if (started) await stack.close();
  });
  return stack;
}
