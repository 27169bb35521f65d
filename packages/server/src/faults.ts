import type { Context, MiddlewareHandler } from 'hono';
import type { HttpBindings } from '@hono/node-server';
import { HttpError } from './http-errors.ts';

/** What POST /__faults sets. Applied to POST /auth/refresh only. */
export interface FaultSettings {
  /** Delay before the refresh is handled. */
  latencyMs: number;
  /** Probability in [0, 1] that a refresh fails. */
  failureRate: number;
  /** '500' answers 500 server_error; 'drop' destroys the socket; 'timeout' never answers (30 s or until close). */
  kind: '500' | 'drop' | 'timeout';
  /** 'before' fails without touching the token; 'after' rotates first, then loses the answer. @default 'before' */
  when: 'before' | 'after';
}

const DEFAULTS: FaultSettings = { latencyMs: 0, failureRate: 0, kind: '500', when: 'before' };
const HANG_MS = 30_000;

/** Fault injection for tests and the demo. */
export class Faults {
  #settings: FaultSettings = { ...DEFAULTS };
  readonly #waiting = new Set<() => void>();
  readonly #random: () => number;

  constructor(random: () => number = Math.random) {
    this.#random = random;
  }

  get settings(): FaultSettings {
    return { ...this.#settings };
  }

  /** Validates and applies a body of POST /__faults; omitted fields take their defaults. @throws HttpError */
  configure(body: Record<string, unknown>): FaultSettings {
    const next = { ...DEFAULTS };
    const bad = (why: string) => new HttpError(400, 'invalid_request', why);
    if (body.latencyMs !== undefined) {
      if (typeof body.latencyMs !== 'number' || !Number.isFinite(body.latencyMs) || body.latencyMs < 0 || body.latencyMs > 60_000) {
        throw bad('latencyMs: expected a number between 0 and 60000');
      }
      next.latencyMs = body.latencyMs;
    }
    if (body.failureRate !== undefined) {
      if (typeof body.failureRate !== 'number' || !(body.failureRate >= 0 && body.failureRate <= 1)) {
        throw bad('failureRate: expected a number between 0 and 1');
      }
      next.failureRate = body.failureRate;
    }
    if (body.kind !== undefined) {
      if (body.kind !== '500' && body.kind !== 'drop' && body.kind !== 'timeout') throw bad('kind: expected "500", "drop" or "timeout"');
      next.kind = body.kind;
    }
    if (body.when !== undefined) {
      if (body.when !== 'before' && body.when !== 'after') throw bad('when: expected "before" or "after"');
      next.when = body.when;
    }
    this.#settings = next;
    return this.settings;
  }

  /** Sleeps `ms`, or less if the server closes. */
  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#waiting.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#waiting.add(done);
    });
  }

  /** Wakes every delayed or hanging request (server shutdown). */
  release(): void {
    for (const wake of [...this.#waiting]) wake();
  }

  /** Middleware for POST /auth/refresh. */
  middleware(): MiddlewareHandler<{ Bindings: HttpBindings }> {
    return async (c, next) => {
      const s = this.#settings;
      if (s.latencyMs > 0) await this.#sleep(s.latencyMs);
      if (!(s.failureRate > 0 && this.#random() < s.failureRate)) return next();
      if (s.when === 'before') return this.#fail(c, s.kind);
      await next();
      const failed = await this.#fail(c, s.kind);
      c.res = undefined;
      c.res = failed;
    };
  }

  async #fail(c: Context<{ Bindings: HttpBindings }>, kind: FaultSettings['kind']): Promise<Response> {
    if (kind === '500') {
      return new Response(JSON.stringify({ error: 'server_error', error_description: 'Injected fault.' }), {
        status: 500,
        headers: { 'content-type': 'application/json' },
      });
    }
    if (kind === 'timeout') await this.#sleep(HANG_MS);
    c.env?.incoming?.socket?.destroy();
    return new Response(null, { status: 503 });
  }
}
