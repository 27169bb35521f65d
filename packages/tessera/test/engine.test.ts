import { describe, expect, it, vi } from 'vitest'
import { TesseraError, isTesseraError, type AuthNotice } from '../src/index.js'
import { FakeStorage, creds, flush, loggedIn, setup } from './fakes.js'


describe('lifecycle', () => {
  it('starts initializing, then settles unauthenticated with an empty storage', async () => {
    const { auth } = setup()
    expect(auth.getSnapshot().status).toBe('initializing')
    await auth.ready()
    expect(auth.getSnapshot()).toMatchObject({ status: 'unauthenticated', isAuthenticated: false, user: null, error: null })
  })

  it('login authenticates, loads the user and shows pending then fulfilled', async () => {
    const { auth } = setup()
    await auth.ready()
    const seen: string[] = []
    auth.subscribe(() => seen.push(`${auth.getSnapshot().status}/${auth.getSnapshot().actions.login.status}`))
    await auth.login(creds)
    const s = auth.getSnapshot()
    expect(s).toMatchObject({ status: 'authenticated', isAuthenticated: true, user: { id: 'u1', name: 'Ada' }, generation: 1 })
    expect(seen).toContain('authenticating/pending')
    expect(seen.at(-1)).toBe('authenticated/fulfilled')
  })

  it('failed login is unauthenticated with the error, and the action rejected', async () => {
    const { auth } = setup()
    await auth.ready()
    await expect(auth.login({ user: 'ada', password: 'nope' })).rejects.toMatchObject({ code: 'LOGIN_FAILED' })
    const s = auth.getSnapshot()
    expect(s.status).toBe('unauthenticated')
    expect(s.error?.code).toBe('LOGIN_FAILED')
    expect(s.actions.login).toMatchObject({ status: 'rejected', error: { code: 'LOGIN_FAILED' } })
    auth.resetAction('login')
    expect(auth.getSnapshot().actions.login).toEqual({ status: 'idle', error: null })
  })

  it('a malformed login response is INVALID_TOKEN_RESPONSE naming the field, and no session', async () => {
    const { auth, server } = setup()
    server.authority.login = async () => ({ access_token: 'a', expires_in: '3600' }) as never
    await auth.ready()
    const error = await auth.login(creds).catch((e) => e)
    expect(error).toMatchObject({ code: 'INVALID_TOKEN_RESPONSE', field: 'expires_in' })
    expect(auth.getSnapshot().status).toBe('unauthenticated')
  })

  it('getSnapshot is the same object until something changes', async () => {
    const { auth } = await loggedIn()
    const a = auth.getSnapshot()
    expect(auth.getSnapshot()).toBe(a)
    expect(Object.isFrozen(a)).toBe(true)
    await auth.logout()
    expect(auth.getSnapshot()).not.toBe(a)
  })

  it('the snapshot holds no token (I5)', async () => {
    const { auth, server } = await loggedIn()
    expect(JSON.stringify(auth.getSnapshot())).not.toContain(server.current!)
  })

  it('logout ends the session, clears storage and tells the server', async () => {
    const { auth, server, storage } = await loggedIn()
    const revoke = vi.spyOn(server.authority, 'logout')
    expect(storage.map.size).toBe(1)
    await auth.logout()
    expect(auth.getSnapshot()).toMatchObject({ status: 'unauthenticated', user: null, expiresAt: null })
    expect(revoke).toHaveBeenCalledTimes(1)
    await flush()
    expect(storage.map.size).toBe(0)
    await expect(auth.getAccessToken()).rejects.toMatchObject({ code: 'UNAUTHENTICATED' })
  })

  it('a newer login supersedes one in flight, which rejects ABORTED', async () => {
    const { auth } = setup()
    await auth.ready()
    const first = auth.login(creds)
    const second = auth.login(creds)
    await expect(first).rejects.toMatchObject({ code: 'ABORTED' })
    await second
    expect(auth.getSnapshot().status).toBe('authenticated')
    expect(auth.getSnapshot().actions.login.status).toBe('fulfilled')
  })

  it('dispose rejects waiters with DISPOSED and stops timers', async () => {
    const { auth, clock, server } = await loggedIn()
    server.next = ['hang']
    clock.jump(400_000)
    const waiting = auth.getAccessToken()
    await flush()
    auth.dispose()
    await expect(waiting).rejects.toMatchObject({ code: 'DISPOSED' })
    expect(clock.timers.size).toBe(0)
    await expect(auth.getAccessToken()).rejects.toMatchObject({ code: 'DISPOSED' })
  })
})

describe('events', () => {
  it('fire once per real transition, never for no-ops (P15)', async () => {
    const { auth } = setup()
    const log: string[] = []
    for (const e of ['login', 'logout', 'refresh', 'transition', 'user'] as const) auth.on(e, (n) => log.push(n.type))
    await auth.ready()
    await auth.logout() // already unauthenticated: nothing happens
    expect(log).toEqual(['transition'])
    await auth.login(creds)
    await auth.refresh()
    await auth.logout()
    await auth.logout()
    expect(log).toEqual(['transition', 'transition', 'transition', 'login', 'user', 'refresh', 'transition', 'logout'])
  })

  it('P16: handlers and subscribers may call any verb without deadlock', async () => {
    const { auth, server } = await loggedIn()
    const tokens: string[] = []
    auth.on('refresh', () => void auth.getAccessToken().then((t) => tokens.push(t)))
    auth.subscribe(() => {
      if (auth.getSnapshot().status === 'expired') void auth.logout()
    })
    await auth.refresh()
    await flush()
    expect(tokens).toEqual([server.current])
    server.next = ['reject']
    await expect(auth.refresh()).rejects.toMatchObject({ code: 'SESSION_EXPIRED' })
    await flush()
    expect(auth.getSnapshot().status).toBe('unauthenticated')
  })

  it('a throwing handler does not break the engine', async () => {
    const { auth } = setup()
    const errors: unknown[] = []
    const onError = (e: unknown) => errors.push(e)
    process.on('uncaughtException', onError)
    auth.on('login', () => {
      throw new Error('handler bug')
    })
    await auth.ready()
    await auth.login(creds)
    await new Promise((r) => setTimeout(r, 0))
    process.off('uncaughtException', onError)
    expect(auth.getSnapshot().status).toBe('authenticated')
    expect(errors).toHaveLength(1)
  })

  it('events carry no token (I5)', async () => {
    const { auth, server, clock } = setup()
    const notices: AuthNotice[] = []
    for (const e of ['login', 'logout', 'refresh', 'refresh-error', 'expired', 'unauthorized', 'transition', 'user'] as const)
      auth.on(e, (n) => notices.push(n))
    await auth.ready()
    await auth.login(creds)
    const first = server.current!
    server.next = ['network', 'network', 'network', 'network']
    const failing = auth.refresh().catch((e) => e)
    await clock.advance(60_000)
    await failing
    await auth.refresh()
    server.next = ['reject']
    await auth.refresh().catch(() => {})
    const text = JSON.stringify(notices, (k, v) => (v instanceof Error ? { ...v, message: v.message } : v))
    for (let i = 1; i <= server.n; i++) {
      expect(text).not.toContain(`at-${i}"`)
      expect(text).not.toContain(`rt-${i}"`)
    }
    expect(text).not.toContain(first)
  })
})

describe('refresh', () => {
  it('I1: concurrent refresh() callers share one refresh and the same promise', async () => {
    const { auth, server } = await loggedIn()
    const a = auth.refresh()
    const b = auth.refresh()
    expect(a).toBe(b)
    await Promise.all([a, b, auth.refresh()])
    expect(server.refreshCalls).toBe(1)
  })

  it('P17: the in-flight slot is claimed synchronously, before any await', async () => {
    const { auth, server, clock } = await loggedIn()
    clock.jump(300_000)
    const waits = Array.from({ length: 50 }, () => auth.getAccessToken())
    expect(auth.getSnapshot().refreshing).toBe(true)
    await Promise.all(waits)
    expect(server.refreshCalls).toBe(1)
  })

  it('P18: refresh() goes to the network even while the token is valid', async () => {
    const { auth, server } = await loggedIn()
    const before = await auth.getAccessToken()
    await auth.refresh()
    expect(server.refreshCalls).toBe(1)
    expect(await auth.getAccessToken()).not.toBe(before)
  })

  it('proactive refresh fires inside the leeway, with no request needed', async () => {
    const { auth, server, clock } = await loggedIn()
    await clock.advance(300_000 - 60_000 - 1)
    expect(server.refreshCalls).toBe(0)
    await clock.advance(1)
    expect(server.refreshCalls).toBe(1)
    expect(auth.getSnapshot().generation).toBe(2)
    expect(auth.getSnapshot().isExpiringSoon).toBe(false)
  })

  it('the leeway is capped at a quarter of a short lifetime, so short tokens do not refresh in a loop', async () => {
    const { clock, server } = setup()
    server.ttl = 8
    const { auth } = { auth: (await loggedInWith(server, clock)) }
    await clock.advance(60_000)
    // one refresh every 6 s (8 s lifetime minus a quarter), not one per tick
    expect(server.refreshCalls).toBe(10)
    expect(auth.getSnapshot().status).toBe('authenticated')
  })

  it('P13: expiry counts from local receipt + expires_in, not from the server clock', async () => {
    const { auth, clock } = await loggedIn()
    expect(auth.getSnapshot().expiresAt).toBe(clock.now() + 300_000)
  })

  it('P13: without expires_in, a JWT exp is corrected by iat for clock skew', async () => {
    const { auth, clock, server } = setup()
    const skewedNow = Math.floor(clock.now() / 1000) - 3600 // server clock an hour behind
    const jwt = (claims: object) => `e30.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.sig`
    server.authority.login = async () => ({ access_token: jwt({ sub: 'u1', iat: skewedNow, exp: skewedNow + 600 }) }) as never
    await auth.ready()
    await auth.login(creds)
    expect(auth.getSnapshot().expiresAt).toBe(clock.now() + 600_000)
    expect(auth.getSnapshot().isExpiringSoon).toBe(false)
  })

  it('P14: after a sleep past expiry, the first request refreshes before it is sent', async () => {
    const { auth, server, clock } = await loggedIn()
    clock.jump(3_600_000) // the laptop slept; no timer fired
    const res = await auth.fetch('/api/data')
    expect(res.status).toBe(200)
    expect(server.refreshCalls).toBe(1)
    expect(server.requests.map((r) => r.auth)).toEqual([`Bearer ${server.current}`])
  })

  it('P14: visibility, focus, online and resume re-check the clock', async () => {
    const { server, clock, environment } = await loggedIn()
    clock.jump(290_000)
    environment.fire('visibilitychange')
    await flush()
    expect(server.refreshCalls).toBe(1)
  })

  it('I6/P11: network errors, 5xx and 429 are retried with backoff and keep the session', async () => {
    const { auth, server, clock } = await loggedIn()
    server.next = ['network', '503', '429']
    const done = auth.refresh()
    await clock.advance(1_000)
    expect(server.refreshCalls).toBe(2) // 429's Retry-After (5 s) is honoured before the 4th attempt
    await clock.advance(10_000)
    await done
    expect(server.refreshCalls).toBe(4)
    expect(auth.getSnapshot()).toMatchObject({ status: 'authenticated', generation: 2 })
  })

  it('P11: a failed proactive refresh keeps the still-valid token; the session stays', async () => {
    const { auth, server, clock } = await loggedIn()
    const token = await auth.getAccessToken()
    server.next = ['network', 'network', 'network', 'network']
    await clock.advance(250_000)
    expect(server.refreshCalls).toBe(4)
    expect(auth.getSnapshot()).toMatchObject({ status: 'authenticated', refreshing: false, error: { code: 'NETWORK_ERROR' } })
    expect(await auth.getAccessToken()).toBe(token)
  })

  it('P12: after the retries are spent, a cooldown prevents a refresh storm', async () => {
    const { auth, server, clock } = await loggedIn()
    server.next = Array(4).fill('network')
    clock.jump(301_000) // token expired
    const first = auth.getAccessToken().catch((e) => e)
    await clock.advance(10_000)
    expect(await first).toMatchObject({ code: 'NETWORK_ERROR' })
    const calls = server.refreshCalls
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => auth.getAccessToken()))
    expect(results.every((r) => r.status === 'rejected' && isTesseraError(r.reason, 'NETWORK_ERROR'))).toBe(true)
    expect(server.refreshCalls).toBe(calls)
    expect(auth.getSnapshot().status).toBe('authenticated')
    await clock.advance(30_000) // cooldown over: the timer tries again and recovers
    expect(auth.getSnapshot().generation).toBe(2)
    expect(await auth.getAccessToken()).toBe(server.current)
  })

  it('P12: the network coming back ends the cooldown at once', async () => {
    const { auth, server, clock, environment } = await loggedIn()
    server.next = Array(4).fill('network')
    clock.jump(301_000)
    void auth.getAccessToken().catch(() => {})
    await clock.advance(10_000)
    expect(server.refreshCalls).toBe(4)
    environment.fire('online')
    await flush()
    expect(auth.getSnapshot().generation).toBe(2)
  })

  it('a refresh attempt that hangs is aborted by its timeout and retried (I2)', async () => {
    const { auth, server, clock } = await loggedIn({ retry: { timeout: 1_000 } })
    server.next = ['hang']
    const done = auth.refresh()
    await clock.advance(1_000)
    await clock.advance(1_000)
    await done
    expect(server.refreshCalls).toBe(2)
  })

  it('I6: only a definite rejection ends the session, as expired', async () => {
    const { auth, server } = await loggedIn()
    const expired = vi.fn()
    auth.on('expired', expired)
    server.next = ['reject']
    await expect(auth.refresh()).rejects.toMatchObject({ code: 'SESSION_EXPIRED' })
    expect(auth.getSnapshot()).toMatchObject({ status: 'expired', error: { code: 'SESSION_EXPIRED' }, user: null })
    expect(expired).toHaveBeenCalledTimes(1)
    await expect(auth.getAccessToken()).rejects.toMatchObject({ code: 'SESSION_EXPIRED' })
  })

  it('a malformed refresh response is a typed error that keeps the session', async () => {
    const { auth, server } = await loggedIn()
    server.next = ['malformed']
    await expect(auth.refresh()).rejects.toMatchObject({ code: 'INVALID_TOKEN_RESPONSE', field: 'access_token' })
    expect(server.refreshCalls).toBe(1)
    expect(auth.getSnapshot().status).toBe('authenticated')
  })

  it('P10: a refresh that lands after logout never revives the session', async () => {
    const { auth, server, clock } = await loggedIn()
    server.next = ['hang']
    clock.jump(301_000)
    const waiting = auth.getAccessToken()
    await flush()
    await auth.logout()
    await expect(waiting).rejects.toMatchObject({ code: 'LOGGED_OUT' })
    await clock.advance(20_000)
    expect(auth.getSnapshot().status).toBe('unauthenticated')
  })

  it('the user is re-fetched only when a refresh changes the subject', async () => {
    const { auth, server } = await loggedIn()
    const fetchUser = vi.spyOn(server.authority, 'fetchUser')
    await auth.refresh()
    expect(fetchUser).not.toHaveBeenCalled()
  })

  it('a failing user fetch does not end the session and is reported', async () => {
    const { auth, server } = setup()
    server.authority.fetchUser = async () => {
      throw new TypeError('fetch failed')
    }
    const userError = vi.fn()
    auth.on('user-error', userError)
    await auth.ready()
    await auth.login(creds)
    expect(auth.getSnapshot()).toMatchObject({ status: 'authenticated', user: null })
    expect(userError.mock.calls[0]![0].error.code).toBe('NETWORK_ERROR')
  })

  it('actions.user: pending while the profile loads, rejected with the error, and reloadUser() tries again', async () => {
    const { auth, server } = setup()
    let fail = true
    const real = server.authority.fetchUser
    server.authority.fetchUser = async (token: string) => {
      if (fail) throw new TesseraError('NETWORK_ERROR', 'profile service down', { status: 503 })
      return real(token)
    }
    await auth.ready()
    const seen: string[] = []
    auth.subscribe(() => seen.push(auth.getSnapshot().actions.user.status))
    await auth.login(creds)
    expect(auth.getSnapshot().actions.user).toMatchObject({ status: 'rejected', error: { code: 'NETWORK_ERROR', status: 503 } })
    expect(seen).toContain('pending')
    fail = false
    await auth.reloadUser()
    expect(auth.getSnapshot()).toMatchObject({ user: { name: 'Ada' }, actions: { user: { status: 'fulfilled', error: null } } })
  })

  it('reloadUser() without a session rejects UNAUTHENTICATED and calls nobody', async () => {
    const { auth, server } = setup()
    const fetchUser = vi.spyOn(server.authority, 'fetchUser')
    await auth.ready()
    await expect(auth.reloadUser()).rejects.toMatchObject({ code: 'UNAUTHENTICATED' })
    expect(fetchUser).not.toHaveBeenCalled()
  })

  it('a user handed over with the login response is the user: no profile call', async () => {
    const { auth, server } = setup()
    const login = server.authority.login
    server.authority.login = async (c) => ({ ...(await login(c)), user: { id: 'u1', name: 'Grace' } })
    const fetchUser = vi.spyOn(server.authority, 'fetchUser')
    const events: string[] = []
    for (const e of ['login', 'user'] as const) auth.on(e, (n) => events.push(n.type))
    await auth.ready()
    await auth.login(creds)
    expect(auth.getSnapshot()).toMatchObject({ user: { name: 'Grace' }, actions: { user: { status: 'fulfilled' } } })
    expect(fetchUser).not.toHaveBeenCalled()
    expect(events).toEqual(['login', 'user'])
  })
})

describe('logout', () => {
  it('I4: a server that refuses the revocation: logout resolves, the session is over, a logout-error event says why', async () => {
    const { auth, server, storage } = await loggedIn()
    server.authority.logout = async () => {
      throw new TesseraError('INVALID_GRANT', 'unauthorized_client', { status: 401 })
    }
    const errors: AuthNotice[] = []
    auth.on('logout-error', (n) => errors.push(n))
    await expect(auth.logout()).resolves.toBeUndefined()
    expect(auth.getSnapshot()).toMatchObject({ status: 'unauthenticated', actions: { logout: { status: 'fulfilled' } } })
    expect(errors.map((n) => [n.error?.code, n.error?.status])).toEqual([['INVALID_GRANT', 401]])
    expect(storage.map.size).toBe(0)
  })

  it('I2: a revocation endpoint that never answers: logout resolves after the timeout, with a TIMEOUT logout-error', async () => {
    const { auth, server, clock } = await loggedIn({ retry: { timeout: 1_000 } })
    server.authority.logout = () => new Promise<void>(() => {})
    const errors: string[] = []
    auth.on('logout-error', (n) => errors.push(n.error!.code))
    let done = false
    void auth.logout().then(() => (done = true))
    await flush()
    expect(auth.getSnapshot().status).toBe('unauthenticated')
    expect(done).toBe(false)
    await clock.advance(1_000)
    await flush()
    expect(done).toBe(true)
    expect(errors).toEqual(['TIMEOUT'])
  })
})

describe('storage', () => {
  it('tokens stay in memory by default', async () => {
    const { auth } = setup({ storage: undefined })
    await auth.ready()
    await auth.login(creds)
    expect(JSON.stringify(globalThis.localStorage ?? null)).toBe('null')
  })

  it('restore with a valid stored token makes no network call', async () => {
    const first = await loggedIn()
    await flush()
    const { auth, server } = setup({ storage: first.storage, clock: first.clock })
    const fetchUser = vi.spyOn(server.authority, 'fetchUser')
    await auth.ready()
    expect(auth.getSnapshot()).toMatchObject({ status: 'authenticated', user: { name: 'Ada' } })
    expect(server.refreshCalls + server.loginCalls).toBe(0)
    expect(fetchUser).not.toHaveBeenCalled()
  })

  it('I8: corrupted or foreign storage is no session, reported as an event, and kept untouched', async () => {
    for (const raw of ['{', '"hello"', '{"v":2}', '{"v":1,"tokens":{"accessToken":""}}', 'null']) {
      const storage = new FakeStorage()
      storage.map.set('tessera', raw)
      const { auth } = setup({ storage })
      const seen = vi.fn()
      auth.on('storage-error', seen)
      await auth.ready()
      expect(auth.getSnapshot().status).toBe('unauthenticated')
      if (raw !== 'null') expect(seen.mock.calls[0]![0].error.code).toBe('INVALID_STORED_SESSION')
    }
  })

  it('P20: a storage that throws falls back to memory, says so, and never blocks sign-in', async () => {
    const storage = new FakeStorage()
    storage.broken = true
    const { auth } = setup({ storage })
    const seen = vi.fn()
    auth.on('storage-error', seen)
    await auth.ready()
    await auth.login(creds)
    await flush()
    expect(auth.getSnapshot().status).toBe('authenticated')
    expect(seen.mock.calls[0]![0].error.code).toBe('STORAGE_UNAVAILABLE')
  })

  it('P17: with an async storage (every call a macrotask away), 50 concurrent callers still share one refresh', async () => {
    const map = new Map<string, string>()
    const later = <T,>(v: T) => new Promise<T>((r) => setTimeout(() => r(v), 1))
    const storage = { get: (k: string) => later(map.get(k) ?? null), set: (k: string, v: string) => later(void map.set(k, v)), remove: (k: string) => later(void map.delete(k)) }
    const { auth, server, clock } = setup({ storage })
    await auth.ready()
    await auth.login(creds)
    await new Promise((r) => setTimeout(r, 5))
    expect(JSON.parse(map.get('tessera')!).tokens.accessToken).toBe(server.current)
    clock.jump(301_000)
    await Promise.all(Array.from({ length: 50 }, () => auth.getAccessToken()))
    expect(server.refreshCalls).toBe(1)
    // and a reload restores from it without a network call
    const again = setup({ storage, clock })
    await again.auth.ready()
    expect(again.auth.getSnapshot().status).toBe('authenticated')
    expect(again.server.refreshCalls + again.server.loginCalls).toBe(0)
  })

  it('a stored session whose access token expired refreshes right away', async () => {
    const first = await loggedIn()
    await flush()
    first.auth.dispose()
    first.clock.jump(400_000)
    const { auth, server } = setup({ storage: first.storage, clock: first.clock })
    server.refreshTokens = first.server.refreshTokens
    await auth.ready()
    await first.clock.advance(0)
    expect(server.refreshCalls).toBe(1)
    expect(auth.getSnapshot()).toMatchObject({ status: 'authenticated', generation: 2 })
  })

  it('an authority restore (refresh cookie, OIDC callback) is used when storage is empty', async () => {
    const { auth } = setup({
      authority: { ...setup().server.authority, restore: async () => ({ access_token: 'from-cookie', expires_in: 60 }) },
    })
    await auth.ready()
    expect(auth.getSnapshot().status).toBe('authenticated')
    expect(await auth.getAccessToken()).toBe('from-cookie')
  })
})

describe('authority edge cases', () => {
  it('a server that does not rotate keeps the refresh token and the ID token we had', async () => {
    const { auth, server } = await loggedIn()
    const refresh = server.authority.refresh
    const seen: (string | undefined)[] = []
    server.authority.refresh = async (rt, signal) => {
      seen.push(rt)
      const body = (await refresh(rt, signal)) as Record<string, unknown>
      server.refreshTokens.set(rt!, 'fresh') // this server does not rotate
      return { access_token: body.access_token, expires_in: 300 }
    }
    await auth.refresh()
    await auth.refresh()
    expect(seen).toEqual(['rt-1', 'rt-1'])
    expect(auth.getSnapshot().status).toBe('authenticated')
  })

  it('I2: an authority restore that never answers times out into unauthenticated', async () => {
    const { auth, clock } = setup({
      authority: { ...setup().server.authority, restore: () => new Promise(() => {}) },
      retry: { timeout: 5_000 },
    })
    await clock.advance(5_000)
    await auth.ready()
    expect(auth.getSnapshot()).toMatchObject({ status: 'unauthenticated', error: { code: 'TIMEOUT' } })
  })

  it('a callback page (hasCallback) is handled before storage: its login wins over a stored session', async () => {
    const first = await loggedIn()
    await flush()
    first.auth.dispose()
    const { auth } = setup({
      storage: first.storage,
      clock: first.clock,
      authority: { ...first.server.authority, hasCallback: () => true, restore: async () => ({ access_token: 'from-callback', expires_in: 60 }) },
    })
    await auth.ready()
    expect(await auth.getAccessToken()).toBe('from-callback')
  })
})

describe('a hostile or broken token server', () => {
  it('tokens dead on arrival (expires_in 0): at most one proactive refresh a second, one per request', async () => {
    const { auth, server, clock } = setup()
    server.ttl = 0
    await auth.ready()
    await auth.login(creds)
    await clock.advance(5_000)
    expect(server.refreshCalls).toBeLessThanOrEqual(5)
    const before = server.refreshCalls
    await auth.getAccessToken()
    expect(server.refreshCalls - before).toBeLessThanOrEqual(1)
  })

  it('I2: a Retry-After longer than any backoff ends the retry cycle at once; the cooldown honours it, up to 10 minutes', async () => {
    const { auth, server, clock } = await loggedIn()
    server.authority.refresh = async () => {
      throw new TesseraError('NETWORK_ERROR', 'Service unavailable', { status: 503, retryAfter: 3_600_000 })
    }
    clock.jump(301_000)
    await expect(auth.fetch('/api/data')).rejects.toMatchObject({ code: 'NETWORK_ERROR', status: 503 })
    const refresh = vi.spyOn(server.authority, 'refresh')
    await clock.advance(540_000)
    await expect(auth.getAccessToken()).rejects.toMatchObject({ code: 'NETWORK_ERROR' })
    expect(refresh).not.toHaveBeenCalled() // still cooling down, as the server asked
    expect(auth.getSnapshot().status).toBe('authenticated')
    // A server asking for an hour is asked again after 10 minutes (MAX_COOLDOWN): automatic refresh never stops for good.
    await clock.advance(61_000)
    expect(refresh).toHaveBeenCalled()
  })

  it('I2: a login the server never answers times out into unauthenticated; waiting requests settle', async () => {
    const { auth, server, clock } = setup({ retry: { timeout: 5_000 } })
    server.authority.login = () => new Promise(() => {})
    await auth.ready()
    const login = auth.login(creds).catch((e) => e)
    const waiting = auth.fetch('/api/data').catch((e) => e)
    await clock.advance(5_000)
    expect(await login).toMatchObject({ code: 'TIMEOUT' })
    expect(await waiting).toMatchObject({ code: 'UNAUTHENTICATED' })
    expect(auth.getSnapshot()).toMatchObject({ status: 'unauthenticated', error: { code: 'TIMEOUT' } })
  })

  it('I8: a stored token that could inject a header is not restored', async () => {
    const storage = new FakeStorage()
    storage.map.set('tessera', JSON.stringify({ v: 1, tokens: { accessToken: 'a\r\nX-Evil: 1', expiresAt: null, receivedAt: 1 }, user: null }))
    const { auth } = setup({ storage })
    const errors: string[] = []
    auth.on('storage-error', (n) => errors.push(n.error!.code))
    await auth.ready()
    expect(auth.getSnapshot().status).toBe('unauthenticated')
    expect(errors).toEqual(['INVALID_STORED_SESSION'])
  })
})

async function loggedInWith(server: ReturnType<typeof setup>['server'], clock: ReturnType<typeof setup>['clock']) {
  const { createAuth } = await import('../src/index.js')
  const auth = createAuth({ authority: server.authority, clock, environment: { subscribe: () => () => {} }, random: () => 0.5 })
  await auth.ready()
  await auth.login(creds)
  return auth
}
