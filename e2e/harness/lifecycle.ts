/**
 * Freezing a page the way Chromium freezes a background tab, through the DevTools protocol
 * (`Page.setWebLifecycleState`). Works for pages of `stack.profile` only (see harness/browser.ts:
 * Playwright's focus emulation keeps other pages visible, and Chromium never freezes a visible page;
 * `freeze` throws then instead of silently doing nothing).
 *
 * What a frozen page does (asserted in e2e/test/freeze.test.ts):
 * - Chromium hides it first (`visibilitychange` → hidden), then fires `freeze`.
 * - Timers (setTimeout/setInterval) and fetch completions wait until resume. A timer that came due
 *   runs once on resume (an interval does not catch up on the missed ticks).
 * - BroadcastChannel messages are NOT held back: a frozen page's `onmessage` handler runs at once
 *   (Chromium 143 and 156 here), though anything it starts (a timer, fetch) waits.
 * - Web Locks it holds stay held for as long as it is frozen: other tabs asking for the same lock
 *   wait (so ask with a bound: `{ signal: AbortSignal.timeout(ms) }`).
 * - `page.evaluate` of synchronous code still runs (DevTools bypasses the freeze); an evaluation
 *   that awaits a task (a timer, fetch, lock) does not settle until resume: bound it ({@link within}).
 *   `page.waitForFunction` polls on the page's own timers/rAF, so it never sees a change in a frozen
 *   (or hidden) page: use {@link poll}.
 * - `resume` fires `resume` while the page is still hidden. A hidden page's timers are throttled
 *   by Chromium (aligned to 1 s wake-ups), so by default {@link resume} also shows the page again
 *   (`visibilitychange` → visible), like a user returning to the tab.
 */
import type { CDPSession, Page } from 'playwright-core';

const sessions = new WeakMap<Page, CDPSession>();

async function session(page: Page): Promise<CDPSession> {
  let cdp = sessions.get(page);
  if (!cdp) {
    cdp = await page.context().newCDPSession(page);
    sessions.set(page, cdp);
  }
  return cdp;
}

/**
 * Freezes `page` like a background tab: hidden, then frozen. Resolves once the page's `freeze`
 * event fired; throws if it does not within `timeoutMs` (e.g. a page of a `newContext()` context,
 * which Chromium keeps visible and never freezes).
 */
export async function freeze(page: Page, { timeoutMs = 3_000 }: { timeoutMs?: number } = {}): Promise<void> {
  const cdp = await session(page);
  await page.evaluate(() => {
    const w = window as unknown as { __tesseraE2eFrozen?: boolean };
    w.__tesseraE2eFrozen = false;
    document.addEventListener('freeze', () => (w.__tesseraE2eFrozen = true), { once: true });
  });
  // A previous resume() showed the page through focus emulation on this session: drop it first.
  await cdp.send('Emulation.setFocusEmulationEnabled', { enabled: false });
  await cdp.send('Page.setWebLifecycleState', { state: 'frozen' });
  const frozen = await poll(page, () => (window as unknown as { __tesseraE2eFrozen?: boolean }).__tesseraE2eFrozen === true, undefined, timeoutMs);
  if (!frozen) {
    await cdp.send('Page.setWebLifecycleState', { state: 'active' });
    const visibility = await page.evaluate(() => document.visibilityState);
    throw new Error(`freeze: the page is not frozen (no freeze event; it is ${visibility}). Open it in stack.profile (the default context), not a newContext().`);
  }
}

/**
 * Evaluates the synchronous `predicate` in `page` every 25 ms from Node until it is true or
 * `timeoutMs` passed; resolves whether it became true. Unlike `page.waitForFunction`, whose
 * polling runs on the page's timers or requestAnimationFrame, this works on frozen and hidden pages.
 */
export async function poll<A>(page: Page, predicate: (arg: A) => boolean, arg: A, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await within(page.evaluate(predicate as (arg: unknown) => boolean, arg as unknown), Math.max(1, deadline - Date.now()), false);
    if (ok) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * Resumes a frozen `page`. By default also shows it again (the user returned to the tab); with
 * `{ visible: false }` it stays a hidden background tab (resumed, timers throttled to 1 s wake-ups).
 */
export async function resume(page: Page, options: { visible?: boolean } = {}): Promise<void> {
  const cdp = await session(page);
  await cdp.send('Page.setWebLifecycleState', { state: 'active' });
  // Focus emulation counts as a visible capturer for Chromium: the page becomes visible.
  if (options.visible ?? true) await cdp.send('Emulation.setFocusEmulationEnabled', { enabled: true });
}

/** Resolves `promise`, or `onTimeout` after `ms` (for evaluations that a frozen page never answers). */
export function within<T, U>(promise: Promise<T>, ms: number, onTimeout: U): Promise<T | U> {
  let timer: ReturnType<typeof setTimeout>;
  const timeout = new Promise<U>((resolve) => (timer = setTimeout(() => resolve(onTimeout), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
