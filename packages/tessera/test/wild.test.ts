import { afterEach, describe, expect, it } from 'vitest'
import { createAuth, systemClock, type Auth, type ChannelPort, type Clock } from '../src/index.js'
import { FakeClock, FakeServer, FakeStorage, creds, flush, tabs } from './fakes.js'

/**
 * Issue 13: the invariants hold in the wild — clocks that step differently in each tab, browsers
 * without Web Locks, a channel and a storage that other code on the origin can write to, peers of
 * another protocol version, and token servers that are slow.
 */

/** A tab's own wall clock over a shared timeline: `offset` moves `now()` (NTP, a manual change), never the timers. */
function steppedClock(base: FakeClock) {
  const clock = { offset: 0, now: () => base.now() + clock.offset, setTimeout: base.setTimeout, clearTimeout: base.clearTimeout }
  return clock satisfies Clock & { offset: number }
}

async function twoTabs(extra: Parameters<typeof tabs>[1] = {}) {
  const t = tabs(0, extra)
  const clocks = [steppedClock(t.clock), steppedClock(t.clock)]
  const [a, b] = clocks.map((clock) => t.open({ clock }))
  await t.clock.advance(200)
  await Promise.all([a!.ready(), b!.ready()])
  return { ...t, a: a!, b: b!, clocks }
}

const HOUR = 3_600_000

describe('finding 1: sessions are ordered by no wall clock (I7)', () => {
  for (const [name, step] of [
    ['back one hour', -HOUR],
    ['forward one hour', HOUR],
    ['back one day', -24 * HOUR],
    ['forward one day', 24 * HOUR],
  ] as const)
    it(`I1/I7: tab 1's clock steps ${name}, then it refreshes: tab 2 adopts, no refresh token is presented twice`, async () => {
      const { a, b, clocks, clock, server } = await twoTabs()
      await a.login(creds)
      await flush()
      clocks[0]!.offset = step
      await a.refresh()
      await flush()
      expect(await b.getAccessToken()).toBe(server.current)
      // Past the new token's expiry on every clock: whichever tab refreshes presents the live refresh token.
      clock.jump(301_000 + Math.max(0, step))
      await clock.advance(0)
      expect((await b.fetch('/api/data')).status).toBe(200)
      expect((await a.fetch('/api/data')).status).toBe(200)
      expect(server.reuse).toBe(0)
      expect([a, b].map((x) => x.getSnapshot().status)).toEqual(['authenticated', 'authenticated'])
      expect(await a.getAccessToken()).toBe(await b.getAccessToken())
    })

  it('I7: after tab 1 steps back one hour, its logout and a new login reach tab 2', async () => {
    const { a, b, clocks, server } = await twoTabs()
    await a.login(creds)
    await flush()
    clocks[0]!.offset = -HOUR
    await a.logout()
    await flush()
    expect(b.getSnapshot().status).toBe('unauthenticated')
    await a.login(creds)
    await flush()
    expect(b.getSnapshot().status).toBe('authenticated')
    expect(await b.getAccessToken()).toBe(server.current)
  })

  it('I7: a tab whose clock runs a day ahead logs in; the other tab, then a refresh there, are adopted back', async () => {
    const { a, b, clocks, server } = await twoTabs()
    clocks[1]!.offset = 24 * HOUR
    await b.login(creds)
    await flush()
    expect(await a.getAccessToken()).toBe(server.current)
    await a.refresh()
    await flush()
    expect(await b.getAccessToken()).toBe(server.current)
    expect(server.reuse).toBe(0)
  })
})

/** A real `BroadcastChannel` (Node's), as a page without Web Locks has. */
function realChannel(name: string): ChannelPort {
  const bc = new BroadcastChannel(name)
  return {
    post: (m) => bc.postMessage(m),
    subscribe(listener) {
      bc.onmessage = (e) => listener((e as MessageEvent).data)
      return () => bc.close()
    },
  }
}

describe('finding 2: one refresh across engines without Web Locks (I1, P10)', () => {
  const engines: Auth[] = []
  afterEach(() => engines.splice(0).forEach((e) => e.dispose()))

  it('I1: two engines, a real BroadcastChannel, shared storage, no lock port: 20 requests after expiry → 1 refresh, 0 reuse, 0 SESSION_EXPIRED', async () => {
    const server = new FakeServer(new FakeClock())
    server.ttl = 1
    const storage = new FakeStorage()
    const name = `tessera:nolocks-${Math.random()}`
    // A token server 50 ms away: long enough for both engines to start a refresh before either ends.
    const authority = { ...server.authority, refresh: async (rt: string | undefined, signal: AbortSignal) => (await new Promise((r) => setTimeout(r, 50)), server.authority.refresh(rt, signal)) }
    const open = () => {
      const auth = createAuth({ authority, clock: systemClock, storage, channel: realChannel(name), lock: null, fetch: server.fetch as typeof fetch, leeway: 0 })
      engines.push(auth)
      return auth
    }
    const a = open()
    const b = open()
    await Promise.all([a.ready(), b.ready()])
    await a.login(creds)
    await new Promise((r) => setTimeout(r, 50))
    expect(b.getSnapshot().status).toBe('authenticated')
    await new Promise((r) => setTimeout(r, 1_100)) // the token expired (1 s) in both engines; their timers fired together
    const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).fetch('/api/data')))
    const rejected = results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason.code)
    expect(rejected).toEqual([])
    expect(server.reuse).toBe(0)
    expect([a, b].map((x) => x.getSnapshot().status)).toEqual(['authenticated', 'authenticated'])
  })

  it('P10: an engine that loses a refresh race reads the shared session before it ends anything', async () => {
    // No channel and no lock: the storage is all the two engines share.
    const clock = new FakeClock()
    const server = new FakeServer(clock)
    const storage = new FakeStorage()
    // Both present the same refresh token; the server answers a's first (it rotates), then b's (reuse).
    const behind = { ...server.authority, refresh: async (rt: string | undefined, signal: AbortSignal) => (await new Promise((r) => setTimeout(r, 5)), server.authority.refresh(rt, signal)) }
    const open = (authority = server.authority) =>
      createAuth({ authority, clock, storage, channel: null, lock: null, fetch: server.fetch as typeof fetch, environment: { subscribe: () => () => {} } })
    const a = open()
    await a.ready()
    await a.login(creds)
    await flush()
    const b = open(behind)
    await b.ready()
    const results = await Promise.allSettled([a.refresh(), b.refresh()])
    expect(server.reuse).toBe(1) // nothing shared can prevent it here: the server tells
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled'])
    expect([a, b].map((x) => x.getSnapshot().status)).toEqual(['authenticated', 'authenticated'])
    expect(await b.getAccessToken()).toBe(await a.getAccessToken())
  })
})

describe('finding 3: what other code posts on the channel or writes to storage is bounded', () => {
  /** Posts `message` on the tabs' bus as some other script of the origin would. */
  async function forge(t: Awaited<ReturnType<typeof twoTabs>>, message: unknown) {
    const forger = t.bus.channel()
    forger.post(message)
    await flush()
  }
  const forgedTokens = (extra: Record<string, unknown> = {}) => ({ accessToken: 'forged', refreshToken: 'forged-rt', expiresAt: null, receivedAt: 1e15, ...extra })

  it('a forged session from the far future (huge receivedAt, huge order) does not pin the tabs: a genuine later login wins', async () => {
    const t = await twoTabs()
    await t.a.login(creds)
    await flush()
    await forge(t, { type: 'session', tokens: forgedTokens(), user: { name: 'Mallory' } })
    await forge(t, { v: 2, type: 'session', seen: 2 ** 49, order: [2 ** 49, 2 ** 49], age: 0, tokens: forgedTokens(), user: { name: 'Mallory' } })
    await t.b.login(creds)
    await flush()
    expect(t.a.getSnapshot().user).toEqual({ id: 'u1', name: 'Ada' })
    expect(await t.a.getAccessToken()).toBe(t.server.current)
    expect(await t.b.getAccessToken()).toBe(t.server.current)
  })

  it('an end naming a session this tab never saw does not log it out', async () => {
    const t = await twoTabs()
    await t.a.login(creds)
    await flush()
    await forge(t, { type: 'end', expired: true, session: { accessToken: 'never-seen', receivedAt: 1e15 } })
    await forge(t, { v: 2, type: 'end', seen: 1_000, epoch: 1_000, expired: false, session: { accessToken: 'never-seen', receivedAt: 1e15 } })
    expect([t.a, t.b].map((x) => x.getSnapshot().status)).toEqual(['authenticated', 'authenticated'])
  })

  it('P12: a forged cooldown of 1e300 is cut to what the policy allows: automatic refresh resumes', async () => {
    const t = await twoTabs()
    await t.a.login(creds)
    await flush()
    await forge(t, { type: 'cooldown', until: 1e300, code: 'NETWORK_ERROR', message: 'x' })
    await forge(t, { v: 2, type: 'cooldown', seen: 0, ms: 1e300, code: 'NETWORK_ERROR', message: 'x' })
    await t.clock.advance(24 * HOUR)
    expect(t.server.refreshCalls).toBeGreaterThan(0)
    expect([t.a, t.b].map((x) => x.getSnapshot().status)).toEqual(['authenticated', 'authenticated'])
    expect((await t.a.fetch('/api/data')).status).toBe(200)
  })

  it('an 8 MB access token on the channel is not adopted, nor ever sent', async () => {
    const t = await twoTabs()
    await t.a.login(creds)
    await flush()
    const huge = 'A'.repeat(8 * 2 ** 20)
    await forge(t, { type: 'session', tokens: forgedTokens({ accessToken: huge, receivedAt: Date.now() + HOUR }), user: null })
    await forge(t, { v: 2, type: 'session', seen: 1, order: [1, 5], age: 0, tokens: forgedTokens({ accessToken: huge }), user: null })
    expect(await t.a.getAccessToken()).toBe(t.server.current)
    expect(await t.b.getAccessToken()).toBe(t.server.current)
  })

  it('I8: a stored session with an 8 MB token, or an order from the future, is not restored', async () => {
    for (const raw of [
      JSON.stringify({ v: 1, tokens: forgedTokens({ accessToken: 'A'.repeat(8 * 2 ** 20), receivedAt: Date.now() }), user: null }),
      JSON.stringify({ v: 2, tokens: { ...forgedTokens({ receivedAt: Date.now() }), order: [2 ** 60, 0] }, user: null, seen: 2 ** 60 }),
    ]) {
      const storage = new FakeStorage()
      storage.map.set('tessera', raw)
      const server = new FakeServer(new FakeClock())
      const auth = createAuth({ authority: server.authority, storage, channel: null, lock: null })
      const errors: string[] = []
      auth.on('storage-error', (n) => void errors.push(n.error!.code))
      await auth.ready()
      expect(auth.getSnapshot().status).toBe('unauthenticated')
      expect(errors).toEqual(['INVALID_STORED_SESSION'])
      auth.dispose()
    }
  })
})

describe('finding 6: the proactive lead covers the refresh latency the engine observes', () => {
  /**
   * A token server 3 s away and a resource server whose answers take 3 s too (a loaded machine):
   * a request is checked when it arrives, against the expiry the server gave the token.
   */
  function slowWorld() {
    const clock = new FakeClock()
    const server = new FakeServer(clock)
    server.ttl = 8
    const wait = (ms: number) => new Promise<void>((r) => clock.setTimeout(r, ms))
    const expiry = new Map<string, number>()
    const issue = server.issue.bind(server)
    server.issue = () => {
      const body = issue()
      expiry.set(body.access_token, clock.now() + server.ttl * 1000)
      return body
    }
    const served: { at: number; status: number }[] = []
    const fetchImpl = async (_input: RequestInfo | URL, init?: RequestInit) => {
      const token = new Headers(init?.headers).get('authorization')?.slice(7) ?? ''
      await wait(3_000)
      const status = (expiry.get(token) ?? 0) > clock.now() ? 200 : 401
      served.push({ at: clock.now(), status })
      return new Response(null, { status })
    }
    const authority = { ...server.authority, refresh: async (rt: string | undefined, signal: AbortSignal) => (await wait(3_000), server.authority.refresh(rt, signal)) }
    return { clock, server, served, fetchImpl, authority }
  }

  it('I6: refreshes that take 3 s on 8 s tokens: after the first one is measured, no request is served 401', async () => {
    const { clock, served, fetchImpl, authority } = slowWorld()
    const auth = createAuth({ authority, clock, fetch: fetchImpl as typeof fetch, channel: null, lock: null, environment: { subscribe: () => () => {} } })
    await auth.ready()
    await auth.login(creds)
    const start = clock.now()
    const sent: Promise<Response>[] = []
    for (let i = 0; i < 120; i++) {
      sent.push(auth.fetch('/api/data'))
      await clock.advance(500)
    }
    await clock.advance(10_000)
    expect((await Promise.all(sent)).every((r) => r.status === 200)).toBe(true) // 401s were replayed
    // The first cycle cannot know the latency yet; from the second one on, the lead covers it.
    const late401 = served.filter((x) => x.status === 401 && x.at > start + 16_000)
    expect(late401).toEqual([])
    auth.dispose()
  })

  it('a tab that adopts a session refreshed by another learns how long that refresh took', async () => {
    const t = tabs(2)
    const [a, b] = t.all
    await t.clock.advance(200)
    await a!.login(creds)
    await flush()
    // a's refreshes take 3 s; b only hears of them. With 8 s tokens b's lead grows from 2 s to 4 s.
    t.server.ttl = 8
    const real = t.server.authority.refresh
    t.server.authority.refresh = async (rt, signal) => (await new Promise<void>((r) => t.clock.setTimeout(r, 3_000)), real(rt, signal))
    const refreshed = a!.refresh()
    await t.clock.advance(3_000)
    await refreshed
    await flush()
    await t.clock.advance(4_100 - 1) // 3.9 s left on b's clock: inside a 4 s lead, outside a 2 s one
    expect(b!.getSnapshot().isExpiringSoon).toBe(true)
    a!.dispose()
    b!.dispose()
  })
})
