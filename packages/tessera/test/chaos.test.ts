import { openPgliteStore, silentLogger, startServer, type RunningServer, type ServerOptions, type StatsSnapshot, type Store } from '@tessera/server'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAuth, isTesseraError, type Auth, type TesseraError } from '../src/index.js'
import { httpAuthority } from '../src/authorities/http.js'
import { FakeEnvironment } from './fakes.js'
import { TRANSPORTS, echoed, senders, type TransportName } from './transport-kit.js'

/**
 * Chaos against the real reference server (rotating single-use refresh tokens, reuse detection),
 * with its fault switch on: ~20 % of refreshes fail (dropped connection, 500, timeout — rotated),
 * refresh latency jitters, the server's clock jumps past the access token's life (401 storms in
 * flight), and the app forces refreshes, while every transport carries concurrent load.
 *
 * Invariants checked: I1 (one refresh in flight; server `reuseDetected === 0`), I2 (every request
 * settles before its deadline), I6 (no fault ends the session: never `expired`/`unauthenticated`).
 */

const ACCESS_TTL = 2 // seconds
const POLICY = { attempts: 4, timeout: 1_200, baseDelay: 20, maxDelay: 200, cooldown: 200 }
const DEADLINE = 15_000 // > attempts × timeout + backoff: I2's bound for one request
const KINDS = ['drop', '500', 'timeout'] as const

let store: Store
/** Grace server: `reuseGraceMs` on, so `when: 'after'` faults (rotated, then the answer lost) are survivable. */
let graceful: RunningServer
/** Strict server: no grace window, so any second presentation of a refresh token is reuse. */
let strict: RunningServer
let skew = 0 // server clock − real clock; jumps past the access token's life make every token in flight stale
const base: ServerOptions = {
  port: 0,
  faults: true,
  accessTokenTtl: ACCESS_TTL,
  scryptCost: 1024,
  logger: silentLogger,
  throttle: { maxFailuresPerAddress: 10_000, maxFailuresPerAccount: 10_000 },
  now: () => Date.now() + skew,
}
beforeAll(async () => {
  store = await openPgliteStore()
  graceful = await startServer({ ...base, store, reuseGraceMs: 10_000 })
  strict = await startServer({ ...base, store, reuseGraceMs: 0 })
})
afterAll(async () => {
  await graceful?.close()
  await strict?.close()
  await store?.close()
  console.log(
    `chaos totals: ${totals.requests} requests, ${totals.settled} settled (${totals.ok} ok, ${totals.final401} final 401 after one replay, ${totals.transient} typed transient), ` +
      `${totals.refreshAttempts} refresh attempts, ${totals.faults} faults injected and seen by the client, ${totals.refreshes} refreshes served, ${totals.violations} violations`,
  )
})

const totals = { requests: 0, settled: 0, ok: 0, final401: 0, transient: 0, refreshAttempts: 0, faults: 0, refreshes: 0, violations: 0 }

const post = (server: RunningServer, path: string, body?: unknown) =>
  fetch(server.url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) })
const stats = async (server: RunningServer) => (await (await fetch(`${server.url}/__stats`)).json()) as StatsSnapshot
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

let users = 0
/**
 * A logged-in engine on `server`, its refresh attempts instrumented: concurrent attempts are an
 * I1 violation; every failed attempt is counted by error code (one per injected fault).
 */
async function session(server: RunningServer, retry = POLICY) {
  const email = `chaos-${++users}-${Date.now()}@example.test`
  const password = 'correct horse battery'
  expect((await post(server, '/auth/register', { email, password })).status).toBe(201)
  const http = httpAuthority({ baseUrl: `${server.url}/auth` })
  const violations: string[] = []
  const probe = { attempts: 0, failures: {} as Record<string, number>, inFlight: 0 }
  const authority = {
    ...http,
    refresh(refreshToken: string | undefined, signal: AbortSignal) {
      probe.attempts++
      if (++probe.inFlight > 1) violations.push(`I1: ${probe.inFlight} refresh attempts in flight`)
      let done = false
      const end = () => void (done || ((done = true), probe.inFlight--))
      signal.addEventListener('abort', end, { once: true })
      return http.refresh(refreshToken, signal).then(
        (body) => (end(), body),
        (e: TesseraError) => {
          end()
          const code = signal.aborted && isTesseraError(signal.reason) ? signal.reason.code : (e?.code ?? String(e))
          probe.failures[code] = (probe.failures[code] ?? 0) + 1
          throw e
        },
      )
    },
  }
  const environment = new FakeEnvironment()
  const auth: Auth = createAuth({
    authority,
    key: `chaos-${users}`,
    allowedOrigins: [server.url],
    environment,
    retry,
    channel: null,
    lock: null,
  })
  const events: string[] = []
  for (const type of ['login', 'logout', 'refresh', 'refresh-error', 'expired'] as const) auth.on(type, () => events.push(type))
  await auth.ready()
  await auth.login({ email, password })
  auth.subscribe(() => {
    const { status } = auth.getSnapshot()
    if (status !== 'authenticated') violations.push(`I6: status became ${status}`)
  })
  return { auth, probe, violations, events, environment }
}

/** Sets the next fault: ~20 % failure, the kind rotated, latency jittered. */
async function fault(server: RunningServer, wave: number, when: 'before' | 'after') {
  const res = await post(server, '/__faults', { failureRate: 0.2, kind: KINDS[wave % KINDS.length], when, latencyMs: Math.floor(Math.random() * 60) })
  expect(res.status).toBe(200)
}

type Outcome = 'ok' | 'final401' | 'transient' | 'hung' | 'other'

/**
 * Drives `waves × perWave` concurrent requests through `name` against `server`, changing the
 * fault every wave (kind rotated; with `before+after`, every other wave loses the answer after
 * rotating), forcing a refresh every wave and jumping the server clock twice.
 */
async function chaos(name: TransportName, server: RunningServer, mode: 'before' | 'before+after', waves: number, perWave: number) {
  const { auth, probe, violations, events } = await session(server)
  const send = senders(auth)[name]
  await post(server, '/__stats/reset')
  const outcomes: Record<Outcome, number> = { ok: 0, final401: 0, transient: 0, hung: 0, other: 0 }
  const others: string[] = []
  const pending: Promise<void>[] = []
  let forced = 0
  let forcedFailed = 0
  for (let w = 0; w < waves; w++) {
    await fault(server, w, mode === 'before' || w % 2 === 0 ? 'before' : 'after')
    {
      forced++
      auth.refresh().catch((e) => (isTesseraError(e, 'NETWORK_ERROR') || isTesseraError(e, 'TIMEOUT') ? forcedFailed++ : others.push(`forced refresh: ${e}`)))
    }
    if (w === Math.floor(waves / 3) || w === Math.floor((2 * waves) / 3)) skew += (ACCESS_TTL + 0.5) * 1000 // every token in flight is now stale on the server
    for (let k = 0; k < perWave; k++) {
      const i = w * perWave + k
      let timer: ReturnType<typeof setTimeout>
      const deadline = new Promise<Outcome>((r) => (timer = setTimeout(() => r('hung'), DEADLINE)))
      const run = send(`${server.url}/api/echo`, { i }).then(
        ({ status, json }): Outcome => {
          if (status === 200 && (echoed(name, json) as { i?: number } | undefined)?.i === i) return 'ok'
          if (status === 401) return 'final401' // P5: a 401 right after the one replay surfaces (a clock jump landed between)
          others.push(`${i}: HTTP ${status} ${JSON.stringify(json)}`)
          return 'other'
        },
        (e: unknown): Outcome => {
          if (isTesseraError(e, 'NETWORK_ERROR') || isTesseraError(e, 'TIMEOUT')) return 'transient' // a refresh that used up its retries
          others.push(`${i}: ${e}`)
          return 'other'
        },
      )
      pending.push(Promise.race([run, deadline]).then((o) => (clearTimeout(timer), void outcomes[o]++)))
    }
    await sleep(60)
  }
  await Promise.all(pending)
  await post(server, '/__faults', {})
  const s = await stats(server)
  const faults = Object.values(probe.failures).reduce((a, b) => a + b, 0)
  const requests = waves * perWave
  const settled = requests - outcomes.hung
  const snapshot = auth.getSnapshot()
  const badEvents = events.filter((e) => e === 'expired' || e === 'logout')
  const allViolations = [
    ...violations,
    ...others,
    ...(outcomes.hung ? [`I2: ${outcomes.hung} requests never settled`] : []),
    ...(s.refresh.reuseDetected ? [`I1: server saw ${s.refresh.reuseDetected} refresh-token reuses`] : []),
    ...(s.refresh.invalidGrant ? [`I6: server answered invalid_grant ${s.refresh.invalidGrant} times`] : []),
    ...badEvents.map((e) => `I6: spurious ${e} event`),
  ]
  console.log(
    `chaos ${name} (${mode} faults, ${server === graceful ? 'reuseGraceMs 10 000' : 'no grace window'}): ${requests} requests, ${settled} settled ` +
      `(${outcomes.ok} ok, ${outcomes.final401} final 401, ${outcomes.transient} typed transient), ${forced} forced refreshes (${forcedFailed} gave up), ` +
      `${probe.attempts} refresh attempts, faults seen ${JSON.stringify(probe.failures)}, server refresh ${JSON.stringify(s.refresh)} api ${JSON.stringify(s.api)}, violations ${allViolations.length}`,
  )
  Object.assign(totals, {
    requests: totals.requests + requests,
    settled: totals.settled + settled,
    ok: totals.ok + outcomes.ok,
    final401: totals.final401 + outcomes.final401,
    transient: totals.transient + outcomes.transient,
    refreshAttempts: totals.refreshAttempts + probe.attempts,
    faults: totals.faults + faults,
    refreshes: totals.refreshes + s.refresh.succeeded,
    violations: totals.violations + allViolations.length,
  })
  auth.dispose()
  return { outcomes, allViolations, snapshot, s, requests, gaveUp: forcedFailed }
}

describe('chaos: ~20 % of refreshes fail, latency jitters, tokens go stale in flight', () => {
  for (const name of TRANSPORTS) {
    it(`I1 I2 I6 ${name}: 300 concurrent requests, faults before and after rotation (server reuseGraceMs 10 000)`, async () => {
      const { outcomes, allViolations, snapshot, s, requests, gaveUp } = await chaos(name, graceful, 'before+after', 30, 10)
      expect(allViolations).toEqual([])
      expect(snapshot).toMatchObject({ status: 'authenticated' })
      expect(s.refresh.reuseDetected).toBe(0)
      expect(outcomes.hung).toBe(0)
      // Only a refresh that fails all its attempts (0.2⁴ a refresh: it happens, about once in a
      // hundred runs) may cost requests, typed; without one, nearly everything succeeds.
      if (gaveUp === 0) {
        expect(outcomes.transient).toBe(0)
        expect(outcomes.ok).toBeGreaterThanOrEqual(requests * 0.8)
      }
    })
  }

  for (const name of TRANSPORTS) {
    it(`I1 ${name}: faults before rotation only, no grace window → the server never sees a refresh token twice`, async () => {
      const { allViolations, snapshot, s, outcomes } = await chaos(name, strict, 'before', 12, 10)
      expect(allViolations).toEqual([])
      expect(snapshot.status).toBe('authenticated')
      expect(s.refresh).toMatchObject({ reuseDetected: 0, invalidGrant: 0 })
      expect(outcomes.hung).toBe(0)
    })
  }

  it('the runs above injected faults and served refreshes (the chaos was real)', () => {
    expect(totals.requests).toBe(4 * 300 + 4 * 120)
    expect(totals.settled).toBe(totals.requests)
    expect(totals.faults).toBeGreaterThan(0)
    expect(totals.refreshes).toBeGreaterThan(8)
    expect(totals.violations).toBe(0)
  })
})

describe('outage: the token server is down for longer than the retry budget', () => {
  it('I6 P11 P12: requests fail with a typed network error, the session reports the outage, and recovers without a new login', async () => {
    // A long cooldown: one retry cycle per outage, however many requests come (P12); `online` lifts it.
    const OUTAGE_POLICY = { attempts: 3, timeout: 300, baseDelay: 20, maxDelay: 50, cooldown: 10_000 }
    let server = await startServer({ ...base, store, accessTokenTtl: 1 })
    const port = server.port
    const { auth, probe, violations, events, environment } = await session(server, OUTAGE_POLICY)
    const send = senders(auth)
    const url = () => `${server.url}/api/echo`
    for (const name of TRANSPORTS) expect((await send[name](url(), { i: 1 })).status).toBe(200)
    const errors: TesseraError[] = []
    auth.on('refresh-error', (n) => errors.push(n.error!))

    const before = probe.attempts
    await server.close() // the whole backend is gone; its port refuses connections
    await sleep(1_100) // the access token has expired (its proactive refresh at 750 ms failed): every request needs a refresh
    const down = await Promise.allSettled(TRANSPORTS.map((name) => send[name](url(), { i: 2 })))
    for (const r of down) {
      expect(r.status).toBe('rejected')
      const reason = (r as PromiseRejectedResult).reason
      expect(isTesseraError(reason, 'NETWORK_ERROR') || isTesseraError(reason, 'TIMEOUT')).toBe(true)
    }
    // I1/P12: one refresh for the whole outage so far, which used exactly its retry budget; the requests did not start more.
    expect(probe.attempts - before).toBe(OUTAGE_POLICY.attempts)
    expect(errors.length).toBe(1)
    expect(auth.getSnapshot()).toMatchObject({ status: 'authenticated', refreshing: false, error: { code: expect.stringMatching(/^(NETWORK_ERROR|TIMEOUT)$/) } })
    // During the cooldown a request fails at once with the same typed error, without a new attempt.
    await expect(send.fetch(url(), { i: 3 })).rejects.toMatchObject({ code: errors[0]!.code })
    expect(probe.attempts - before).toBe(OUTAGE_POLICY.attempts)
    const whileDown = probe.attempts - before

    server = await startServer({ ...base, store, accessTokenTtl: 1, port }) // back, same store, new signing key
    environment.fire('online') // the browser says the network is back: the cooldown is lifted
    for (const name of TRANSPORTS) {
      const { status, json } = await send[name](url(), { i: 4 })
      expect(status).toBe(200)
      expect(echoed(name, json)).toEqual({ i: 4 })
    }
    const s = await stats(server)
    expect(s.login).toBe(0) // recovered with the refresh token it had: no new login
    expect(s.refresh.reuseDetected).toBe(0)
    expect(auth.getSnapshot()).toMatchObject({ status: 'authenticated', error: null })
    expect(events.filter((e) => e === 'expired' || e === 'logout')).toEqual([])
    expect(violations).toEqual([])
    console.log(`outage: ${whileDown} refresh attempts while down (${down.length} requests, all typed ${errors[0]!.code}), ${errors.length} refresh-error event (${errors[0]!.code}), recovered after restart with 0 logins`)
    auth.dispose()
    await server.close()
  })

  it('I6: POST /__faults failureRate 1 (every refresh answers 500) → typed NETWORK_ERROR status 500, session kept; faults off → recovers', async () => {
    const OUTAGE_POLICY = { attempts: 3, timeout: 300, baseDelay: 20, maxDelay: 50, cooldown: 300 }
    const server = await startServer({ ...base, store, accessTokenTtl: 1 })
    const { auth, violations, events } = await session(server, OUTAGE_POLICY)
    const send = senders(auth)
    await post(server, '/__faults', { failureRate: 1, kind: '500' })
    await sleep(1_100)
    for (const name of TRANSPORTS) await expect(send[name](`${server.url}/api/echo`, { i: 1 })).rejects.toMatchObject({ code: 'NETWORK_ERROR', status: 500 })
    expect(auth.getSnapshot()).toMatchObject({ status: 'authenticated', error: { code: 'NETWORK_ERROR', status: 500 } })
    await post(server, '/__faults', {})
    await sleep(350) // the cooldown ends; the next request refreshes
    for (const name of TRANSPORTS) expect((await send[name](`${server.url}/api/echo`, { i: 2 })).status).toBe(200)
    expect(events.filter((e) => e === 'expired' || e === 'logout')).toEqual([])
    expect(violations).toEqual([])
    expect((await stats(server)).refresh.reuseDetected).toBe(0)
    auth.dispose()
    await server.close()
  })
})
