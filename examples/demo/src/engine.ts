/**
 * The demo's one session engine, and what the page records about it: every event `auth.on`
 * offers, the messages other tabs send, and for each request made through `auth.fetch` whether it
 * was held while a refresh ran and whether it was replayed after a 401.
 *
 * Public API only: `tessera` and `tessera/http`. Tokens are never shown or stored by the page.
 */
import {
  broadcastChannel,
  createAuth,
  isTesseraError,
  localStorageStore,
  type AuthEventName,
  type AuthNotice,
  type ChannelPort,
} from 'tessera';
import { httpAuthority } from 'tessera/http';

export interface User {
  id: string;
  email: string;
  name: string | null;
  roles?: string[];
}
export type Credentials = { email: string; password: string };

/** The same-origin reference server: `/auth/*` for tokens, `/api/*` for the protected sample API. */
export const authority = httpAuthority<User, Credentials>({ baseUrl: '/auth' });

// ---------------------------------------------------------------------------------------------
// The timeline: a tiny external store, read with useSyncExternalStore.

export type Tone = 'info' | 'ok' | 'warn' | 'error' | 'tab' | 'net';
export interface Entry {
  id: number;
  /** ms since the epoch */
  at: number;
  /** login, refresh, unauthorized, held, replayed, expired, tab, … */
  kind: string;
  text: string;
  tone: Tone;
  /** Identical entries in a row are folded into one: "unauthorized ×50". */
  count: number;
}

const MAX_ENTRIES = 200;
let entries: readonly Entry[] = [];
let nextId = 1;
const listeners = new Set<() => void>();
const emit = () => listeners.forEach((l) => l());

export const timeline = {
  get: (): readonly Entry[] => entries,
  subscribe(listener: () => void): () => void {
    listeners.add(listener);
    return () => listeners.delete(listener);
  },
  add(kind: string, text: string, tone: Tone = 'info'): void {
    const last = entries[0];
    const now = Date.now();
    if (last && last.kind === kind && last.text === text && now - last.at < 5_000) {
      entries = [{ ...last, at: now, count: last.count + 1 }, ...entries.slice(1)];
    } else {
      entries = [{ id: nextId++, at: now, kind, text, tone, count: 1 }, ...entries].slice(0, MAX_ENTRIES);
    }
    emit();
  },
  clear(): void {
    entries = [];
    emit();
  },
};

/** The last transition the machine made, for the diagram. */
export interface LastTransition {
  from: string;
  event: string;
  to: string;
  at: number;
  /** An ordinary step shown without alarm: a first visit's `restore.failed` with no error only means "no stored session". */
  calm: boolean;
}
let lastTransition: LastTransition | null = null;
const transitionListeners = new Set<() => void>();
export const transitionStore = {
  get: () => lastTransition,
  subscribe(listener: () => void): () => void {
    transitionListeners.add(listener);
    return () => transitionListeners.delete(listener);
  },
};

export function describeError(error: unknown): string {
  if (isTesseraError(error)) return error.message;
  if (error instanceof Error) return error.message;
  return String(error);
}

// ---------------------------------------------------------------------------------------------
// Messages from other tabs: the engine's own channel, wrapped so the page sees what arrives.
// Only the message type is shown (a `session` message carries tokens).

const TAB_TEXT: Record<string, string> = {
  hello: 'a new tab asked for the live session',
  session: 'another tab shared its session (login, refresh or profile)',
  end: 'another tab ended the session',
  cooldown: 'another tab: the token server is failing, pausing refreshes',
  refreshing: 'another tab holds the refresh lock and is refreshing',
};

function observed(channel: ChannelPort | null): ChannelPort | null {
  if (!channel) return null;
  return {
    post: (message) => channel.post(message),
    subscribe: (listener) =>
      channel.subscribe((message) => {
        const m = message as { type?: unknown; expired?: unknown } | null;
        const type = typeof m?.type === 'string' ? m.type : 'unknown';
        const text = type === 'end' && m?.expired === true ? 'another tab saw the session expire' : (TAB_TEXT[type] ?? `another tab sent "${type}"`);
        timeline.add('tab', text, 'tab');
        listener(message);
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// Requests: `auth.fetch` sends through this `fetch`, so the page sees each attempt of each call.
// A call is recognised by its AbortSignal (the one thing of `init` that reaches every attempt).

interface Call {
  attempts: number;
  /** Send the first attempt with a spoiled token: the server answers 401, as for an expired token. */
  spoil: boolean;
  refreshesAtStart: number;
  refreshingAtStart: boolean;
  refreshesAtFirstSend: number | null;
  got401: boolean;
}
const calls = new WeakMap<AbortSignal, Call>();
let refreshCount = 0;

const transport: typeof fetch = (input, init) => {
  const call = init?.signal ? calls.get(init.signal) : undefined;
  if (!call) return fetch(input, init);
  call.attempts++;
  let sent = init;
  if (call.attempts === 1) {
    call.refreshesAtFirstSend = refreshCount;
    if (call.spoil) {
      const headers = new Headers(init?.headers);
      const value = headers.get('authorization');
      if (value) headers.set('authorization', `${value}.spoiled`);
      sent = { ...init, headers };
    }
  }
  return fetch(input, sent).then((res) => {
    if (call.attempts === 1 && res.status === 401) call.got401 = true;
    return res;
  });
};

// ---------------------------------------------------------------------------------------------
// The engine.

export const auth = createAuth<User, Credentials>({
  authority,
  key: 'tessera-demo',
  // Tabs of this browser share the session (and a reload keeps it).
  storage: localStorageStore(),
  channel: observed(broadcastChannel('tessera:tessera-demo')),
  fetch: transport,
});

/** Every name `auth.on` accepts; the type check below fails if one is missing. */
const EVENTS = ['login', 'logout', 'logout-error', 'refresh', 'refresh-error', 'expired', 'unauthorized', 'transition', 'user', 'user-error', 'storage-error'] as const;
type Missing = Exclude<AuthEventName, (typeof EVENTS)[number]>;
const everyEvent: [Missing] extends [never] ? true : false = true;
void everyEvent;

function describe(name: AuthEventName, n: AuthNotice<User>): [string, Tone] | null {
  const s = n.snapshot;
  switch (name) {
    case 'login':
      return [`logged in${s.user ? ` as ${s.user.email}` : ''} (token generation ${s.generation})`, 'ok'];
    case 'logout':
      return ['logged out: waiting requests rejected, nothing of the session kept', 'info'];
    case 'logout-error':
      return [`the server was not told of the logout (${n.error?.code ?? 'error'}): the session is over here regardless`, 'warn'];
    case 'refresh': {
      const left = s.expiresAt === null ? '' : `, valid ${Math.round((s.expiresAt - Date.now()) / 1000)} s`;
      return [`new access token: generation ${s.generation}${left}`, 'ok'];
    }
    case 'refresh-error':
      return [`refresh failed (${n.error?.code ?? 'error'}): ${n.error?.message ?? ''}`, 'warn'];
    case 'expired':
      return [`session expired: the refresh token was rejected (${n.error?.code ?? ''})`, 'error'];
    case 'unauthorized':
      return [`a request sent with generation ${n.generation ?? '?'} got 401`, 'warn'];
    case 'transition':
      return null; // recorded below, with the diagram
    case 'user':
      return [`profile loaded: ${s.user?.name ?? s.user?.email ?? 'none'}`, 'info'];
    case 'user-error':
      return [`profile could not be loaded: ${n.error?.message ?? ''}`, 'warn'];
    case 'storage-error':
      return [`storage failed, the session stays in memory: ${n.error?.message ?? ''}`, 'warn'];
  }
}

function moved(from: string, event: string, to: string): void {
  const calm = event === 'restore.failed' && !auth.getSnapshot().error;
  lastTransition = { from, event, to, at: Date.now(), calm };
  transitionListeners.forEach((l) => l());
  timeline.add('transition', `${event}: ${from} → ${to}${calm ? ' (no stored session yet: sign in below; nothing went wrong)' : ''}`, 'info');
}

for (const name of EVENTS) {
  auth.on(name, (n) => {
    const s = n.snapshot;
    if (name === 'refresh') refreshCount++;
    if (name === 'transition') {
      // A change of status, with the machine event that caused it.
      moved(n.from ?? '?', n.event ?? '?', s.status);
      return;
    }
    const d = describe(name, n);
    if (d) timeline.add(name, d[0], d[1]);
    // Events that keep the status (authenticated → authenticated) announce no `transition`; the
    // notice tells which machine event it was, so the diagram can light up that loop too.
    if (name === 'refresh') moved('authenticated', 'refresh.succeeded', s.status);
    if (name === 'refresh-error' && s.status === 'authenticated') moved('authenticated', 'refresh.failed', s.status);
    if (name === 'user' && s.status === 'authenticated') moved('authenticated', 'user.loaded', s.status);
  });
}

// `refreshing` turning on is the machine's `refresh.started` (no notice of its own).
let wasRefreshing = auth.getSnapshot().refreshing;
auth.subscribe(() => {
  const s = auth.getSnapshot();
  if (s.refreshing && !wasRefreshing && s.status === 'authenticated') moved('authenticated', 'refresh.started', s.status);
  wasRefreshing = s.refreshing;
});

// ---------------------------------------------------------------------------------------------
// Requests through auth.fetch, with what happened to them.

export interface CallResult {
  ok: boolean;
  status: number | null;
  /** Waited for a refresh before it was first sent. */
  held: boolean;
  /** Got 401 and was sent again with a new token. */
  replayed: boolean;
  error: string | null;
  body: unknown;
}

export async function apiCall(path: string, spoil = false): Promise<CallResult> {
  const ctrl = new AbortController();
  const call: Call = {
    attempts: 0,
    spoil,
    refreshesAtStart: refreshCount,
    refreshingAtStart: auth.getSnapshot().refreshing,
    refreshesAtFirstSend: null,
    got401: false,
  };
  calls.set(ctrl.signal, call);
  const timer = setTimeout(() => ctrl.abort(new DOMException('No answer in 30 s', 'TimeoutError')), 30_000);
  const outcome = (partial: Pick<CallResult, 'ok' | 'status' | 'error' | 'body'>): CallResult => ({
    ...partial,
    held: call.refreshingAtStart || (call.refreshesAtFirstSend ?? refreshCount) > call.refreshesAtStart,
    replayed: call.attempts >= 2,
  });
  try {
    const res = await auth.fetch(path, { signal: ctrl.signal });
    const body: unknown = await res.json().catch(() => null);
    return outcome({ ok: res.ok, status: res.status, error: res.ok ? null : `HTTP ${res.status}`, body });
  } catch (error) {
    return outcome({ ok: false, status: null, error: isTesseraError(error) ? error.code : describeError(error), body: null });
  } finally {
    clearTimeout(timer);
  }
}

/** One request, told on the timeline. */
export async function loadData(): Promise<CallResult> {
  const r = await apiCall('/api/data');
  if (r.held) timeline.add('held', 'GET /api/data waited for the refresh in flight', 'net');
  if (r.replayed) timeline.add('replayed', 'GET /api/data got 401, replayed once with the new token', 'net');
  timeline.add('request', `GET /api/data → ${r.status ?? r.error}`, r.ok ? 'ok' : 'error');
  return r;
}

export interface BurstResult {
  n: number;
  ok: number;
  failed: number;
  held: number;
  replayed: number;
  /** Refreshes this tab saw finish while the burst ran. */
  refreshes: number;
  /** How many more POST /auth/refresh the server counted (every tab), or null without /__stats. */
  serverRefreshes: number | null;
  errors: Record<string, number>;
  ms: number;
}

async function serverRefreshCalls(): Promise<number | null> {
  try {
    const res = await fetch('/__stats', { signal: AbortSignal.timeout(5_000) });
    if (!res.ok) return null;
    const stats = (await res.json()) as { refresh?: { calls?: number } };
    return stats.refresh?.calls ?? null;
  } catch {
    return null;
  }
}

/** `n` concurrent `auth.fetch('/api/data')`. With `spoil`, each first attempt carries a spoiled token, as if it had expired. */
export async function burst(n: number, spoil: boolean): Promise<BurstResult> {
  const before = await serverRefreshCalls();
  const refreshesBefore = refreshCount;
  const started = performance.now();
  timeline.add('burst', `firing ${n} concurrent requests${spoil ? ', each first sent with a spoiled token' : ''}`, 'net');
  const results = await Promise.all(Array.from({ length: n }, () => apiCall('/api/data', spoil)));
  const ms = Math.round(performance.now() - started);
  const refreshes = refreshCount - refreshesBefore;
  const after = before === null ? null : await serverRefreshCalls();
  const errors: Record<string, number> = {};
  for (const r of results) if (!r.ok) errors[r.error ?? 'error'] = (errors[r.error ?? 'error'] ?? 0) + 1;
  const result: BurstResult = {
    n,
    ok: results.filter((r) => r.ok).length,
    failed: results.filter((r) => !r.ok).length,
    held: results.filter((r) => r.held).length,
    replayed: results.filter((r) => r.replayed).length,
    refreshes,
    serverRefreshes: before === null || after === null ? null : after - before,
    errors,
    ms,
  };
  if (result.held) timeline.add('held', `${result.held} of ${n} requests were held while the refresh ran`, 'net');
  if (result.replayed) timeline.add('replayed', `${result.replayed} of ${n} requests got 401 and were replayed once`, 'net');
  timeline.add(
    'burst',
    `${n} requests: ${result.ok} ok, ${result.failed} failed, ${refreshes} refresh${refreshes === 1 ? '' : 'es'} in ${ms} ms`,
    result.failed ? 'warn' : 'ok',
  );
  return result;
}

// ---------------------------------------------------------------------------------------------
// Fault injection on the reference server (demo mode: the CLI enables it).

export interface FaultSettings {
  latencyMs: number;
  failureRate: number;
  kind: string;
  when: string;
}

export async function getFaults(): Promise<FaultSettings | null> {
  try {
    const res = await fetch('/__faults', { signal: AbortSignal.timeout(5_000) });
    return res.ok ? ((await res.json()) as FaultSettings) : null;
  } catch {
    return null;
  }
}

export async function setFaults(settings: Partial<FaultSettings>): Promise<FaultSettings> {
  const res = await fetch('/__faults', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(settings),
    signal: AbortSignal.timeout(5_000),
  });
  if (!res.ok) throw new Error(`POST /__faults answered ${res.status}`);
  const now = (await res.json()) as FaultSettings;
  timeline.add(
    'faults',
    now.failureRate === 0 && now.latencyMs === 0
      ? 'server: refreshes back to normal'
      : `server: refreshes ${now.failureRate ? `fail ${Math.round(now.failureRate * 100)}% of the time` : ''}${now.failureRate && now.latencyMs ? ', ' : ''}${now.latencyMs ? `take ${now.latencyMs / 1000} s` : ''}`,
    'warn',
  );
  return now;
}
