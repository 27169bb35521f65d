import { describe, expect, it } from 'vitest';
import { useStack } from '../harness/pages.ts';

// page.clock belongs to the page's context: installed in a page of stack.profile it would fake time
// in every later tab of the profile too. These tests use isolated contexts.
describe("Playwright's clock API in this Chromium", () => {
  const stack = useStack({}, { resetProfile: false });

  it('a 60 s timer fires after fastForward("01:05"), not before; runFor drives intervals', async () => {
    const page = await stack.newPage({ context: await stack.newContext(), beforeLoad: (p) => p.clock.install() });
    await page.evaluate(() => {
      const w = window as unknown as { fired: number[]; intervals: number };
      w.fired = [];
      w.intervals = 0;
      setTimeout(() => w.fired.push(Date.now()), 60_000);
      setInterval(() => w.intervals++, 1_000);
    });
    const read = () =>
      page.evaluate(() => {
        const w = window as unknown as { fired: number[]; intervals: number };
        return { fired: w.fired.length, intervals: w.intervals };
      });
    const startedAt = await page.evaluate(() => Date.now());

    await page.clock.runFor(30_000);
    expect(await read()).toEqual({ fired: 0, intervals: 30 });

    // fastForward jumps: each due timer fires at most once (the interval does not catch up 35 times).
    await page.clock.fastForward('01:05');
    const after = await read();
    expect(after.fired).toBe(1);
    expect(after.intervals).toBeLessThan(35);
    expect(await page.evaluate(() => Date.now())).toBeGreaterThanOrEqual(startedAt + 95_000);
  });

  it('caveat: fake time drives setTimeout and Date, while AbortSignal.timeout keeps real time', async () => {
    const page = await stack.newPage({ context: await stack.newContext(), beforeLoad: (p) => p.clock.install() });
    const outcome = await page.evaluate(async () => {
      const signal = AbortSignal.timeout(200);
      const fakeTimer = new Promise<string>((r) => setTimeout(() => r('fake timer'), 200));
      const realAbort = new Promise<string>((r) => signal.addEventListener('abort', () => r('abort signal'), { once: true }));
      return Promise.race([fakeTimer, realAbort]);
    });
    // Nobody advanced the fake clock: the setTimeout never fired, the AbortSignal did, on real time.
    expect(outcome).toBe('abort signal');
  });
});
