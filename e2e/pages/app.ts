/**
 * The test page: the library straight from source, plus `window.harness`, a few helpers tests
 * drive through `page.evaluate`. Everything the helpers return is plain JSON (it crosses CDP).
 * Bundled by harness/pages.ts (esbuild, esm, browser platform) and served by the reference server.
 */
import {
  createAuth,
  isTesseraError,
  localStorageStore,
  memoryStorage,
  sessionStorageStore,
  type Auth,
  type AuthEventName,
  type AuthOptions,
} from '../../packages/tessera/src/index.ts';
import { httpAuthority, type HttpAuthority } from '../../packages/tessera/src/authorities/http.ts';
import { createDpop, type Dpop } from '../../packages/tessera/src/proof/dpop.ts';

/** Options a test can pass to `harness.start` (JSON only: they cross the page boundary). */
export interface StartOptions {
  /** Session key (storage key and cross-tab scope). @default 'tessera' */
  key?: string;
  /** @default 'memory' */
  storage?: 'memory' | 'local' | 'session';
  /** Refresh this long before expiry, in ms (the engine caps it at a quarter of the token's life). */
  leeway?: number;
  retry?: AuthOptions['retry'];
  /** How long a new tab waits for a peer's session, in ms. */
  joinTimeout?: number;
  /** How long a waiter waits for the refresh lock without a heartbeat before going ahead, in ms. */
  lockPatience?: number;
  /** Where the reference server's auth routes are. @default '/auth' */
  baseUrl?: string;
  refreshToken?: 'body' | 'cookie';
  /** Origins besides the page's that get the token (a server on another origin). */
  allowedOrigins?: string[];
  /** DPoP (`tessera/dpop`): the key in this origin's IndexedDB, proofs on the token endpoint and every request. */
  dpop?: boolean;
}

/** One event the engine emitted, as recorded in `harness.events`. */
export interface RecordedEvent {
  type: AuthEventName;
  /** `performance.now()` in the page. */
  at: number;
  status: string;
  generation: number;
  refreshing: boolean;
  error?: string;
  from?: string;
  event?: string;
}

/** Result of `harness.fetchMany`. */
export interface FetchCounts {
  ok: number;
  failed: number;
  /** HTTP status → count (responses only; thrown errors go to `errors`). */
  statuses: Record<string, number>;
  /** Error code (TesseraError) or name of each rejected call. */
  errors: string[];
}

/** Result of `harness.traffic`. */
export interface TrafficCounts extends FetchCounts {
  /** `auth.fetch` calls started. */
  sent: number;
  /** Calls that had not settled within the bound (counted in neither `ok` nor `failed`). */
  hung: number;
  /** The slowest settled call, in ms. */
  maxMs: number;
  /** Requests to /api/ this page put on the wire while the traffic ran (a replay after a 401 counts twice). */
  wire: number;
}

export type LockResult = 'acquired' | 'timeout';

const EVENTS: AuthEventName[] = ['login', 'logout', 'refresh', 'refresh-error', 'expired', 'unauthorized', 'transition', 'user', 'user-error', 'storage-error'];

function errorName(e: unknown): string {
  if (isTesseraError(e)) return e.code;
  return (e as Error)?.name ?? String(e);
}

const storages = { memory: memoryStorage, local: localStorageStore, session: sessionStorageStore };

// Every fetch of the page (the library's included) is counted while in flight, by pathname, and
// the moment each one to /api/ leaves is kept (`performance.now()`), to compare with events.
const inflight = new Map<string, number>();
const apiSends: number[] = [];
const pageFetch = globalThis.fetch.bind(globalThis);
globalThis.fetch = (input: RequestInfo | URL, init?: RequestInit) => {
  const path = new URL(input instanceof Request ? input.url : String(input), location.href).pathname;
  inflight.set(path, (inflight.get(path) ?? 0) + 1);
  if (path.startsWith('/api/')) apiSends.push(performance.now());
  return pageFetch(input, init).finally(() => inflight.set(path, (inflight.get(path) ?? 1) - 1));
};

const held = new Map<string, () => void>();
const channels = new Map<string, { channel: BroadcastChannel; messages: unknown[] }>();

function render(text: string) {
  const el = document.getElementById('status');
  if (el) el.textContent = text;
}

const harness = {
  auth: null as Auth | null,
  authority: null as HttpAuthority<unknown, { email: string; password: string }> | null,
  dpop: null as Dpop | null,
  events: [] as RecordedEvent[],

  /** Creates the engine against the same-origin server and records every event. Replaces a previous one. */
  start(options: StartOptions = {}): void {
    harness.auth?.dispose();
    harness.events = [];
    const dpop = options.dpop ? createDpop() : undefined;
    const authority = httpAuthority({ baseUrl: options.baseUrl ?? '/auth', refreshToken: options.refreshToken ?? 'body', dpop });
    const auth = createAuth({
      authority,
      proof: dpop,
      key: options.key,
      storage: storages[options.storage ?? 'memory'](),
      leeway: options.leeway,
      retry: options.retry,
      joinTimeout: options.joinTimeout,
      lockPatience: options.lockPatience,
      allowedOrigins: options.allowedOrigins,
    });
    for (const type of EVENTS)
      auth.on(type, (n) =>
        harness.events.push({
          type,
          at: performance.now(),
          status: n.snapshot.status,
          generation: n.snapshot.generation,
          refreshing: n.snapshot.refreshing,
          ...(n.error ? { error: n.error.code } : {}),
          ...(n.from ? { from: n.from } : {}),
          ...(n.event ? { event: n.event } : {}),
        }),
      );
    auth.subscribe(() => render(`${auth.getSnapshot().status} (generation ${auth.getSnapshot().generation})`));
    render(auth.getSnapshot().status);
    harness.auth = auth;
    harness.authority = authority;
    harness.dpop = dpop ?? null;
  },

  /** The JWK thumbprint of this tab's DPoP key (RFC 7638). */
  thumbprint(): Promise<string> {
    if (!harness.dpop) throw new Error('harness.start({ dpop: true }) first');
    return harness.dpop.thumbprint();
  },

  engine(): Auth {
    if (!harness.auth) throw new Error('harness.start() first');
    return harness.auth;
  },

  /** Registers (409 "email_taken" is fine) and logs in. */
  async signIn(email: string, password: string): Promise<void> {
    const authority = harness.authority;
    if (!authority) throw new Error('harness.start() first');
    await authority.register({ email, password }).catch((e: unknown) => {
      if (!(isTesseraError(e) && e.status === 409)) throw e;
    });
    await harness.engine().login({ email, password });
  },

  /** The snapshot without functions or the error object. */
  snapshot() {
    const s = harness.engine().getSnapshot();
    return { status: s.status, refreshing: s.refreshing, generation: s.generation, expiresAt: s.expiresAt, error: s.error?.code ?? null, user: s.user };
  },

  /** Runs `n` concurrent `auth.fetch(path)` calls and counts the outcomes. */
  async fetchMany(n: number, path = '/api/data'): Promise<FetchCounts> {
    const auth = harness.engine();
    const results = await Promise.allSettled(Array.from({ length: n }, () => auth.fetch(path)));
    const counts: FetchCounts = { ok: 0, failed: 0, statuses: {}, errors: [] };
    for (const r of results) {
      if (r.status === 'fulfilled') {
        counts.statuses[r.value.status] = (counts.statuses[r.value.status] ?? 0) + 1;
        if (r.value.ok) counts.ok++;
        else counts.failed++;
      } else {
        counts.failed++;
        counts.errors.push(errorName(r.reason));
      }
    }
    return counts;
  },

  /**
   * Continuous traffic: starts one `auth.fetch(path)` every `intervalMs` for `ms` (without waiting
   * for earlier calls), then waits for every call, each for at most `boundMs` after it started.
   * Runs on the page's own timers (nothing is sent while the page is frozen).
   */
  async traffic(ms: number, intervalMs: number, boundMs = 15_000, path = '/api/data'): Promise<TrafficCounts> {
    const auth = harness.engine();
    const counts: TrafficCounts = { sent: 0, ok: 0, failed: 0, hung: 0, maxMs: 0, wire: 0, statuses: {}, errors: [] };
    const calls: Promise<void>[] = [];
    const began = performance.now();
    const one = () => {
      counts.sent++;
      const started = performance.now();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const bound = new Promise<'hung'>((r) => (timer = setTimeout(() => r('hung'), boundMs)));
      const call = auth.fetch(path).then(
        async (res) => {
          await res.body?.cancel().catch(() => {});
          return res;
        },
        (e: unknown) => ({ error: errorName(e) }),
      );
      calls.push(
        Promise.race([call, bound]).then((r) => {
          clearTimeout(timer);
          if (r === 'hung') return void counts.hung++;
          counts.maxMs = Math.max(counts.maxMs, performance.now() - started);
          if ('error' in r) {
            counts.failed++;
            counts.errors.push(r.error);
            return;
          }
          counts.statuses[r.status] = (counts.statuses[r.status] ?? 0) + 1;
          if (r.ok) counts.ok++;
          else counts.failed++;
        }),
      );
    };
    const end = performance.now() + ms;
    while (performance.now() < end) {
      one();
      await new Promise((r) => setTimeout(r, intervalMs));
    }
    await Promise.all(calls);
    counts.wire = harness.apiSentSince(began);
    return counts;
  },

  /** How many requests to /api/ this page sent at or after `at` (a `performance.now()` time, e.g. an event's `at`). */
  apiSentSince(at: number): number {
    return apiSends.filter((t) => t >= at).length;
  },

  /** How many `fetch` calls of this page to `path` (a pathname, e.g. '/auth/refresh') have not settled yet. */
  pending(path: string): number {
    return inflight.get(path) ?? 0;
  },

  /** Takes an exclusive Web Lock and keeps it until `releaseLock(name)` (or the page goes away). Resolves once held. */
  holdLock(name: string): Promise<void> {
    return new Promise<void>((acquired, failed) => {
      navigator.locks
        .request(name, () => {
          acquired();
          return new Promise<void>((release) => held.set(name, release));
        })
        .catch(failed);
    });
  },

  releaseLock(name: string): boolean {
    const release = held.get(name);
    held.delete(name);
    release?.();
    return Boolean(release);
  },

  /** Asks for an exclusive Web Lock for at most `timeoutMs`; releases it at once if granted. */
  async tryLock(name: string, timeoutMs: number): Promise<LockResult> {
    try {
      await navigator.locks.request(name, { signal: AbortSignal.timeout(timeoutMs) }, () => undefined);
      return 'acquired';
    } catch (e) {
      if ((e as Error).name === 'TimeoutError' || (e as Error).name === 'AbortError') return 'timeout';
      throw e;
    }
  },

  /** Starts collecting messages of a BroadcastChannel (idempotent). */
  listen(name: string): void {
    if (channels.has(name)) return;
    const entry = { channel: new BroadcastChannel(name), messages: [] as unknown[] };
    entry.channel.onmessage = (e) => entry.messages.push(e.data);
    channels.set(name, entry);
  },

  post(name: string, message: unknown): void {
    const channel = new BroadcastChannel(name);
    channel.postMessage(message);
    channel.close();
  },

  messages(name: string): unknown[] {
    return channels.get(name)?.messages ?? [];
  },

  /** Ticks of `startTicker`: `Date.now()` of each run of a `setInterval`. */
  ticks: [] as number[],
  ticker: undefined as ReturnType<typeof setInterval> | undefined,
  startTicker(intervalMs: number): void {
    clearInterval(harness.ticker);
    harness.ticks = [];
    harness.ticker = setInterval(() => harness.ticks.push(Date.now()), intervalMs);
  },
  stopTicker(): void {
    clearInterval(harness.ticker);
  },

  /** Page lifecycle events seen (`freeze`, `resume`, `visibilitychange:<state>`, `pagehide`, `pageshow`). */
  lifecycle: [] as string[],
};

for (const type of ['freeze', 'resume', 'visibilitychange'] as const)
  document.addEventListener(type, () => harness.lifecycle.push(type === 'visibilitychange' ? `visibilitychange:${document.visibilityState}` : type));
for (const type of ['pagehide', 'pageshow'] as const) window.addEventListener(type, () => harness.lifecycle.push(type));

export type Harness = typeof harness;
export type TesseraGlobal = { createAuth: typeof createAuth; httpAuthority: typeof httpAuthority; memoryStorage: typeof memoryStorage; localStorageStore: typeof localStorageStore; sessionStorageStore: typeof sessionStorageStore; isTesseraError: typeof isTesseraError };

declare global {
  interface Window {
    tessera: TesseraGlobal;
    harness: Harness;
  }
}

window.tessera = { createAuth, httpAuthority, memoryStorage, localStorageStore, sessionStorageStore, isTesseraError };
window.harness = harness;
render('ready');
