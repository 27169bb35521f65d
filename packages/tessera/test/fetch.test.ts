import { describe, expect, it } from 'vitest'
import { createAuthFetch, isTesseraError } from '../src/index.js'
import { creds, flush, loggedIn, setup } from './fakes.js'


describe('auth.fetch', () => {
  it('attaches the bearer token to relative URLs', async () => {
    const { auth, server } = await loggedIn()
    const res = await auth.fetch('/api/data')
    expect(res.status).toBe(200)
    expect(server.requests[0]!.auth).toBe(`Bearer ${server.current}`)
  })

  it('I5: never sends the token to an origin that is not allow-listed', async () => {
    const { auth, server } = await loggedIn({ allowedOrigins: ['https://api.example.com'] })
    await auth.fetch('https://api.example.com/x')
    for (const url of ['https://evil.example.com/x', '//evil.example.com/x', '\\\\evil.example.com/x', '/\\evil.example.com/x', 'https://api.example.com.evil.com/'])
      await auth.fetch(url.startsWith('http') ? url : new URL(url, 'https://evil.example.com').href)
    expect(server.requests.map((r) => r.auth !== null)).toEqual([true, false, false, false, false, false])
    expect(auth.isAllowedUrl('//evil.example.com/x')).toBe(false)
    expect(auth.isAllowedUrl('\\\\evil.example.com/x')).toBe(false)
    expect(auth.isAllowedUrl('/\\evil.example.com/x')).toBe(false)
    expect(auth.isAllowedUrl('javascript:alert(1)')).toBe(false)
    expect(auth.isAllowedUrl('/api/ok')).toBe(true)
  })

  it("a visitor request (auth: 'none') goes out untouched, even with no session", async () => {
    const { auth, server } = setup()
    await auth.ready()
    const res = await auth.fetch('/public', { auth: 'none', headers: { 'x-a': '1' } })
    expect(res.status).toBe(401) // the fake server wants a token; the point is none was sent
    expect(server.requests[0]!.auth).toBeNull()
  })

  it('an authed request with no session rejects UNAUTHENTICATED without sending', async () => {
    const { auth, server } = setup()
    await auth.ready()
    await expect(auth.fetch('/api/data')).rejects.toMatchObject({ code: 'UNAUTHENTICATED' })
    expect(server.requests).toHaveLength(0)
  })

  it('requests made while initializing wait for the restore', async () => {
    const { auth, server } = setup()
    const pending = auth.fetch('/api/data').catch((e) => e)
    await auth.ready()
    expect(isTesseraError(await pending, 'UNAUTHENTICATED')).toBe(true)
    expect(server.requests).toHaveLength(0)
  })

  it('I3/P1: 100 concurrent requests that all get 401 cause one refresh and one replay each', async () => {
    const { auth, server } = await loggedIn()
    server.revokeAccess() // every request in flight will be refused
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => auth.fetch(`/api/data?i=${i}`)))
    expect(results.every((r) => r.status === 200)).toBe(true)
    expect(server.refreshCalls).toBe(1)
    expect(server.requests).toHaveLength(200)
  })

  it('I3: a 401 frees its connection at once: its body is cancelled before the refresh its replay waits for is done', async () => {
    const { auth, server } = await loggedIn()
    server.revokeAccess()
    let cancelled = false
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    const refresh = server.authority.refresh
    let refreshing = false
    server.authority.refresh = async (rt, signal) => {
      refreshing = true
      await gate
      return refresh(rt, signal)
    }
    let sent = 0
    const send = ((input: RequestInfo | URL, init?: RequestInit) =>
      sent++ ? server.fetch(input, init) : Promise.resolve(new Response(new ReadableStream({ cancel: () => void (cancelled = true) }), { status: 401 }))) as typeof fetch
    const pending = createAuthFetch(auth, send)('/api/data')
    await flush()
    expect(refreshing).toBe(true)
    expect(cancelled).toBe(true) // while the refresh is still held
    release()
    expect((await pending).status).toBe(200)
    expect(server.refreshCalls).toBe(1)
  })

  it('P2: a late 401 for an already-replaced token replays with the new token, without a refresh', async () => {
    const { auth, server } = await loggedIn()
    const old = server.current!
    await auth.refresh()
    server.live.delete(old)
    // A request stamped with the old generation comes back 401 after the refresh.
    const grant = { token: old, generation: 1, headers: { Authorization: `Bearer ${old}` } }
    const f = createAuthFetch({ ...auth, getGrant: async () => grant, handleUnauthorized: auth.handleUnauthorized, isAllowedUrl: auth.isAllowedUrl }, server.fetch as typeof fetch)
    const res = await f('/api/data')
    expect(res.status).toBe(200)
    expect(server.refreshCalls).toBe(1)
    expect(server.requests.map((r) => r.auth)).toEqual([`Bearer ${old}`, `Bearer ${server.current}`])
  })

  it('P5: a 401 right after a successful refresh surfaces instead of looping', async () => {
    const { auth, server } = await loggedIn()
    const always401 = (async () => new Response('no', { status: 401 })) as typeof fetch
    const f = createAuthFetch(auth, always401)
    const res = await f('/api/admin')
    expect(res.status).toBe(401)
    expect(server.refreshCalls).toBe(1)
  })

  it('P7: the replay carries the token current at send time, not a captured header', async () => {
    const { auth, server } = await loggedIn()
    const stale = server.current!
    server.revokeAccess()
    await auth.fetch('/api/data', { headers: { authorization: `Bearer ${stale}` } })
    expect(server.requests[1]!.auth).toBe(`Bearer ${server.current}`)
  })

  it('bodies are replayed: string, FormData-like and Request bodies arrive twice intact', async () => {
    const { auth, server } = await loggedIn()
    server.revokeAccess()
    const a = await auth.fetch('/api/echo', { method: 'POST', body: '{"n":1}' })
    expect(await a.json()).toMatchObject({ body: '{"n":1}' })
    server.revokeAccess()
    const req = new Request('http://tessera.invalid/api/echo', { method: 'POST', body: 'request-body' })
    const b = await auth.fetch(req)
    expect(await b.json()).toMatchObject({ body: 'request-body' })
    expect(server.requests.filter((r) => r.body === 'request-body')).toHaveLength(2)
  })

  it('a one-shot stream body that gets 401 is a typed BODY_NOT_REPLAYABLE error with the response', async () => {
    const { auth, server } = await loggedIn()
    server.revokeAccess()
    const body = new ReadableStream({
      start(c) {
        c.enqueue(new TextEncoder().encode('stream'))
        c.close()
      },
    })
    const error = await auth.fetch('/api/echo', { method: 'POST', body, duplex: 'half' } as RequestInit).catch((e) => e)
    expect(error).toMatchObject({ code: 'BODY_NOT_REPLAYABLE', status: 401 })
    expect(error.response.status).toBe(401)
  })

  it('a request waiting for a refresh honours its AbortSignal', async () => {
    const { auth, server, clock } = await loggedIn()
    server.next = ['hang']
    clock.jump(301_000)
    const ctrl = new AbortController()
    const pending = auth.fetch('/api/data', { signal: ctrl.signal })
    await flush()
    ctrl.abort(new DOMException('stop', 'AbortError'))
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' })
    expect(server.requests).toHaveLength(0)
    expect(auth.getSnapshot().refreshing).toBe(true) // the refresh goes on for the others
  })

  it('I4: logout rejects every waiting request with LOGGED_OUT and no old token is sent after', async () => {
    const { auth, server, clock } = await loggedIn()
    const old = server.current!
    server.next = ['hang']
    clock.jump(301_000)
    const waiting = Array.from({ length: 10 }, () => auth.fetch('/api/data'))
    await flush()
    await auth.logout()
    const results = await Promise.allSettled(waiting)
    expect(results.every((r) => r.status === 'rejected' && isTesseraError(r.reason, 'LOGGED_OUT'))).toBe(true)
    await auth.fetch('/api/data').catch(() => {})
    expect(server.requests.some((r) => r.auth === `Bearer ${old}`)).toBe(false)
  })

  it('I2/P3: a rejected refresh settles every held request with SESSION_EXPIRED', async () => {
    const { auth, server } = await loggedIn()
    server.revokeAccess()
    server.next = ['reject']
    const results = await Promise.allSettled(Array.from({ length: 25 }, () => auth.fetch('/api/data')))
    expect(results.every((r) => r.status === 'rejected' && isTesseraError(r.reason, 'SESSION_EXPIRED'))).toBe(true)
    expect(auth.getSnapshot().status).toBe('expired')
  })

  it('I6: network errors during the refresh are retried and the held requests succeed', async () => {
    const { auth, server, clock } = await loggedIn()
    server.revokeAccess()
    server.next = ['network', '503']
    const pending = Promise.all(Array.from({ length: 10 }, () => auth.fetch('/api/data')))
    await clock.advance(5_000)
    expect((await pending).every((r) => r.status === 200)).toBe(true)
    expect(server.refreshCalls).toBe(3)
  })

  it('createAuthFetch wraps any fetch implementation', async () => {
    const { auth } = await loggedIn()
    const seen: string[] = []
    const f = createAuthFetch(auth, (async (_: RequestInfo | URL, init?: RequestInit) => {
      seen.push(new Headers(init?.headers).get('authorization') ?? '')
      return new Response('ok')
    }) as typeof fetch)
    await f('/x')
    expect(seen[0]).toMatch(/^Bearer at-/)
  })
})
