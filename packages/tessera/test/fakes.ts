import { TesseraError, createAuth, type AuthOptions, type ChannelPort, type Clock, type EnvironmentSignal, type LockPort, type StoragePort } from '../src/index.js'

/** Lets pending promise callbacks run (several rounds, for chains). */
export async function flush(rounds = 20) {
  for (let i = 0; i < rounds; i++) await Promise.resolve()
}

/** A forward-only clock. `advance` fires due timers in order; `jump` moves time without firing (sleep). */
export class FakeClock implements Clock {
  t = Date.UTC(2026, 10, 25, 12)
  #id = 0
  timers = new Map<number, { at: number; fn: () => void }>()
  now = () => this.t
  setTimeout = (fn: () => void, ms: number) => {
    this.timers.set(++this.#id, { at: this.t + Math.max(0, ms), fn })
    return this.#id
  }
  clearTimeout = (id: unknown) => void this.timers.delete(id as number)
  /**
   * Moves time forward by `ms`, firing each timer at its due time, with microtasks flushed between
   * (and `between` awaited after each timer, for a test that must let its own world catch up).
   */
  async advance(ms: number, between?: () => Promise<void>) {
    const end = this.t + ms
    await flush()
    for (;;) {
      const next = [...this.timers].filter(([, x]) => x.at <= end).sort((a, b) => a[1].at - b[1].at || a[0] - b[0])[0]
      if (!next) break
      this.timers.delete(next[0])
      this.t = Math.max(this.t, next[1].at)
      next[1].fn()
      await flush()
      await between?.()
    }
    this.t = end
    await flush()
  }
  /** Time passes with no timer firing (a sleeping laptop); overdue timers fire on the next advance. */
  jump(ms: number) {
    this.t += ms
  }
}

/** Environment signals fired by hand. */
export class FakeEnvironment {
  emit: ((s: EnvironmentSignal) => void) | null = null
  subscribe = (emit: (s: EnvironmentSignal) => void) => {
    this.emit = emit
    return () => void (this.emit = null)
  }
  fire(s: EnvironmentSignal) {
    this.emit?.(s)
  }
}

/** A map-backed storage that can be told to throw. */
export class FakeStorage implements StoragePort {
  map = new Map<string, string>()
  broken = false
  get = (k: string) => {
    if (this.broken) throw new Error('SecurityError: storage disabled')
    return this.map.get(k) ?? null
  }
  set = (k: string, v: string) => {
    if (this.broken) throw new DOMException('quota exceeded', 'QuotaExceededError')
    this.map.set(k, v)
  }
  remove = (k: string) => {
    if (this.broken) throw new Error('SecurityError: storage disabled')
    this.map.delete(k)
  }
}

export type Outcome = 'ok' | 'reject' | 'network' | '503' | '429' | 'hang' | 'malformed'

/**
 * An in-process token server: rotating single-use refresh tokens (a reused one is rejected and
 * counted), access tokens `at-N` valid for `ttl` seconds, and a resource check for `fetch`.
 * `next` scripts the outcome of the coming refresh attempts (default ok).
 */
export class FakeServer {
  ttl = 300
  n = 0
  refreshCalls = 0
  loginCalls = 0
  reuse = 0
  next: Outcome[] = []
  /** The access tokens the resource server still accepts. */
  live = new Set<string>()
  current: string | null = null
  refreshTokens = new Map<string, 'fresh' | 'used'>()
  hanging: (() => void)[] = []
  clock: FakeClock
  constructor(clock: FakeClock) {
    this.clock = clock
  }
  issue() {
    const at = `at-${++this.n}`
    const rt = `rt-${this.n}`
    this.live.add(at)
    this.current = at
    this.refreshTokens.set(rt, 'fresh')
    return { access_token: at, refresh_token: rt, expires_in: this.ttl, token_type: 'Bearer' }
  }
  /** Revoke every access token (the server restarted its keys, say). */
  revokeAccess() {
    this.live.clear()
  }
  authority = {
    login: async (c: { user: string; password: string }) => {
      this.loginCalls++
      await Promise.resolve()
      if (c.password !== 'pw') throw new TesseraError('LOGIN_FAILED', 'Wrong email or password', { status: 401 })
      return this.issue()
    },
    refresh: (rt: string | undefined, signal: AbortSignal) => {
      this.refreshCalls++
      const outcome = this.next.shift() ?? 'ok'
      return new Promise<unknown>((resolve, reject) => {
        const settle = () => {
          if (outcome === 'hang') return
          if (outcome === 'network') return reject(new TypeError('fetch failed'))
          if (outcome === '503') return reject(new TesseraError('NETWORK_ERROR', 'Service unavailable', { status: 503 }))
          if (outcome === '429') return reject(new TesseraError('NETWORK_ERROR', 'Too many requests', { status: 429, retryAfter: 5_000 }))
          if (outcome === 'malformed') return resolve({ access_token: 42 })
          if (outcome === 'reject' || !rt || this.refreshTokens.get(rt) !== 'fresh') {
            if (rt && this.refreshTokens.get(rt) === 'used') this.reuse++
            return reject(new TesseraError('INVALID_GRANT', 'invalid_grant', { status: 400 }))
          }
          this.refreshTokens.set(rt, 'used')
          resolve(this.issue())
        }
        if (outcome === 'hang') this.hanging.push(() => reject(new TypeError('connection reset')))
        // Answer on a later tick, like a real server.
        Promise.resolve().then(settle)
        signal.addEventListener('abort', () => reject(signal.reason))
      })
    },
    logout: async () => {},
    fetchUser: async (token: string) => {
      if (!this.live.has(token)) throw new TesseraError('NETWORK_ERROR', 'unauthorized', { status: 401 })
      return { id: 'u1', name: 'Ada' }
    },
  }
  requests: { url: string; auth: string | null; body: string | null }[] = []
  /** A resource server: 401 unless the bearer token is live. */
  fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const req = new Request(input instanceof Request || /^https?:/.test(String(input)) ? input : new URL(String(input), 'http://tessera.invalid'), init)
    const auth = req.headers.get('authorization')
    const body = req.body ? await req.text() : null
    this.requests.push({ url: req.url, auth, body })
    const token = auth?.replace(/^Bearer /, '') ?? ''
    if (!this.live.has(token)) return new Response('{"error":"invalid_token"}', { status: 401 })
    return new Response(JSON.stringify({ ok: true, token, body }), { status: 200 })
  }
}

/** The credentials the fake server accepts. */
export const creds = { user: 'ada', password: 'pw' }

/** A fresh engine over fakes, restored and logged in. */
export async function loggedIn(extra?: Parameters<typeof setup>[0]) {
  const t = setup(extra)
  await t.auth.ready()
  await t.auth.login(creds)
  return t
}

/** A fresh engine over fakes. */
export function setup(extra: Partial<AuthOptions<{ id: string; name: string }, { user: string; password: string }>> = {}) {
  const clock = new FakeClock()
  const server = new FakeServer(clock)
  const environment = new FakeEnvironment()
  const storage = new FakeStorage()
  const auth = createAuth({
    authority: server.authority,
    clock,
    environment,
    storage,
    fetch: server.fetch as typeof fetch,
    random: () => 0.5,
    channel: null, // one tab: cross-tab behaviour has its own tests (tabs())
    lock: null,
    ...extra,
  })
  return { auth, clock, server, environment, storage }
}

/** A storage whose reads wait until `open()`: the engine stays `initializing` until then. */
export function slowStorage(inner = new FakeStorage()) {
  let open!: () => void
  const gate = new Promise<void>((r) => (open = r))
  return { storage: { get: (k: string) => gate.then(() => inner.get(k)), set: inner.set, remove: inner.remove }, open }
}

/** Makes each login wait for `release()`, so a form's pending state can be seen; `restore()` undoes it. */
export function holdLogins(server: FakeServer) {
  const login = server.authority.login
  let release = () => {}
  server.authority.login = async (c) => {
    await new Promise<void>((r) => (release = r))
    return login(c)
  }
  return { release: () => release(), restore: () => void (server.authority.login = login) }
}

/** Counts the engine's live `subscribe` listeners, to prove a binding leaves none behind. */
export function countListeners(auth: { subscribe(listener: () => void): () => void }) {
  const subscribe = auth.subscribe
  const counter = { live: 0 }
  auth.subscribe = (listener) => {
    counter.live++
    const off = subscribe(listener)
    let on = true
    return () => {
      if (on) counter.live--
      on = false
      off()
    }
  }
  return counter
}

/** An in-process BroadcastChannel: delivers to every other subscriber, on a later microtask. */
export class FakeBus {
  listeners = new Set<(m: unknown) => void>()
  sent: unknown[] = []
  channel(): ChannelPort {
    let mine: ((m: unknown) => void) | null = null
    return {
      post: (m) => {
        this.sent.push(m)
        const copy = structuredClone(m) // what crosses a real channel is a copy
        for (const l of [...this.listeners]) if (l !== mine) queueMicrotask(() => l(copy))
      },
      subscribe: (l) => {
        mine = l
        this.listeners.add(l)
        return () => void this.listeners.delete(l)
      },
    }
  }
}

/** In-process Web Locks: one holder per name, FIFO waiters, abortable waits. */
export class FakeLocks implements LockPort {
  held = new Set<string>()
  queue: { name: string; grant: () => void }[] = []
  acquire = (name: string, signal: AbortSignal) =>
    new Promise<() => void>((resolve, reject) => {
      const release = () => {
        this.held.delete(name)
        const next = this.queue.find((q) => q.name === name)
        if (next) {
          this.queue.splice(this.queue.indexOf(next), 1)
          next.grant()
        }
      }
      const grant = () => {
        this.held.add(name)
        resolve(release)
      }
      if (!this.held.has(name)) return grant()
      const entry = { name, grant }
      this.queue.push(entry)
      signal.addEventListener('abort', () => {
        const i = this.queue.indexOf(entry)
        if (i >= 0) this.queue.splice(i, 1), reject(signal.reason)
      })
    })
}

/** Several engines ("tabs") of one session key over one bus, one lock manager and one server. */
export function tabs(n: number, extra: Partial<AuthOptions<{ id: string; name: string }, { user: string; password: string }>> = {}) {
  const clock = new FakeClock()
  const server = new FakeServer(clock)
  const bus = new FakeBus()
  const locks = new FakeLocks()
  const open = (more: typeof extra = {}) =>
    createAuth({
      authority: server.authority,
      clock,
      environment: new FakeEnvironment(),
      fetch: server.fetch as typeof fetch,
      random: () => 0.5,
      channel: bus.channel(),
      lock: locks,
      ...extra,
      ...more,
    })
  return { clock, server, bus, locks, open, all: Array.from({ length: n }, () => open()) }
}
