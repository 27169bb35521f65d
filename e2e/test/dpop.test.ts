/**
 * Issue 16, in a real Chromium: DPoP sessions (`tessera/dpop`: the key in the origin's IndexedDB,
 * WebCrypto's non-extractable P-256 key) against a loopback token + resource server that verifies
 * every proof with jose (packages/tessera/test/servers/dpop-server.ts: signature, method, URL, iat
 * window, jti replay, ath, the key the tokens are bound to). The page is served by that server.
 */
import { rmSync } from 'node:fs';
import type { Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startDpopServer, type DpopServer } from '../../packages/tessera/test/servers/dpop-server.ts';
import type { StartOptions, TrafficCounts } from '../pages/app.ts';
import { launchBrowser, type LaunchedBrowser } from '../harness/browser.ts';
import { buildPages, clearProfile, openPage } from '../harness/pages.ts';

let server: DpopServer;
let browser: LaunchedBrowser;
let dir: string;
beforeAll(async () => {
  dir = await buildPages();
  [server, browser] = await Promise.all([startDpopServer({ accessTokenTtl: 2, staticDir: dir }), launchBrowser()]);
});
afterEach(async () => {
  if (browser) await clearProfile(browser, server.url);
  server?.reset();
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

const DPOP: StartOptions = { dpop: true };
const snapshot = (tab: Page) => tab.evaluate(() => window.harness.snapshot());
const thumbprint = (tab: Page) => tab.evaluate(() => window.harness.thumbprint());

/** `n` tabs: all start at once (their first use of the key races), then the first signs in and the others join it. */
async function openTabs(n: number, options: StartOptions): Promise<Page[]> {
  const tabs: Page[] = [];
  for (let i = 0; i < n; i++) tabs.push(await openPage(browser, server.url));
  await Promise.all(tabs.map((t) => t.evaluate((o) => window.harness.start(o), options)));
  await tabs[0]!.evaluate(() => window.harness.signIn('ada@example.test', 'pw'));
  for (const tab of tabs.slice(1)) await tab.evaluate(() => window.harness.engine().ready());
  return tabs;
}

describe('DPoP in Chromium', () => {
  it('5 tabs on a DPoP session: one key (made at once by all five), one refresh per window, 0 failed requests', async () => {
    const tabs = await openTabs(5, DPOP);
    // Every tab asks for the key at the same moment on a fresh profile: one key comes out.
    const prints = await Promise.all(tabs.map(thumbprint));
    expect(new Set(prints).size).toBe(1);
    server.reset();
    const started = Date.now();
    // One auth.fetch every 150 ms in each tab for 20 s, each bounded at 12 s; 2 s access tokens.
    const counts: TrafficCounts[] = await Promise.all(tabs.map((t) => t.evaluate(() => window.harness.traffic(20_000, 150, 12_000))));
    const elapsed = Date.now() - started;
    const { stats } = server;
    const sum = counts.reduce((a, c) => ({ sent: a.sent + c.sent, ok: a.ok + c.ok, failed: a.failed + c.failed, hung: a.hung + c.hung, errors: [...a.errors, ...c.errors] }), {
      sent: 0,
      ok: 0,
      failed: 0,
      hung: 0,
      errors: [] as string[],
    });
    const windows = elapsed / 1_500; // a 2 s token is refreshed a quarter of its life early
    console.log(`[dpop] 5 tabs x 20 s: ${elapsed} ms, windows ${windows.toFixed(1)}, refresh ${JSON.stringify(stats.refresh)}, api ${JSON.stringify(stats.api)}, traffic ${JSON.stringify({ ...sum, errors: sum.errors.length })}, refused ${JSON.stringify(stats.refused)}`);
    // One key in every proof the server verified, the one each tab holds.
    expect(server.keys()).toEqual([prints[0]]);
    expect(stats.bearer).toBe(0);
    // One refresh per window (I1 across tabs), never a refresh token spent twice or from another key.
    expect(stats.refresh).toMatchObject({ reused: 0, wrongKey: 0 });
    expect(stats.refresh.succeeded).toBe(stats.refresh.calls);
    expect(stats.refresh.calls).toBeLessThanOrEqual(Math.ceil(windows) + 1);
    expect(stats.refresh.calls).toBeGreaterThanOrEqual(Math.floor(elapsed / 1_700) - 1);
    // 0 failed: every request answered 200 (a proof the server refused would be a 401).
    expect(sum).toMatchObject({ failed: 0, hung: 0, errors: [] });
    expect(sum.ok).toBe(sum.sent);
    expect(stats.api.unauthorized).toBe(0);
    expect(stats.refused).toEqual({});
    expect((await Promise.all(tabs.map(snapshot))).map((s) => s.status)).toEqual(Array(5).fill('authenticated'));
  }, 180_000);

  it('a reload keeps the key and the session (sessionStorage); the next refresh, from the reloaded page, is bound to the same key', async () => {
    const options: StartOptions = { ...DPOP, storage: 'session' };
    const [tab] = await openTabs(1, options);
    const key = await thumbprint(tab!);
    expect((await tab!.evaluate(() => window.harness.fetchMany(3))).ok).toBe(3);
    await tab!.reload();
    await tab!.waitForFunction(() => typeof window.harness === 'object');
    await tab!.evaluate(async (o) => {
      window.harness.start(o);
      await window.harness.engine().ready();
    }, options);
    expect((await snapshot(tab!)).status).toBe('authenticated');
    expect(await thumbprint(tab!)).toBe(key);
    // Past the 2 s token: the reloaded page refreshes with the stored refresh token, proving with the same key.
    await new Promise((r) => setTimeout(r, 2_500));
    expect(await tab!.evaluate(() => window.harness.fetchMany(5))).toMatchObject({ ok: 5, failed: 0 });
    expect(server.stats.login).toBe(1); // no second sign-in
    expect(server.stats.refresh).toMatchObject({ succeeded: expect.any(Number), wrongKey: 0, reused: 0 });
    expect(server.stats.refresh.succeeded).toBeGreaterThanOrEqual(1);
    expect(server.keys()).toEqual([key]);
  }, 60_000);

  it('logout in one tab gives every tab a new key for the next session', async () => {
    const tabs = await openTabs(2, DPOP);
    const old = await thumbprint(tabs[0]!);
    await tabs[0]!.evaluate(() => window.harness.engine().logout());
    expect(server.stats.logout.jkts).toEqual([old]); // the logout call proved with the session's key
    await expect.poll(() => snapshot(tabs[1]!).then((s) => s.status)).toBe('unauthenticated');
    await tabs[1]!.evaluate(() => window.harness.signIn('ada@example.test', 'pw'));
    await expect.poll(() => snapshot(tabs[0]!).then((s) => s.status)).toBe('authenticated');
    server.reset();
    for (const tab of tabs) expect((await tab.evaluate(() => window.harness.fetchMany(2))).ok).toBe(2);
    const [fresh] = server.keys('/api/');
    expect(server.keys('/api/')).toHaveLength(1);
    expect(fresh).not.toBe(old);
    expect(await Promise.all(tabs.map(thumbprint))).toEqual([fresh, fresh]);
  }, 60_000);
});
