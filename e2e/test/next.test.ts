/**
 * examples/next (Next.js App Router) in a real Chromium: Tessera installed from its packed
 * tarball, `next build` (strict type-check, prerender), `next start`, and the reference server
 * behind the app's `rewrites()`. Between Next and the server sits a door that writes down every
 * request the server received (method, path, Authorization, status): "seen by the server" below.
 */
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger, startServer, type RunningServer } from '../../packages/server/src/index.ts';
import { launchBrowser, openWindow, type LaunchedBrowser } from '../harness/browser.ts';
import { freeze, resume } from '../harness/lifecycle.ts';
import { buildNextApp, installNextApp, packTessera, startNextApp, type RunningNextApp } from '../harness/next-app.ts';

const TTL = 3; // seconds: the access token lifetime on the server
const EMAIL = `next-${Date.now()}@example.test`;
const PASSWORD = 'correct horse battery';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Seen {
  /** When the request arrived (performance.now()). */
  at: number;
  method: string;
  path: string;
  authorization: string | null;
  status: number | null;
}

/** A pass-through proxy in front of `target` that records every request it forwards. */
async function startDoor(target: string): Promise<{ url: string; seen: Seen[]; server: Server }> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    const entry: Seen = { at: performance.now(), method: req.method ?? '', path: req.url ?? '', authorization: req.headers.authorization ?? null, status: null };
    seen.push(entry);
    const upstream = request(`${target}${req.url}`, { method: req.method, headers: req.headers }, (answer) => {
      entry.status = answer.statusCode ?? null;
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, server };
}

describe('examples/next', () => {
  let server: RunningServer;
  let door: Awaited<ReturnType<typeof startDoor>>;
  let app: RunningNextApp;
  let launched: LaunchedBrowser;
  let page: Page;
  let buildOutput = '';
  const browserRequests: { url: string; authorization: string | null }[] = [];
  const consoleErrors: string[] = [];

  beforeAll(async () => {
    const log = (line: string) => console.log(line);
    // The token server (PGlite start) while the library builds and the example installs.
    const serverStarting = startServer({ port: 0, host: '127.0.0.1', accessTokenTtl: TTL, scryptCost: 1024, logger: silentLogger });
    serverStarting.catch(() => {});
    const integrity = await packTessera(log);
    await installNextApp(integrity, log);
    server = await serverStarting;
    door = await startDoor(server.url);
    buildOutput = await buildNextApp(door.url, log);
    [app, launched] = await Promise.all([startNextApp(door.url), launchBrowser()]);
    const registered = await fetch(`${server.url}/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: EMAIL, password: PASSWORD, name: 'Next User' }),
    });
    expect(registered.status).toBe(201);
    page = await openWindow(launched);
    page.setDefaultTimeout(15_000);
    page.on('request', (r) => {
      const entry = { url: r.url(), authorization: null as string | null };
      browserRequests.push(entry);
      void r.allHeaders().then((h) => (entry.authorization = h.authorization ?? null));
    });
    page.on('pageerror', (e) => consoleErrors.push(e.message));
    page.on('console', (m) => {
      // A refused login is a 401 the browser logs by itself; anything else is a failure (hydration mismatches included).
      if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) consoleErrors.push(m.text());
    });
  }, 1_200_000);

  afterAll(async () => {
    await launched?.close();
    await app?.close();
    door?.server.closeAllConnections();
    await new Promise((r) => door?.server.close(r) ?? r(null));
    await server?.close();
  }, 30_000);

  const items = () => page.getByRole('list', { name: 'items' }).getByRole('listitem').allTextContents();
  const since = (mark: number) => door.seen.slice(mark);

  it('next build type-checks strictly and prerenders both pages, which render `initializing` on the server', async () => {
    expect(buildOutput).toMatch(/Finished TypeScript/);
    expect(buildOutput).toMatch(/○ \/\n/);
    expect(buildOutput).toMatch(/○ \/items/);
    for (const path of ['/', '/items']) {
      const html = await (await fetch(`${app.url}${path}`)).text();
      // SSR: the provider's server snapshot is `initializing`: no form, no private data, no token.
      expect(html).toContain('Restoring session…');
      expect(html).not.toContain('<form');
      expect(html).not.toContain('alpha');
    }
  });

  it('signs in through the rewrites: the server’s refusal shows through useAuthAction, then the protected query shows data', async () => {
    await page.goto(`${app.url}/`);
    await page.getByLabel('Email').fill(EMAIL);
    await page.getByLabel('Password').fill('wrong password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.locator('form').getByRole('alert').textContent()).toBe('The e-mail or password is incorrect.');

    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${app.url}/items`);
    await expect.poll(items).toEqual(['alpha', 'beta', 'gamma']);
    await expect.poll(() => page.getByText(`Signed in as ${EMAIL}`).count()).toBe(1);

    // Same origin: the page talked to Next only; the server got the login and the query through the rewrites.
    expect(browserRequests.every((r) => r.url.startsWith(`${app.url}/`))).toBe(true);
    expect(door.seen.filter((s) => s.method === 'POST' && s.path === '/auth/login').map((s) => s.status)).toEqual([401, 200]);
    expect(door.seen.find((s) => s.path === '/api/data' && s.status === 200)?.authorization).toMatch(/^Bearer ey/);
  });

  it('I1, P14: a request after the token expired (the tab slept past it) succeeds, with exactly one refresh seen by the server', async () => {
    const tokenBefore = door.seen.filter((s) => s.path === '/api/data').at(-1)!.authorization;
    // A frozen tab runs no timers: the token it holds expires with no proactive refresh.
    await freeze(page);
    await sleep(TTL * 1000 + 1_000);
    const mark = door.seen.length;
    await resume(page); // back to the tab: TanStack Query refetches on focus
    await page.getByRole('button', { name: 'Reload' }).click();
    await expect.poll(() => since(mark).some((s) => s.path === '/api/data' && s.status === 200), { timeout: 15_000 }).toBe(true);
    await expect.poll(items).toEqual(['alpha', 'beta', 'gamma']);
    // Freeze again so that what the tab sent is final, and let whatever is in flight land.
    await freeze(page);
    await sleep(1_000);

    const after = since(mark);
    const refreshes = after.filter((s) => s.path === '/auth/refresh');
    const data = after.filter((s) => s.path === '/api/data');
    // Exactly one refresh before the first request that succeeded, and none after it until the new
    // token's own proactive refresh was due (¾ of its lifetime after it arrived).
    expect(refreshes.filter((s) => s.at <= data.find((d) => d.status === 200)!.at)).toHaveLength(1);
    const [refresh, ...later] = refreshes;
    expect(`${refresh!.method} ${refresh!.status}`).toBe('POST 200');
    expect(later.filter((s) => s.at < refresh!.at + 0.75 * TTL * 1000)).toEqual([]);
    // Held until the refresh, not sent with the expired token (no 401), then sent with the new one.
    expect(data[0]!.at).toBeGreaterThan(refresh!.at);
    expect(data.map((s) => s.status)).toEqual(data.map(() => 200));
    expect(data[0]!.authorization).not.toBe(tokenBefore);
    const stats = server.stats.snapshot();
    expect(stats.api.unauthorized).toBe(0);
    expect(stats.refresh.reuseDetected).toBe(0);
    expect(stats.refresh.invalidGrant).toBe(0);
    await resume(page);
  }, 60_000);

  it('I4: sign-out drops the private data from the page, and no request after it carries the token', async () => {
    const mark = door.seen.length;
    const browserMark = browserRequests.length;
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(`${app.url}/`);
    await expect.poll(() => page.getByLabel('Email').count()).toBe(1);
    expect(await page.content()).not.toContain('alpha');
    // Give a leaked timer or query every chance: past a token lifetime, then a sleep and a return
    // to the tab (TanStack Query refetches on focus, the engine re-checks its token).
    await sleep(TTL * 1000 + 500);
    await freeze(page);
    await resume(page);
    await sleep(1_000);
    expect(await page.content()).not.toContain('alpha');

    // The sign-out tells the server with the token (POST /auth/logout revokes the refresh token);
    // after it, nothing carries a token, nothing asks for private data or a refresh.
    // (Requests the page sent before the click may still land after `mark`: they are not counted.)
    const logout = since(mark).findIndex((s) => s.method === 'POST' && s.path === '/auth/logout');
    expect(logout).toBeGreaterThanOrEqual(0);
    expect(since(mark)[logout]).toMatchObject({ status: 204, authorization: expect.stringMatching(/^Bearer ey/) });
    const afterLogout = since(mark).slice(logout + 1);
    expect(afterLogout.filter((s) => s.authorization !== null || s.path.startsWith('/api/') || s.path === '/auth/refresh')).toEqual([]);
    const fromPage = browserRequests.slice(browserMark);
    const pageLogout = fromPage.findIndex((r) => new URL(r.url).pathname === '/auth/logout');
    expect(pageLogout).toBeGreaterThanOrEqual(0);
    expect(fromPage.slice(pageLogout + 1).filter((r) => r.authorization !== null)).toEqual([]);
    expect(consoleErrors).toEqual([]);
  }, 60_000);
});
