/** The counters reported by GET /__stats. */
export interface StatsSnapshot {
  /** Successful logins. */
  login: number;
  refresh: { calls: number; succeeded: number; invalidGrant: number; reuseDetected: number };
  api: { calls: number; unauthorized: number };
}

/** In-memory counters, one set per server instance. */
export class Stats {
  #s: StatsSnapshot = Stats.#zero();

  static #zero(): StatsSnapshot {
    return { login: 0, refresh: { calls: 0, succeeded: 0, invalidGrant: 0, reuseDetected: 0 }, api: { calls: 0, unauthorized: 0 } };
  }

  get counters(): StatsSnapshot {
    return this.#s;
  }

  /** A copy of the current counters. */
  snapshot(): StatsSnapshot {
    return structuredClone(this.#s);
  }

  reset(): void {
    this.#s = Stats.#zero();
  }
}
