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

/** Options a test can pass to `harness.start` (JSON only: they cross the page boundary). */
export interface StartOptions {
  /** Session key (storage key and cross-tab scope). @default 'tessera' */
  key?: string;
  /** @default 'memory' */
  storage?: 'memory' | 'local' | 'session';
  leeway?: number;
  retry?: AuthOptions['retry'];
  /** Where the reference server's auth routes are. @default '/auth' */
  baseUrl?: string;
  refreshToken?: 'body' | 'cookie';
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

export type LockResult = 'acquired' | 'timeout';

const EVENTS: AuthEventName[] = ['login', 'logout', 'refresh', 'refresh-error', 'expired', 'unauthorized', 'transition', 'user', 'user-error', 'storage-error'];

function errorName(e: unknown): string {
  if (isTesseraError(e)) return e.code;
  return (e as Error)?.name ?? String(e);
}

const storages = { memory: memoryStorage, local: localStorageStore, session: sessionStorageStore };

const held = new Map<string, () => void>();
const channels = new Map<string, { channel: BroadcastChannel; messages: unknown[] }>();

function render(text: string) {
  const el = document.getElementById('status');
  if (el) el.textContent = text;
}

const harness = {
  auth: null as Auth | null,
  authority: null as HttpAuthority<unknown, { email: string; password: string }> | null,
  events: [] as RecordedEvent[],

  /** Creates the engine against the same-origin server and records every event. Replaces a previous one. */
  start(options: StartOptions = {}): void {
    harness.auth?.dispose();
    harness.events = [];
    const authority = httpAuthority({ baseUrl: options.baseUrl ?? '/auth', refreshToken: options.refreshToken ?? 'body' });
    const auth = createAuth({
      authority,
      key: options.key,
      storage: storages[options.storage ?? 'memory'](),
      leeway: options.leeway,
      retry: options.retry,
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
