import { describe, expect, it } from 'vitest';
import { freeze, poll, resume, within } from '../harness/lifecycle.ts';
import { useStack } from '../harness/pages.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a frozen tab (Page.setWebLifecycleState over CDP)', () => {
  const stack = useStack();

  it('keeps its Web Lock while frozen (others time out), runs no timers, and runs them again after resume', async () => {
    const a = await stack.newPage();
    const b = await stack.newPage();
    await a.evaluate(() => window.harness.holdLock('tessera-e2e-frozen'));
    await a.evaluate(() => window.harness.startTicker(50));
    await a.waitForFunction(() => window.harness.ticks.length >= 3, undefined, { timeout: 5_000 });

    await freeze(a);
    const frozenAt = Date.now();
    // The hazard: the frozen holder keeps the lock, so a bounded wait is the only way out.
    expect(await b.evaluate(() => window.harness.tryLock('tessera-e2e-frozen', 500))).toBe('timeout');
    // DevTools still evaluates synchronous code in a frozen page, but no task (timer, fetch, lock) runs.
    const ticksAtFreeze = await a.evaluate(() => window.harness.ticks.length);
    const pending = a.evaluate(() => new Promise<string>((r) => setTimeout(() => r('timer ran'), 0)));
    expect(await within(pending, 300, 'no answer')).toBe('no answer');
    await sleep(Math.max(0, 1_000 - (Date.now() - frozenAt)));
    expect(await a.evaluate(() => window.harness.ticks.length)).toBe(ticksAtFreeze);
    const resumeAt = Date.now();
    await resume(a);

    expect(await within(pending, 5_000, 'no answer')).toBe('timer ran');
    const ticks = await a.evaluate(() => window.harness.ticks);
    expect(ticks.filter((t) => t > frozenAt && t < resumeAt)).toEqual([]);
    await a.waitForFunction((n) => window.harness.ticks.length >= n + 5, ticks.length, { timeout: 5_000 });

    expect(await a.evaluate(() => window.harness.lifecycle)).toEqual(['pageshow', 'visibilitychange:hidden', 'freeze', 'resume', 'visibilitychange:visible']);
    expect(await a.evaluate(() => document.visibilityState)).toBe('visible');

    // Resumed, it still holds the lock until it lets go.
    expect(await b.evaluate(() => window.harness.tryLock('tessera-e2e-frozen', 300))).toBe('timeout');
    await a.evaluate(() => window.harness.releaseLock('tessera-e2e-frozen'));
    expect(await b.evaluate(() => window.harness.tryLock('tessera-e2e-frozen', 2_000))).toBe('acquired');
  });

  it('a frozen tab still gets BroadcastChannel messages (its handler runs), while its fetches wait for resume', async () => {
    const a = await stack.newPage();
    const b = await stack.newPage();
    await a.evaluate(() => window.harness.listen('tessera-e2e-frozen-channel'));
    await a.evaluate(() => window.harness.startTicker(50));
    await freeze(a);
    const frozenAt = Date.now();
    const pendingFetch = a.evaluate(() => fetch('/__stats').then((r) => r.status));
    await b.evaluate(() => window.harness.post('tessera-e2e-frozen-channel', 'while frozen'));
    expect(await poll(a, () => window.harness.messages('tessera-e2e-frozen-channel').length > 0, undefined, 2_000)).toBe(true);
    expect(await a.evaluate(() => window.harness.messages('tessera-e2e-frozen-channel'))).toEqual(['while frozen']);
    expect(await within(pendingFetch, 500, 'pending')).toBe('pending');
    expect(await a.evaluate((t) => window.harness.ticks.filter((tick) => tick > t).length, frozenAt)).toBe(0);

    await resume(a, { visible: false });
    expect(await within(pendingFetch, 5_000, 'pending')).toBe(200);
    expect(await a.evaluate(() => document.visibilityState)).toBe('hidden');
    expect(await a.evaluate(() => window.harness.lifecycle)).toEqual(['pageshow', 'visibilitychange:hidden', 'freeze', 'resume']);
    // Frozen again after a hidden resume, and shown again after the next one.
    await freeze(a);
    await resume(a);
    expect(await a.evaluate(() => document.visibilityState)).toBe('visible');
  });

  it('refuses, loudly, to "freeze" a page of an isolated context (Playwright keeps those visible)', async () => {
    const context = await stack.newContext();
    const page = await stack.newPage({ context });
    await expect(freeze(page, { timeoutMs: 500 })).rejects.toThrow(/not frozen \(no freeze event; it is visible\)/);
    expect(await page.evaluate(() => window.harness.lifecycle)).toEqual(['pageshow']);
    await context.close();
  });
});
