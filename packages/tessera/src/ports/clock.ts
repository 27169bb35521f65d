/**
 * Time, as the engine sees it. The default reads the globals at call time (never captured at
 * import), so server-side rendering and fake timers both work.
 */
export interface Clock {
  /** Milliseconds since the epoch on the local clock. */
  now(): number
  /** Schedules `fn` after `ms` milliseconds; returns a handle for {@link Clock.clearTimeout}. */
  setTimeout(fn: () => void, ms: number): unknown
  /** Cancels a timer made by {@link Clock.setTimeout}. */
  clearTimeout(handle: unknown): void
}

/** The browser/Node clock. Delays are clamped to 2³¹−1 ms, past which timers fire at once. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, Math.min(Math.max(ms, 0), 2 ** 31 - 1)),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof setTimeout>),
}
