import type { Store } from './store/types.ts';

/**
 * Sliding-window counter of failed logins, kept in the shared store so every instance on one
 * database counts the same failures (the limit is global, not per process).
 * @remarks Checks and records are separate statements: a burst of concurrent wrong passwords may
 * pass a few more attempts than the limit, never fewer.
 */
export class LoginThrottle {
  readonly #store: Store;
  readonly #windowMs: number;
  readonly #now: () => number;

  constructor(options: { store: Store; windowMs: number; now: () => number }) {
    this.#store = options.store;
    this.#windowMs = options.windowMs;
    this.#now = options.now;
  }

  /** Milliseconds until `key` may try again, or 0 when it has fewer than `max` recent failures. */
  async retryAfterMs(key: string, max: number): Promise<number> {
    const now = this.#now();
    const recent = await this.#store.recentLoginFailures(key, now - this.#windowMs, max);
    if (recent.length < max) return 0;
    const oldestThatCounts = recent[max - 1]!;
    return Math.max(1, oldestThatCounts + this.#windowMs - now);
  }

  /** Records a failure for each key; failures older than the window are forgotten on the way. */
  fail(...keys: string[]): Promise<void> {
    const now = this.#now();
    return this.#store.recordLoginFailure(keys, now, now - this.#windowMs);
  }

  /** Forgets the failures of `key`. */
  reset(key: string): Promise<void> {
    return this.#store.clearLoginFailures(key);
  }
}
