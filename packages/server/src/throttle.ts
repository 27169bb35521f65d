/**
 * Sliding-window counter of failed logins, kept in memory per server instance.
 * @remarks Several instances behind a load balancer each keep their own counts.
 */
export class LoginThrottle {
  readonly #failures = new Map<string, number[]>();
  readonly #windowMs: number;
  readonly #now: () => number;
  /** Bound on remembered keys, so a flood of distinct e-mails cannot grow memory without limit. */
  readonly #maxKeys: number;

  constructor(options: { windowMs: number; now: () => number; maxKeys?: number }) {
    this.#windowMs = options.windowMs;
    this.#now = options.now;
    this.#maxKeys = options.maxKeys ?? 50_000;
  }

  #recent(key: string): number[] {
    const since = this.#now() - this.#windowMs;
    const list = (this.#failures.get(key) ?? []).filter((t) => t > since);
    if (list.length === 0) this.#failures.delete(key);
    else this.#failures.set(key, list);
    return list;
  }

  /** Milliseconds until `key` may try again, or 0 when it has fewer than `max` recent failures. */
  retryAfterMs(key: string, max: number): number {
    const list = this.#recent(key);
    if (list.length < max) return 0;
    const oldestThatCounts = list[list.length - max]!;
    return Math.max(1, oldestThatCounts + this.#windowMs - this.#now());
  }

  fail(key: string): void {
    const list = this.#recent(key);
    list.push(this.#now());
    this.#failures.set(key, list);
    if (this.#failures.size > this.#maxKeys) {
      const oldest = this.#failures.keys().next().value;
      if (oldest !== undefined) this.#failures.delete(oldest);
    }
  }

  reset(key: string): void {
    this.#failures.delete(key);
  }
}
