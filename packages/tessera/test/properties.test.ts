import fc from 'fast-check'
import { afterAll, describe, expect, it } from 'vitest'
import { createAuth, isTesseraError, type AuthStatus } from '../src/index.js'
import { flush, type Outcome } from './fakes.js'
import { oneRefreshAtATime, propertyRuns, propertyWorld, track, type Sent } from './kit.js'

/**
 * Random interleavings of requests, 401s, refresh outcomes, logouts, logins, clock jumps (a
 * sleeping laptop) and wall-clock steps back and forth,
 * with fast-check's scheduler deciding when every server answer is delivered. After every step
 * and at the end, the invariants I1 I2 I3 I4 I6 I8 must hold.
 */
const { deep, runs: RUNS, replay } = propertyRuns(10_000, 100_000)
let schedules = 0

type Command =
  | { type: 'request'; n: number }
  | { type: 'revoke' }
  | { type: 'outcome'; outcome: Outcome }
  | { type: 'logout' }
  | { type: 'login' }
  | { type: 'refresh' }
  | { type: 'advance'; ms: number }
  | { type: 'jump'; ms: number }
  | { type: 'step'; ms: number }
  | { type: 'visible' }

const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ type: fc.constant('request' as const), n: fc.integer({ min: 1, max: 4 }) }) },
  { weight: 2, arbitrary: fc.constant({ type: 'revoke' as const }) },
  {
    weight: 3,
    arbitrary: fc.record({
      type: fc.constant('outcome' as const),
      outcome: fc.constantFrom<Outcome>('ok', 'reject', 'network', '503', '429', 'hang', 'malformed'),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ type: 'logout' as const }) },
  { weight: 1, arbitrary: fc.constant({ type: 'login' as const }) },
  { weight: 1, arbitrary: fc.constant({ type: 'refresh' as const }) },
  { weight: 2, arbitrary: fc.record({ type: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 120_000 }) }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('jump' as const), ms: fc.integer({ min: 0, max: 400_000 }) }) },
  { weight: 1, arbitrary: fc.constant({ type: 'visible' as const }) },
  // The wall clock steps (NTP, a manual change): back or forward, timers unmoved.
  { weight: 1, arbitrary: fc.record({ type: fc.constant('step' as const), ms: fc.constantFrom(-86_400_000, -3_600_000, -30_000, 30_000, 3_600_000, 86_400_000) }) },
)

const step = fc.record({ command, release: fc.nat({ max: 6 }) })

const noop = () => {}

async function run(s: fc.Scheduler, steps: { command: Command; release: number }[]) {
  schedules++
  const { clock, server, violations, fail } = propertyWorld()

  // I1: count refresh attempts in flight from the engine's point of view.
  const oneAtATime = oneRefreshAtATime(fail)
  let rejectionsServed = 0
  // The scheduler decides when a refresh request reaches the server; one the engine already
  // abandoned never does (a lost request). A lost *response* after rotation is the server's
  // reuse-grace-window case, covered by the server's own tests.
  const rawRefresh = server.authority.refresh
  const refresh = (rt: string | undefined, signal: AbortSignal) =>
    s.schedule(Promise.resolve(), `refresh(${rt})`).then(() => {
      if (signal.aborted) throw signal.reason
      if (server.next[0] === 'reject') rejectionsServed++
      return rawRefresh(rt, signal)
    })
  const authority = {
    ...server.authority,
    login: s.scheduleFunction(async function login(c: { user: string; password: string }) {
      return server.authority.login(c)
    }),
    refresh: (rt: string | undefined, signal: AbortSignal) => oneAtATime(signal, () => refresh(rt, signal)),
  }

  // I3/I4: watch every request the resource server receives.
  const sends = new Map<string, number>()
  const deadTokens = new Set<string>()
  const fetchImpl = s.scheduleFunction(async function resource(input: RequestInfo | URL, init?: RequestInit) {
    return server.fetch(input, init)
  })
  const watchedFetch = (input: RequestInfo | URL, init?: RequestInit) => {
    const id = new Headers(init?.headers).get('x-id')!
    const token = new Headers(init?.headers).get('authorization')?.slice(7) ?? ''
    sends.set(id, (sends.get(id) ?? 0) + 1)
    if (sends.get(id)! > 2) fail(`I3: request ${id} sent ${sends.get(id)} times`)
    if (deadTokens.has(token)) fail(`I4: request ${id} carried a token from an ended session`)
    return fetchImpl(input, init)
  }

  let visible = noop
  // The engine's wall clock: the timeline timers fire on, plus an offset that steps.
  const wall = { offset: 0, now: () => clock.now() + wall.offset, setTimeout: clock.setTimeout, clearTimeout: clock.clearTimeout }
  const auth = createAuth({
    authority,
    clock: wall,
    environment: {
      subscribe: (emit) => {
        visible = () => emit('visibilitychange')
        return noop
      },
    },
    fetch: watchedFetch as typeof fetch,
    random: () => 0.5,
    retry: { timeout: 5_000 },
  })
  const unhandled: unknown[] = []

  const requests: Sent[] = []
  let nextId = 0
  let loggedOutSinceLogin = false
  const ended = () => {
    for (const t of server.live) deadTokens.add(t)
    for (let i = 1; i <= server.n; i++) deadTokens.add(`at-${i}`)
  }

  const checkSnapshot = () => {
    const snap = auth.getSnapshot()
    const st: AuthStatus = snap.status
    // I8: the snapshot is always consistent.
    if (st === 'authenticated' && snap.expiresAt === null) fail('I8: authenticated without expiry')
    if (st !== 'authenticated' && (snap.expiresAt !== null || snap.user !== null || snap.refreshing)) fail(`I8: ${st} with session data`)
    // I6: only a rejection served by the server can expire the session.
    if (st === 'expired' && rejectionsServed === 0 && server.reuse === 0) fail('I6: expired without a definite rejection')
    // P10: a logout is never undone by a late refresh.
    if (loggedOutSinceLogin && st === 'authenticated') fail('P10: session revived after logout')
  }

  await auth.ready()
  for (const { command: c, release } of steps) {
    switch (c.type) {
      case 'request':
        for (let i = 0; i < c.n; i++) {
          const sent = auth.fetch('/api/data', { headers: { 'x-id': String(nextId++) } })
          requests.push(track(sent, fail, (res) => res.status === 200 || res.status === 401 || fail(`unexpected status ${res.status}`)))
        }
        break
      case 'revoke':
        server.revokeAccess()
        break
      case 'outcome':
        server.next.push(c.outcome)
        break
      case 'logout':
        ended()
        loggedOutSinceLogin = true
        auth.logout().catch((e) => unhandled.push(e))
        break
      case 'login':
        loggedOutSinceLogin = false
        auth.login({ user: 'ada', password: 'pw' }).catch((e) => isTesseraError(e) || fail(`untyped login error ${String(e)}`))
        break
      case 'refresh':
        auth.refresh().catch((e) => isTesseraError(e) || fail(`untyped refresh error ${String(e)}`))
        break
      case 'advance':
        await clock.advance(c.ms)
        break
      case 'jump':
        clock.jump(c.ms)
        break
      case 'step':
        wall.offset += c.ms
        break
      case 'visible':
        visible()
        break
    }
    for (let i = 0; i < release && s.count() > 0; i++) await s.waitOne()
    await flush()
    checkSnapshot()
  }
  // Drain: deliver everything, let every timeout and backoff run out. Bounded.
  for (let i = 0; i < 60 && (s.count() > 0 || requests.some((r) => !r.settled)); i++) {
    await s.waitAll()
    await clock.advance(40_000)
  }
  checkSnapshot()
  // I2: nothing hangs.
  const hung = requests.filter((r) => !r.settled)
  if (hung.length) fail(`I2: ${hung.length} requests never settled`)
  // I1 across the whole run: a rotated refresh token is never presented again.
  if (server.reuse > 0) fail(`I1: ${server.reuse} refresh-token reuses`)
  if (unhandled.length) fail('logout rejected')
  auth.dispose()
  await flush()
  if (violations.length) throw new Error(`${violations.join('\n')}\n${s.report()}`)
}

describe('properties: random interleavings keep every invariant', () => {
  afterAll(() => {
    console.log(`property schedules run: ${schedules} (TESSERA_PROPERTY_RUNS=deep for ${100_000})`)
  })

  it(`I1 I2 I3 I4 I6 I8 hold over ${RUNS} random schedules`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), fc.array(step, { minLength: 1, maxLength: 25 }), async (s, steps) => run(s, steps)),
      { numRuns: RUNS, interruptAfterTimeLimit: deep ? undefined : 240_000, ...replay },
    )
    if (!replay) expect(schedules).toBeGreaterThanOrEqual(RUNS)
  }, deep ? 3_600_000 : 300_000)
})
