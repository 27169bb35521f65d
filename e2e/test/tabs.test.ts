import { describe, expect, it } from 'vitest';
import { useStack } from '../harness/pages.ts';

describe('two tabs of one profile (pages of the default context)', () => {
  const stack = useStack();

  it('a BroadcastChannel message from one page reaches the other, and not a page of another context', async () => {
    const a = await stack.newPage();
    const b = await stack.newPage();
    const stranger = await stack.newPage({ context: await stack.newContext() });
    await a.evaluate(() => window.harness.listen('tessera-e2e'));
    await stranger.evaluate(() => window.harness.listen('tessera-e2e'));
    await b.evaluate(() => window.harness.post('tessera-e2e', { from: 'b', n: 1 }));
    await a.waitForFunction(() => window.harness.messages('tessera-e2e').length > 0, undefined, { timeout: 5_000 });
    expect(await a.evaluate(() => window.harness.messages('tessera-e2e'))).toEqual([{ from: 'b', n: 1 }]);
    // Give a stray delivery time to arrive: another context (profile) never gets it.
    await new Promise((r) => setTimeout(r, 200));
    expect(await stranger.evaluate(() => window.harness.messages('tessera-e2e'))).toEqual([]);
    await stranger.context().close();
  });

  it('a Web Lock held by page A makes B\'s bounded request time out; released, B gets it', async () => {
    const a = await stack.newPage();
    const b = await stack.newPage();
    await a.evaluate(() => window.harness.holdLock('tessera-e2e-lock'));
    const started = Date.now();
    expect(await b.evaluate(() => window.harness.tryLock('tessera-e2e-lock', 500))).toBe('timeout');
    expect(Date.now() - started).toBeGreaterThanOrEqual(450);
    const held = await b.evaluate(() => navigator.locks.query());
    expect(held.held?.map((l) => l.name)).toContain('tessera-e2e-lock');

    expect(await a.evaluate(() => window.harness.releaseLock('tessera-e2e-lock'))).toBe(true);
    expect(await b.evaluate(() => window.harness.tryLock('tessera-e2e-lock', 2_000))).toBe('acquired');
  });

  it('closing the page that holds a lock frees it for the other page', async () => {
    const a = await stack.newPage();
    const b = await stack.newPage();
    await a.evaluate(() => window.harness.holdLock('tessera-e2e-close'));
    expect(await b.evaluate(() => window.harness.tryLock('tessera-e2e-close', 300))).toBe('timeout');
    await a.close();
    expect(await b.evaluate(() => window.harness.tryLock('tessera-e2e-close', 5_000))).toBe('acquired');
  });

  it('locks are per context: a page of another context gets a lock another profile holds', async () => {
    const a = await stack.newPage();
    const other = await stack.newPage({ context: await stack.newContext() });
    await a.evaluate(() => window.harness.holdLock('tessera-e2e-profile'));
    expect(await other.evaluate(() => window.harness.tryLock('tessera-e2e-profile', 2_000))).toBe('acquired');
    await other.context().close();
  });
});
