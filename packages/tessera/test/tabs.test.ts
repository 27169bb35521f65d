import { describe, expect, it } from 'vitest'
import { isTesseraError } from '../src/index.js'
import { FakeStorage, creds, flush, tabs } from './fakes.js'


/** Opens the tabs and lets their start-up (the peer round) finish. */
async function started(n: number, extra?: Parameters<typeof tabs>[1]) {
  const t = tabs(n, extra)
  await t.clock.advance(200)
  await Promise.all(t.all.map((a) => a.ready()))
  return t
}

describe('across tabs (fake channel and locks)', () => {
  it('I7: a login in one tab reaches every other tab with no network call', async () => {
    const { all, server } = await started(3)
    await all[0]!.login(creds)
    await flush()
    expect(all.map((a) => a.getSnapshot().status)).toEqual(['authenticated', 'authenticated', 'authenticated'])
    expect(all.map((a) => a.getSnapshot().user)).toEqual(Array(3).fill({ id: 'u1', name: 'Ada' }))
    expect(server.loginCalls + server.refreshCalls).toBe(1)
  })

  it('I7: a new tab joins a memory-only session: no login, no refresh, no storage', async () => {
    const t = await started(1)
    await t.all[0]!.login(creds)
    const calls = t.server.loginCalls + t.server.refreshCalls
    const late = t.open()
    await flush()
    await late.ready()
    expect(late.getSnapshot()).toMatchObject({ status: 'authenticated', user: { name: 'Ada' } })
    expect(await late.getAccessToken()).toBe(t.server.current)
    expect(t.server.loginCalls + t.server.refreshCalls).toBe(calls)
  })

  it('with no peer, a new tab settles unauthenticated after one round', async () => {
    const t = tabs(1)
    expect(t.all[0]!.getSnapshot().status).toBe('initializing')
    await t.clock.advance(150)
    await t.all[0]!.ready()
    expect(t.all[0]!.getSnapshot().status).toBe('unauthenticated')
  })

  it('I1/P8: three tabs whose token expired refresh once, under one lock, and all get the new token', async () => {
    const { all, server, clock, locks } = await started(3)
    await all[0]!.login(creds)
    await flush()
    clock.jump(301_000)
    const results = await Promise.all(all.flatMap((a) => [a.fetch('/api/data'), a.fetch('/api/data')]))
    expect(results.every((r) => r.status === 200)).toBe(true)
    expect(server.refreshCalls).toBe(1)
    expect(server.reuse).toBe(0)
    const tokens = await Promise.all(all.map((a) => a.getAccessToken()))
    expect(new Set(tokens)).toEqual(new Set([server.current]))
    expect(locks.held.size).toBe(0) // a tab that adopted while it waited let go of the lock
  })

  it('P10: a tab that waited for the lock re-reads shared storage and adopts, spending nothing', async () => {
    // A missed message: tab B hears nothing, but both share localStorage-like storage.
    const storage = new FakeStorage()
    const t = tabs(0, { storage })
    const a = t.open()
    const b = t.open({ channel: null })
    await t.clock.advance(200)
    await a.login(creds)
    await flush()
    const bStarted = t.open({ channel: null })
    await bStarted.ready()
    t.clock.jump(301_000)
    await a.refresh()
    await flush()
    const calls = t.server.refreshCalls
    expect(await bStarted.getAccessToken()).toBe(t.server.current)
    expect(t.server.refreshCalls).toBe(calls)
    expect(t.server.reuse).toBe(0)
    b.dispose()
  })

  it('I4: logout in one tab rejects waiting requests everywhere and every tab ends', async () => {
    const { all, server, clock } = await started(3)
    await all[0]!.login(creds)
    await flush()
    server.next = ['hang']
    clock.jump(301_000)
    const waiting = all.slice(1).map((a) => a.fetch('/api/data'))
    await flush()
    await all[0]!.logout()
    const results = await Promise.allSettled(waiting)
    expect(results.every((r) => r.status === 'rejected' && isTesseraError(r.reason, 'LOGGED_OUT'))).toBe(true)
    expect(all.map((a) => a.getSnapshot().status)).toEqual(Array(3).fill('unauthenticated'))
  })

  it('a definite rejection in one tab expires the session in every tab', async () => {
    const { all, server } = await started(2)
    await all[0]!.login(creds)
    await flush()
    server.next = ['reject']
    await expect(all[0]!.refresh()).rejects.toMatchObject({ code: 'SESSION_EXPIRED' })
    await flush()
    expect(all[1]!.getSnapshot().status).toBe('expired')
    await expect(all[1]!.getAccessToken()).rejects.toMatchObject({ code: 'SESSION_EXPIRED' })
  })

  it('P12: the failure cooldown is shared, so an outage is not multiplied by the tab count', async () => {
    const { all, server, clock } = await started(4)
    await all[0]!.login(creds)
    await flush()
    server.next = Array(4).fill('network')
    clock.jump(301_000)
    const results = Promise.allSettled(all.map((a) => a.getAccessToken()))
    await clock.advance(10_000)
    const settled = await results
    expect(settled.every((r) => r.status === 'rejected' && isTesseraError(r.reason, 'NETWORK_ERROR'))).toBe(true)
    expect(server.refreshCalls).toBe(4) // one tab's retries, not four tabs' retries
    expect(all.every((a) => a.getSnapshot().status === 'authenticated')).toBe(true)
    await clock.advance(30_000) // cooldown over: one tab recovers for everyone
    expect(server.refreshCalls).toBe(5)
    expect(new Set(all.map((a) => a.getSnapshot().error))).toEqual(new Set([null]))
  })

  it('P9: a frozen lock holder does not strand the others: they go ahead after lockPatience', async () => {
    const { all, server, clock, locks } = await started(2, { lockPatience: 2_000 })
    await all[0]!.login(creds)
    await flush()
    // A frozen tab holds the lock and sends no heartbeat.
    const frozen = await locks.acquire('tessera:tessera', new AbortController().signal)
    clock.jump(301_000)
    const pending = all[1]!.fetch('/api/data')
    await clock.advance(1_999)
    expect(server.refreshCalls).toBe(0)
    await clock.advance(1)
    expect((await pending).status).toBe(200)
    expect(server.refreshCalls).toBe(1)
    frozen()
  })

  it('P9: a holder that froze after its last heartbeat is waited for lockPatience from that heartbeat, not twice that', async () => {
    const { all, server, clock, locks, bus } = await started(2, { lockPatience: 2_000 })
    await all[0]!.login(creds)
    await flush()
    // Another tab takes the lock, says so once, and freezes: no more heartbeats, the lock stays held.
    const frozen = await locks.acquire('tessera:tessera', new AbortController().signal)
    const holder = bus.channel()
    clock.jump(301_000)
    const pending = all[1]!.fetch('/api/data')
    await flush()
    holder.post({ v: 2, seen: 1, type: 'refreshing' })
    await clock.advance(1_999)
    expect(server.refreshCalls).toBe(0)
    // The holder's silence (its "held" mark running out) is no sign of life: no second wait.
    await clock.advance(1 + 150)
    expect(server.refreshCalls).toBe(1)
    expect((await pending).status).toBe(200)
    frozen()
  })

  it('P9: while the holder sends heartbeats, the others keep waiting instead of refreshing too', async () => {
    const { all, server, clock } = await started(2, { lockPatience: 2_000, retry: { timeout: 30_000 } })
    await all[0]!.login(creds)
    await flush()
    server.next = ['hang'] // the holder's refresh is slow, but the holder is alive
    clock.jump(301_000)
    const a = all[0]!.getAccessToken()
    await flush()
    const b = all[1]!.getAccessToken()
    await clock.advance(10_000)
    expect(server.refreshCalls).toBe(1)
    await clock.advance(25_000) // the slow attempt times out; the retry succeeds; both tabs get it
    expect(await a).toBe(server.current)
    expect(await b).toBe(server.current)
    expect(server.refreshCalls).toBe(2)
    expect(server.reuse).toBe(0)
  })

  it('I8: malformed messages from the channel are ignored', async () => {
    const { all, bus } = await started(1)
    const rogue = bus.channel()
    for (const m of [null, 1, 'x', {}, { type: 'session' }, { type: 'session', tokens: { accessToken: 5 } }, { type: 'end' }, { type: 'cooldown', until: 'x' }])
      rogue.post(m)
    await flush()
    expect(all[0]!.getSnapshot().status).toBe('unauthenticated')
  })

  it('tabs without a lock or a channel degrade to single-tab mode', async () => {
    const t = tabs(0)
    const solo = t.open({ channel: null, lock: null })
    await solo.ready()
    await solo.login(creds)
    t.clock.jump(301_000)
    expect((await solo.fetch('/api/data')).status).toBe(200)
    expect(t.server.refreshCalls).toBe(1)
  })
})
