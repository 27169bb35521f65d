/**
 * Issue 4, in a real Chromium against the reference server and its counters: one session shared
 * by the tabs (pages of `stack.profile`) of one browser profile. Memory-only tokens, the engine's
 * defaults (BroadcastChannel + Web Locks), `harness.traffic` for continuous authed requests.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { StartOptions, TrafficCounts } from '../pages/app.ts';
import { freeze, poll, resume, within } from '../harness/lifecycle.ts';
import { startStack, useStack, type Stack } from '../harness/pages.ts';

const PASSWORD = 'correct horse battery';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let users = 0;

/** `n` tabs: the first registers and logs in, the others start after it and join its session. */
async function openTabs(stack: Stack, n: number, options: StartOptions = {}): Promise<Page[]> {
  const tabs: Page[] = [];
  for (let i = 0; i < n; i++) tabs.push(await stack.newPage());
  const [first, ...rest] = tabs;
  const email = `sessions-${Date.now()}-${users++}@example.test`;
  await first!.evaluate(
    async ([o, email, password]) => {
      window.harness.start(o);
      await window.harness.signIn(email, password);
    },
    [options, email, PASSWORD] as const,
  );
  for (const tab of rest)
    await tab.evaluate(async (o) => {
      window.harness.start(o);
      await window.harness.engine().ready();
    }, options);
  return tabs;
}

/** Largest minus smallest; NaN (failing any bound) when a value is not a number (a tab that did not answer). */
const spread = (xs: unknown[]) => {
  const ns = xs.map((x) => (typeof x === 'number' ? x : NaN));
  return Math.max(...ns) - Math.min(...ns);
};
const snapshots = (tabs: Page[]) => Promise.all(tabs.map((t) => within(t.evaluate(() => window.harness.snapshot()), 2_000, null)));

/** Sums the per-tab traffic counts. */
function total(counts: TrafficCounts[]): TrafficCounts {
  const sum: TrafficCounts = { sent: 0, ok: 0, failed: 0, hung: 0, maxMs: 0, wire: 0, statuses: {}, errors: [] };
  for (const c of counts) {
    sum.sent += c.sent;
    sum.wire += c.wire;
    sum.ok += c.ok;
    sum.failed += c.failed;
    sum.hung += c.hung;
    sum.maxMs = Math.max(sum.maxMs, Math.round(c.maxMs));
    for (const [status, k] of Object.entries(c.statuses)) sum.statuses[status] = (sum.statuses[status] ?? 0) + k;
    sum.errors.push(...c.errors);
  }
  return sum;
}

/** Waits (bounded) until exactly one tab has a POST /auth/refresh in flight; returns its index, or -1. */
async function refreshingTab(tabs: Page[], timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const pending = await Promise.all(tabs.map((t) => within(t.evaluate(() => window.harness.pending('/auth/refresh')), 1_000, 0)));
    const busy = pending.flatMap((k, i) => (k > 0 ? [i] : []));
    if (busy.length > 0) {
      // I1 across tabs: the tab holding the lock is the only one talking to the token endpoint.
      expect(busy).toHaveLength(1);
      return busy[0]!;
    }
    await sleep(20);
  }
  return -1;
}

/**
 * Zeroes the counters, slows the token endpoint to 1.5 s and waits (bounded) for the tab whose
 * refresh is in flight: the one that got the lock. Returns it (`holder`, index `h`), the others,
 * and their generations before that refresh lands.
 */
async function refreshUnderWay(stack: Stack, tabs: Page[]) {
  await stack.resetStats();
  await stack.faults({ latencyMs: 1_500 });
  const h = await refreshingTab(tabs, 10_000);
  expect(h).toBeGreaterThanOrEqual(0);
  const holder = tabs[h]!;
  const others = tabs.filter((t) => t !== holder);
  const generations = (await snapshots(others)).map((s) => s!.generation);
  return { h, holder, others, generations };
}

describe('5 tabs, 2 s access tokens, 30 s of continuous traffic', () => {
  // No reuse grace here: two tabs spending one refresh token would show as reuseDetected and
  // revoke the family.
  const stack = useStack({ accessTokenTtl: 2 }, { resetProfile: false });

  it('I1/I2: one refresh per window across 5 tabs, no reuse, no failed or hung request, no 401 served', async () => {
    const tabs = await openTabs(stack, 5);
    await stack.resetStats();
    const started = Date.now();
    // One auth.fetch every 150 ms in each tab (~200 a tab), each bounded at 12 s (retry.timeout + margin).
    const counts = await Promise.all(tabs.map((t) => t.evaluate(() => window.harness.traffic(30_000, 150, 12_000))));
    const elapsed = Date.now() - started;
    const stats = await stack.stats();
    const sum = total(counts);
    const snaps = await snapshots(tabs);
    // A 2 s token is refreshed a quarter of its life early (the leeway is capped at a quarter), or
    // earlier when refreshes are slow (twice the slowest recent one, at most half its life): one
    // refresh window every 1 to 1.5 s plus the round trip.
    const windows = elapsed / 1_000;
    console.log(`[tabs] 5 tabs x 30 s: ${elapsed} ms, refresh windows ${windows.toFixed(1)}, stats ${JSON.stringify(stats)}, traffic ${JSON.stringify({ ...sum, errors: sum.errors.length })}`);
    expect(stats.refresh.reuseDetected).toBe(0);
    expect(stats.refresh.invalidGrant).toBe(0);
    expect(stats.refresh.succeeded).toBe(stats.refresh.calls);
    // Upper bound: no window is shorter than 1 s, so at most ceil(elapsed / 1 s) + 1 refreshes
    // (+1: the window running when the traffic started). Lower bound: each window is at most 1.5 s
    // plus the round trip and timer lateness, well under 0.2 s here.
    expect(stats.refresh.calls).toBeLessThanOrEqual(Math.ceil(windows) + 1);
    expect(stats.refresh.calls).toBeGreaterThanOrEqual(Math.floor(elapsed / 1_700) - 1);
    expect(sum).toMatchObject({ failed: 0, hung: 0, errors: [] });
    expect(sum.ok).toBe(sum.sent);
    // Each auth.fetch left its page exactly once (no replay: no 401), and the server served no 401.
    // The server may count a request more than the pages sent it (seen once in ~10 runs: 1 001 for
    // 1 000, pages at 1 000): a resend below fetch, most likely Chromium retrying a GET whose reused
    // keep-alive connection closed under it (Node closes idle ones after 5 s; nodejs/node#13391).
    expect(sum.wire).toBe(sum.sent);
    expect(stats.api.unauthorized).toBe(0);
    expect(stats.api.calls).toBeGreaterThanOrEqual(sum.wire);
    expect(snaps.map((x) => x?.status)).toEqual(Array(5).fill('authenticated'));
  }, 180_000);
});

describe('tabs of one session', () => {
  let stack: Stack;
  /** The server's clock runs this far ahead of real time (proof 6 moves it with the page's clock). */
  let skew = 0;

  beforeAll(async () => {
    // reuseGraceMs: a tab that goes ahead without the lock (frozen or closed holder) may present a
    // refresh token the holder's request already rotated; within 5 s the server answers with the
    // same new pair instead of revoking the family (the overlap DESIGN.md "Across tabs" relies on).
    stack = await startStack({ accessTokenTtl: 8, reuseGraceMs: 5_000, now: () => Date.now() + skew });
  });
  afterEach(async () => {
    skew = 0;
    if (!stack) return;
    await stack.faults({});
    await stack.resetProfile();
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('I4/I7: logout in one tab reaches every tab within 1 s, and no tab sends a request after it', async () => {
    const tabs = await openTabs(stack, 5);
    await stack.resetStats();
    const traffic = tabs.map((t) => t.evaluate(() => window.harness.traffic(3_000, 100, 5_000)));
    await sleep(1_000);
    const logoutAt = await tabs[2]!.evaluate(() => {
      const at = Date.now();
      window.harness.engine().logout().catch(() => {});
      return at;
    });
    const seen = await Promise.all(tabs.map((t) => poll(t, () => window.harness.snapshot().status === 'unauthenticated', undefined, 1_000)));
    expect(seen).toEqual(Array(5).fill(true));
    const delays = await Promise.all(
      tabs.map((t) =>
        t.evaluate((at) => {
          const e = [...window.harness.events].reverse().find((e) => e.type === 'transition' && e.status === 'unauthenticated'); // the logout's, not the first tab's start-up before its login
          return e ? Math.round(performance.timeOrigin + e.at - at) : null;
        }, logoutAt),
      ),
    );
    // Every call of the traffic settles (those sent before the logout come back); then count.
    const counts = await Promise.all(traffic);
    const sum = total(counts);
    const atLogout = await stack.stats();
    // I4, measured in each page, independent of machine load: not one request left a tab after
    // that tab turned unauthenticated (the traffic kept calling auth.fetch for 2 s after it).
    const sentAfter = await Promise.all(
      tabs.map((t) =>
        t.evaluate(() => {
          const e = [...window.harness.events].reverse().find((e) => e.type === 'transition' && e.status === 'unauthenticated'); // the logout's, not the first tab's start-up before its login
          return e ? window.harness.apiSentSince(e.at) : -1;
        }),
      ),
    );
    const after = await Promise.all(
      tabs.map((t) => t.evaluate(() => window.harness.engine().fetch('/api/data').then((r) => `sent:${r.status}`, (e: { code?: string }) => e.code ?? String(e)))),
    );
    const end = await stack.stats();
    console.log(`[tabs] 2: unauthenticated after ${delays.join(', ')} ms; api at logout ${JSON.stringify(atLogout.api)}, at end ${JSON.stringify(end.api)}; traffic ${JSON.stringify({ ...sum, errors: [...new Set(sum.errors)] })}; fetch after: ${after.join(',')}; api sent after unauthenticated, per tab: ${sentAfter.join(',')}`);
    expect(sentAfter).toEqual(Array(5).fill(0));
    for (const d of delays) expect(d).not.toBeNull();
    for (const d of delays) expect(d!).toBeLessThanOrEqual(1_000);
    // I4: from then on the engines reject without sending: the server saw no further call.
    expect(end.api).toEqual(atLogout.api);
    expect(end.api.unauthorized).toBe(0);
    for (const a of after) expect(['LOGGED_OUT', 'UNAUTHENTICATED']).toContain(a);
    expect(sum.hung).toBe(0);
    expect(sum.ok + sum.failed).toBe(sum.sent);
    for (const e of sum.errors) expect(['LOGGED_OUT', 'UNAUTHENTICATED']).toContain(e);
    expect(sum.ok).toBeGreaterThan(0);
    expect(sum.wire).toBe(sum.ok); // every request that left a page before the logout was answered 200
  });

  it('I7: a new tab joins the live memory-only session without a login or refresh call', async () => {
    const [first, joiner] = [await stack.newPage(), await stack.newPage()];
    await first.evaluate(async (email) => {
      window.harness.start();
      await window.harness.signIn(email, 'correct horse battery');
    }, `join-${Date.now()}@example.test`);
    const before = await stack.stats();
    const took = await joiner.evaluate(async () => {
      const started = performance.now();
      window.harness.start();
      await window.harness.engine().ready();
      return Math.round(performance.now() - started);
    });
    const after = await stack.stats();
    const [a, b] = await Promise.all([first.evaluate(() => window.harness.snapshot()), joiner.evaluate(() => window.harness.snapshot())]);
    const fetched = await joiner.evaluate(() => window.harness.fetchMany(1));
    console.log(`[tabs] 3: joined in ${took} ms; login ${before.login} -> ${after.login}, refresh calls ${before.refresh.calls} -> ${after.refresh.calls}; joiner ${b.status}, same expiry ${a.expiresAt === b.expiresAt}`);
    expect(b.status).toBe('authenticated');
    expect(b.user).toEqual(a.user);
    expect(b.expiresAt).toBe(a.expiresAt); // the very token set the first tab holds
    expect(after.login).toBe(before.login);
    expect(after.refresh.calls).toBe(before.refresh.calls);
    expect(after.api.calls).toBe(before.api.calls);
    expect(fetched).toEqual({ ok: 1, failed: 0, statuses: { 200: 1 }, errors: [] });
  });

  it('P9: closing the tab that holds the refresh lock mid-refresh: the others refresh, their waiting requests settle, no reuse rejected', async () => {
    const tabs = await openTabs(stack, 5);
    // The 8 s token is refreshed 2 s early by every tab's timer at once; one of them gets the lock.
    const { h, holder, others, generations } = await refreshUnderWay(stack, tabs);
    // The others' tokens are expiring now: their requests wait for the refresh.
    const traffic = others.map((t) => t.evaluate(() => window.harness.traffic(2_500, 100, 8_000)));
    await sleep(500);
    await holder.close();
    const closedAt = Date.now();
    const counts = await Promise.all(traffic);
    const sum = total(counts);
    const snaps = await snapshots(others);
    const stats = await stack.stats();
    console.log(`[tabs] 4: holder = tab ${h}, closed 0.5 s into its refresh; others' generations ${generations.join(',')} -> ${snaps.map((s) => s?.generation).join(',')}, settled ${Date.now() - closedAt} ms after the close; stats ${JSON.stringify(stats)}; traffic ${JSON.stringify({ ...sum, errors: sum.errors.length })}`);
    expect(snaps.map((s) => s?.status)).toEqual(Array(4).fill('authenticated'));
    snaps.forEach((s, i) => expect(s!.generation).toBeGreaterThan(generations[i]!));
    expect(new Set(snaps.map((s) => s!.expiresAt)).size).toBe(1);
    expect(sum).toMatchObject({ failed: 0, hung: 0, errors: [] });
    expect(sum.ok).toBe(sum.sent);
    // The lost holder's call and one successor's: the other waiters took the successor's session.
    expect(stats.refresh.calls).toBe(2);
    expect(stats.refresh.reuseDetected).toBe(0);
    expect(stats.refresh.invalidGrant).toBe(0);
    expect(stats.api.unauthorized).toBe(0);
  });

  it('P9/I7: freezing the tab that holds the refresh lock mid-refresh: the others go ahead after lockPatience, nothing hangs; resumed, it converges', async () => {
    const lockPatience = 2_000;
    const tabs = await openTabs(stack, 5, { lockPatience });
    const { h, holder, others, generations } = await refreshUnderWay(stack, tabs);
    await freeze(holder);
    const frozenAt = Date.now();
    const traffic = others.map((t) => t.evaluate(() => window.harness.traffic(4_000, 100, 10_000)));
    // Bound: lockPatience without a heartbeat + the 1.5 s refresh + one settle round + slack.
    const bound = lockPatience + 1_500 + 150 + 1_500;
    const refreshed = await Promise.all(
      others.map((t, i) => poll(t, (g) => window.harness.snapshot().generation > g, generations[i]!, bound)),
    );
    const refreshedAfter = Date.now() - frozenAt;
    const counts = await Promise.all(traffic);
    const sum = total(counts);
    const whileFrozen = await stack.stats();
    const snaps = await snapshots(others);
    console.log(`[tabs] 5: holder = tab ${h} frozen; others refreshed ${refreshedAfter} ms after the freeze (bound ${bound}); stats while frozen ${JSON.stringify(whileFrozen)}; traffic ${JSON.stringify({ ...sum, errors: sum.errors.length })}`);
    expect(refreshed).toEqual(Array(4).fill(true));
    expect(sum).toMatchObject({ failed: 0, hung: 0, errors: [] });
    expect(sum.ok).toBe(sum.sent);
    expect(snaps.map((s) => s?.status)).toEqual(Array(4).fill('authenticated'));
    // The frozen holder's call, then each waiter went ahead without the lock at most once (P9).
    expect(whileFrozen.refresh.calls).toBeLessThanOrEqual(5);
    expect(whileFrozen.refresh.invalidGrant).toBe(0);
    expect(whileFrozen.refresh.reuseDetected).toBe(0);

    // Resumed (and shown), the former holder converges on the session the others have (I7) ...
    await resume(holder);
    await stack.faults({});
    const converged = await poll(
      holder,
      () => window.harness.snapshot().status === 'authenticated' && !window.harness.snapshot().refreshing,
      undefined,
      5_000,
    );
    await sleep(300);
    const all = await snapshots(tabs);
    // ... and the session keeps working through the next refresh window in every tab.
    const later = total(await Promise.all(tabs.map((t) => t.evaluate(() => window.harness.traffic(7_000, 200, 10_000)))));
    const end = await stack.stats();
    const final = await snapshots(tabs);
    console.log(`[tabs] 5: after resume: converged ${converged}, expiries ${all.map((s) => s?.expiresAt).join(',')}; next window: traffic ${JSON.stringify({ ...later, errors: later.errors })}, stats ${JSON.stringify(end)}, generations ${final.map((s) => s?.generation).join(',')}`);
    expect(converged).toBe(true);
    // One session everywhere. Each tab counts its expiry on its own clock from the token's age in
    // the message; the sender's time stands while the message took under a second, so a message
    // held longer (the resumed tab's queue, a starved machine) moves that tab's estimate by the rest.
    expect(spread(all.map((s) => s?.generation))).toBe(0);
    expect(spread(all.map((s) => s?.expiresAt))).toBeLessThanOrEqual(1_000);
    expect(later).toMatchObject({ failed: 0, hung: 0, errors: [] });
    expect(end.refresh.invalidGrant).toBe(0);
    expect(end.refresh.reuseDetected).toBe(0);
    expect(end.api.unauthorized).toBe(0);
    expect(final.map((s) => s?.status)).toEqual(Array(5).fill('authenticated'));
    expect(spread(final.map((s) => s?.generation))).toBe(0);
    expect(spread(final.map((s) => s?.expiresAt))).toBeLessThanOrEqual(1_000);
  });

  it('P14: after the page clock jumps past expiry, the first request refreshes before it is sent (no 401 served)', async () => {
    const context = await stack.newContext();
    try {
      const page = await stack.newPage({ context, beforeLoad: (p) => p.clock.install() });
      await page.evaluate(async (email) => {
        window.harness.start();
        await window.harness.signIn(email, 'correct horse battery');
      }, `clock-${Date.now()}@example.test`);
      const results: string[] = [];
      for (const jump of ['fastForward', 'setSystemTime'] as const) {
        await stack.resetStats();
        const before = await page.evaluate(() => window.harness.snapshot());
        // 20 s later for the page and for the server: the 8 s access token is dead for both.
        skew += 20_000;
        if (jump === 'fastForward') await page.clock.fastForward(20_000);
        else await page.clock.setSystemTime((await page.evaluate(() => Date.now())) + 20_000); // timers do not fire: a waking laptop
        const counts = await page.evaluate(() => window.harness.fetchMany(1));
        const stats = await stack.stats();
        const after = await page.evaluate(() => window.harness.snapshot());
        results.push(`${jump}: ${JSON.stringify(counts.statuses)} generation ${before.generation} -> ${after.generation}, stats ${JSON.stringify(stats)}`);
        expect(counts).toEqual({ ok: 1, failed: 0, statuses: { 200: 1 }, errors: [] });
        expect(stats.refresh).toMatchObject({ calls: 1, succeeded: 1 });
        expect(stats.api).toEqual({ calls: 1, unauthorized: 0 });
        expect(after.generation).toBe(before.generation + 1);
      }
      console.log(`[tabs] 6: ${results.join('; ')}`);
    } finally {
      await context.close();
    }
  });
});
