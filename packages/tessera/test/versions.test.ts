import { describe, expect, it } from 'vitest'
import { createAuth, type Auth } from '../src/index.js'
import { FakeBus, FakeClock, FakeEnvironment, FakeLocks, FakeServer, FakeStorage, creds, flush } from './fakes.js'
import { createAuth as createProtocol1 } from './fixtures/tessera-protocol1.js'

/**
 * Issue 13, finding 3: after a deploy, a tab still running the previous build (tab protocol 1,
 * stored session v1, `fixtures/tessera-protocol1.js`) shares the channel, the lock and the storage
 * with tabs of this one. Its messages and its stored session are migrated, never a reason to end
 * or fork the session: no refresh token is presented twice, logouts reach both, and the tabs agree.
 */
function world() {
  const clock = new FakeClock()
  const server = new FakeServer(clock)
  const bus = new FakeBus()
  const locks = new FakeLocks()
  const storage = new FakeStorage()
  const common = () => ({ authority: server.authority, clock, environment: new FakeEnvironment(), fetch: server.fetch, random: () => 0.5, channel: bus.channel(), lock: locks, storage })
  const open = (version: 1 | 2): Auth<{ id: string; name: string }, { user: string; password: string }> =>
    version === 1 ? createProtocol1(common()) : createAuth({ ...common(), fetch: server.fetch as typeof fetch })
  return { clock, server, storage, open }
}

async function pair(first: 1 | 2) {
  const w = world()
  const a = w.open(first)
  const b = w.open(first === 1 ? 2 : 1)
  await w.clock.advance(200)
  await Promise.all([a.ready(), b.ready()])
  return { ...w, a, b }
}

const token = (auth: Auth<unknown, unknown>) => auth.getAccessToken()

describe('two protocol versions side by side (finding 3)', () => {
  for (const first of [1, 2] as const)
    it(`I1/I7: a login in the protocol-${first} tab reaches the other; refreshes alternate between them with no refresh token presented twice`, async () => {
      const { a, b, server, clock } = await pair(first)
      await a.login(creds)
      await flush()
      expect(await token(b)).toBe(server.current)
      for (let i = 0; i < 6; i++) {
        await (i % 2 ? a : b).refresh()
        await flush()
        expect(await token(a)).toBe(server.current)
        expect(await token(b)).toBe(server.current)
      }
      // Expiry with requests in both tabs at once: one refresh under the shared lock.
      clock.jump(301_000)
      const calls = server.refreshCalls
      const results = await Promise.all([a, b, a, b].map((x) => x.fetch('/api/data')))
      expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200])
      expect(server.refreshCalls - calls).toBe(1)
      expect(server.reuse).toBe(0)
      expect([a, b].map((x) => x.getSnapshot().status)).toEqual(['authenticated', 'authenticated'])
    })

  for (const first of [1, 2] as const)
    it(`I4: a logout in the protocol-${first} tab ends the session in the other`, async () => {
      const { a, b } = await pair(first)
      await b.login(creds)
      await flush()
      await a.logout()
      await flush()
      expect([a, b].map((x) => x.getSnapshot().status)).toEqual(['unauthenticated', 'unauthenticated'])
    })

  it("I8: a session stored by the previous build is restored by this one (migrated), and this one's by the previous build through its peers", async () => {
    const w = world()
    const old = w.open(1)
    await w.clock.advance(200)
    await old.login(creds)
    await flush()
    expect(JSON.parse(w.storage.map.get('tessera')!)).toMatchObject({ v: 1 })
    old.dispose()
    // A reload after the deploy: this build reads what the previous one stored.
    const fresh = w.open(2)
    await fresh.ready()
    expect(fresh.getSnapshot()).toMatchObject({ status: 'authenticated', user: { name: 'Ada' } })
    expect(await token(fresh)).toBe(w.server.current)
    await fresh.refresh()
    await flush()
    expect(JSON.parse(w.storage.map.get('tessera')!)).toMatchObject({ v: 2 })
    // A tab of the previous build opened now cannot read v2: it asks its peers, and joins.
    const late = w.open(1)
    await w.clock.advance(200)
    await late.ready()
    expect(await token(late)).toBe(w.server.current)
    expect(w.server.loginCalls).toBe(1)
    expect(w.server.reuse).toBe(0)
  })
})
