/**
 * The token server as a user gets it (issue 14): `npm pack` of packages/server, the tarball
 * installed in an empty temp folder, `npx tessera-server --port 0 --cors-origin <page origin>`,
 * and a page served from another 127.0.0.1 origin that signs in, refreshes and calls the API
 * through tessera's httpAuthority. A page from an origin not in the setting gets nowhere.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, type LaunchedBrowser } from '../harness/browser.ts';
import { buildPages, openPage } from '../harness/pages.ts';
import { run } from '../harness/next-app.ts';

const serverPackage = fileURLToPath(new URL('../../packages/server', import.meta.url));
const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8' };

/** A static server for `dir` on 127.0.0.1: a page origin of its own. */
async function servePages(dir: string): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const file = join(dir, path === '/' ? 'index.html' : path.slice(1));
    if (!file.startsWith(dir) || !existsSync(file)) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

const close = (server?: Server) => new Promise((resolve) => (server ? (server.closeAllConnections(), server.close(resolve)) : resolve(null)));

/** `npx tessera-server …` in `cwd`, its own process group; resolves the URL it printed (bounded). */
function startInstalled(cwd: string, args: string[], env: Record<string, string> = {}, timeoutMs = 90_000): Promise<{ url: string; child: ChildProcess; output: () => string }> {
  const child = spawn('npx', ['--no-install', 'tessera-server', ...args], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tessera-server printed no URL in ${timeoutMs} ms:\n${out}`)), timeoutMs);
    const onData = (d: Buffer) => {
      out += d;
      const found = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      // The started lines come in more than one write: wait for the settings line too.
      if (found && /CORS origins: .*\n/.test(out)) {
        clearTimeout(timer);
        resolve({ url: found[1]!, child, output: () => out });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`tessera-server exited (${code}):\n${out}`));
    });
  });
}

function stop(child?: ChildProcess): Promise<void> {
  if (!child?.pid || child.exitCode !== null) return Promise.resolve();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const kill = (signal: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, signal);
    } catch {
      // gone already
    }
  };
  kill('SIGTERM');
  return Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]).then(() => kill('SIGKILL'));
}

describe('@tessera/server from its packed tarball', () => {
  let folder: string;
  let pagesDir: string;
  let app: { url: string; server: Server };
  let stranger: { url: string; server: Server };
  let tessera: Awaited<ReturnType<typeof startInstalled>>;
  let withCookie: Awaited<ReturnType<typeof startInstalled>>;
  let launched: LaunchedBrowser;

  beforeAll(async () => {
    folder = mkdtempSync(join(tmpdir(), 'tessera-server-install-'));
    // The build is what `prepack` runs; done first so that the pack's output is only its JSON.
    await run('npm', ['run', 'build'], { cwd: serverPackage, timeoutMs: 180_000 });
    const [packed] = JSON.parse(await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', folder], { cwd: serverPackage, timeoutMs: 60_000 })) as { filename: string; files: { path: string }[] }[];
    expect(packed!.files.map((f) => f.path)).toEqual(expect.arrayContaining(['dist/cli.js', 'dist/index.js', 'dist/index.d.ts', 'README.md']));
    expect(packed!.files.filter((f) => f.path.startsWith('src/') || f.path.startsWith('test/'))).toEqual([]);
    await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', `./${packed!.filename}`], { cwd: folder, timeoutMs: 300_000 });
    pagesDir = await buildPages();
    [app, stranger] = await Promise.all([servePages(pagesDir), servePages(pagesDir)]);
    [tessera, withCookie, launched] = await Promise.all([
      startInstalled(folder, ['--port', '0', '--cors-origin', app.url, '--access-ttl', '30']),
      startInstalled(folder, ['--port', '0', '--refresh-token', 'cookie', '--data-dir', 'cookie-data'], { TESSERA_CORS_ORIGINS: app.url }),
      launchBrowser(),
    ]);
  }, 600_000);

  afterAll(async () => {
    await launched?.close();
    await Promise.all([stop(tessera?.child), stop(withCookie?.child)]);
    await Promise.all([close(app?.server), close(stranger?.server)]);
    if (pagesDir) rmSync(pagesDir, { recursive: true, force: true });
    if (folder) rmSync(folder, { recursive: true, force: true });
  }, 60_000);

  it('starts with --port 0 on a real port, keeps its data in the working directory, not in the package', () => {
    expect(tessera.url).toMatch(/^http:\/\/127\.0\.0\.1:[1-9]\d*$/);
    expect(tessera.output()).toContain(`CORS origins: ${app.url}`);
    expect(existsSync(join(folder, '.tessera-data', 'pglite'))).toBe(true);
    expect(existsSync(join(folder, 'node_modules/@tessera/server/.tessera-data'))).toBe(false);
  });

  it('a page on the listed origin signs in, refreshes and calls the API through httpAuthority', async () => {
    const page: Page = await openPage(launched, app.url);
    const api = tessera.url;
    const result = await page.evaluate(async (api) => {
      const h = window.harness;
      h.start({ baseUrl: `${api}/auth`, allowedOrigins: [api] });
      await h.signIn(`cross-${Date.now()}@example.test`, 'correct horse battery');
      const signedIn = h.snapshot();
      await h.engine().refresh();
      const refreshed = h.snapshot();
      const res = await h.engine().fetch(`${api}/api/data`);
      return { signedIn, refreshed, status: res.status, body: (await res.json()) as { sub: string; items: unknown[] }, events: h.events.map((e) => e.type) };
    }, api);
    expect(result.signedIn.status).toBe('authenticated');
    expect(result.refreshed).toMatchObject({ status: 'authenticated', error: null });
    expect(result.refreshed.generation).toBeGreaterThan(result.signedIn.generation);
    expect(result.events).toEqual(expect.arrayContaining(['login', 'refresh']));
    expect(result.status).toBe(200);
    expect(result.body.sub).toBe((result.refreshed.user as { id: string }).id);
    await page.close();
  });

  it('with the refresh token in an httpOnly cookie (CORS with credentials), the page signs in and refreshes', async () => {
    expect(withCookie.output()).toContain(`CORS origins: ${app.url}; refresh token in the cookie`);
    const page = await openPage(launched, app.url);
    const result = await page.evaluate(async (api) => {
      const h = window.harness;
      h.start({ baseUrl: `${api}/auth`, allowedOrigins: [api], refreshToken: 'cookie' });
      await h.signIn(`cookie-${Date.now()}@example.test`, 'correct horse battery');
      const signedIn = h.snapshot();
      await h.engine().refresh();
      const refreshed = h.snapshot();
      const res = await h.engine().fetch(`${api}/api/data`);
      return { signedIn, refreshed, status: res.status, cookieVisible: document.cookie.includes('tessera_refresh') };
    }, withCookie.url);
    expect(result.signedIn.status).toBe('authenticated');
    expect(result.refreshed).toMatchObject({ status: 'authenticated', error: null });
    expect(result.refreshed.generation).toBeGreaterThan(result.signedIn.generation);
    expect(result.status).toBe(200);
    expect(result.cookieVisible).toBe(false);
    await page.close();
  });

  it('a page on an origin not in the setting cannot sign in (no CORS headers, the browser refuses)', async () => {
    const page = await openPage(launched, stranger.url);
    const outcome = await page.evaluate(async (api) => {
      const h = window.harness;
      h.start({ baseUrl: `${api}/auth`, allowedOrigins: [api] });
      try {
        await h.signIn(`stranger-${Date.now()}@example.test`, 'correct horse battery');
        return 'signed in';
      } catch (error) {
        return (error as { code?: string }).code ?? String(error);
      }
    }, tessera.url);
    expect(outcome).toBe('NETWORK_ERROR');
    await page.close();
  });
});
