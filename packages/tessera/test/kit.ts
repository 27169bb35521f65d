/** Checks several test files make the same way (the fakes themselves are in fakes.ts). */
import { expect } from 'vitest'
import { isTesseraError } from '../src/index.js'
import { FakeClock, FakeServer, FakeStorage, flush, setup } from './fakes.js'

/** A property run's world: a clock, a token server issuing 2-minute access tokens, and the violations found so far. */
export function propertyWorld() {
  const clock = new FakeClock()
  const server = new FakeServer(clock)
  server.ttl = 120
  const violations: string[] = []
  const fail = (v: string) => violations.push(v)
  return { clock, server, violations, fail }
}

/** A request a property run sent, and whether it has settled yet (I2: every one must). */
export interface Sent {
  settled: boolean
}

/**
 * Records `request` as it settles; a rejection that is not a TesseraError is an I8 violation.
 * `check` sees each response (by default any response is fine).
 */
export function track(request: Promise<Response>, fail: (v: string) => unknown, check: (res: Response) => unknown = () => {}): Sent {
  const sent = { settled: false }
  request
    .then(check, (e) => isTesseraError(e) || fail(`I8: untyped rejection ${String(e)}`))
    .finally(() => (sent.settled = true))
  return sent
}

/**
 * I1: wraps a run's refreshes so that a second one in flight at the same time is a violation.
 * A refresh stops counting when it settles or its signal aborts (the engine gave up on it).
 */
export function oneRefreshAtATime(fail: (v: string) => unknown, where = '') {
  let inFlight = 0
  return <T>(signal: AbortSignal, refresh: () => Promise<T>): Promise<T> => {
    if (++inFlight > 1) fail(`I1: ${inFlight} refreshes in flight${where}`)
    let done = false
    const end = () => void (done || ((done = true), inFlight--))
    signal.addEventListener('abort', end)
    return refresh().finally(end)
  }
}

/**
 * I8 for a corrupted stored session `raw`: the engine starts with no session and one storage-error
 * event, without a network call, and a sign-in still works and replaces the garbage.
 */
export async function expectBadStoredSessionIgnored(raw: string) {
  const storage = new FakeStorage()
  storage.map.set('tessera', raw)
  const { auth, server } = setup({ storage })
  const errors: string[] = []
  auth.on('storage-error', (n) => void errors.push(n.error!.code))
  await auth.ready()
  expect(auth.getSnapshot()).toMatchObject({ status: 'unauthenticated', error: null })
  expect(errors).toEqual(['INVALID_STORED_SESSION'])
  expect(server.refreshCalls + server.loginCalls).toBe(0)
  // sign-in still works and overwrites the garbage
  await auth.login({ user: 'a', password: 'pw' })
  expect(auth.getSnapshot().status).toBe('authenticated')
  await flush()
  expect(JSON.parse(storage.map.get('tessera')!)).toMatchObject({ v: 2, tokens: { accessToken: expect.any(String), order: [1, 0] } })
  expect(storage.map.get('tessera')).not.toBe(raw)
  auth.dispose()
}

/**
 * A property suite's run count and replay from the environment: `TESSERA_PROPERTY_RUNS=deep` (or
 * `TESSERA_PROPERTY_RUNS_N=n`) for more schedules; `TESSERA_PROPERTY_SEED` and
 * `TESSERA_PROPERTY_PATH` (both printed by a failure) to replay one counterexample.
 */
export function propertyRuns(normal: number, deep: number) {
  const env = process.env
  const isDeep = env.TESSERA_PROPERTY_RUNS === 'deep'
  const seed = env.TESSERA_PROPERTY_SEED
  return {
    deep: isDeep,
    runs: Number(env.TESSERA_PROPERTY_RUNS_N) || (isDeep ? deep : normal),
    replay: seed ? { seed: Number(seed), path: env.TESSERA_PROPERTY_PATH } : null,
  }
}
