import { createAlova } from 'alova'
import adapterFetch from 'alova/fetch'
import { describe, expect, it } from 'vitest'
import { isTesseraError, type Auth } from '../src/index.js'
import { createTesseraAuth } from '../src/transports/alova.js'
import { flush } from './fakes.js'
import { fresh, freshOverHttp, startResourceServer, until, useResourceServer } from './resource-server.js'

const server = useResourceServer()
const other = useResourceServer()

class HttpError extends Error {
  constructor(readonly status: number) {
    super(`HTTP ${status}`)
  }
}
type Body = { ok: boolean; token: string; path: string; body: string; public?: boolean }

/** The alova setup users write: the fetch adapter, their own responded that throws on HTTP errors. */
function alovaFor(auth: Auth, extra: { onError?: (e: unknown) => unknown; requestAdapter?: ReturnType<typeof adapterFetch> } = {}) {
  const seen = { before: [] as (string | undefined)[], success: [] as number[], errors: [] as unknown[] }
  const { onAuthRequired, onResponseRefreshToken } = createTesseraAuth(auth)
  const alova = createAlova({
    baseURL: server.url,
    requestAdapter: extra.requestAdapter ?? adapterFetch(),
    cacheFor: null,
    shareRequest: false,
    beforeRequest: onAuthRequired((method) => {
      seen.before.push((method.config.headers as Record<string, string>).Authorization)
    }),
    responded: onResponseRefreshToken({
      onSuccess: async (response: Response) => {
        seen.success.push(response.status)
        if (!response.ok) throw new HttpError(response.status)
        return (await response.json()) as Body
      },
      ...(extra.onError && {
        onError: (error: unknown) => {
          seen.errors.push(error)
          return extra.onError!(error) as never
        },
      }),
    }),
  })
  return { alova, seen }
}

const tokens = (path: string) => server.hits.filter((h) => h.path === path).map((h) => h.auth)

describe('alova: attaching the token', () => {
  it('adds the current token before your beforeRequest runs; visitor methods go untouched', async () => {
    const { auth, fake } = await fresh(server)
    const { alova, seen } = alovaFor(auth)
    const headers = { 'x-app': 'demo' }
    expect(await alova.Get<Body>('/api/data', { headers })).toMatchObject({ ok: true, token: fake.current })
    expect(headers).toEqual({ 'x-app': 'demo' }) // the user's object is not touched
    expect(seen.before).toEqual([`Bearer ${fake.current}`])
    await alova.Get('/public', { meta: { authRole: 'visitor' } })
    await alova.Get('/public', { meta: { tessera: 'none' } })
    await alova.Get('/public', { meta: { authRole: null } })
    expect(tokens('/public')).toEqual([null, null, null])
    expect(server.hits[0]!.headers['x-app']).toBe('demo')
  })

  it('I5: another origin receives no token and causes no refresh', async () => {
    const { auth, fake } = await fresh(server)
    other.use(fake)
    const { alova } = alovaFor(auth)
    await expect(alova.Get(`${other.url}/api/data`)).rejects.toMatchObject({ status: 401 })
    expect(other.hits.map((h) => h.auth)).toEqual([null])
    expect(fake.refreshCalls).toBe(0)
  })
})

describe('alova: refresh and replay', () => {
  it('P1/I1: 30 concurrent requests with an expired token wait for exactly one refresh', async () => {
    const { auth, fake, clock } = await fresh(server)
    const { alova } = alovaFor(auth)
    clock.jump(301_000)
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => alova.Get<Body>(`/api/item/${i}`)))
    expect(results.every((r) => r.token === 'at-2')).toBe(true)
    expect(fake.refreshCalls).toBe(1)
    expect(server.hits).toHaveLength(30)
  })

  it('P1/I1/P7: 401s already in flight join one refresh; each replays once with the new token through your handlers', async () => {
    const { auth, fake } = await fresh(server)
    const { alova, seen } = alovaFor(auth)
    fake.revokeAccess()
    const release = server.gate('/api/data')
    const pending = Promise.all(Array.from({ length: 30 }, (_, i) => alova.Get<Body>('/api/data', { params: { i } })))
    await until(() => server.count('/api/data') === 30)
    release()
    const results = await pending
    expect(results.every((r) => r.token === 'at-2')).toBe(true)
    expect(fake.refreshCalls).toBe(1)
    expect(tokens('/api/data').filter((t) => t === 'Bearer at-1')).toHaveLength(30)
    expect(tokens('/api/data').filter((t) => t === 'Bearer at-2')).toHaveLength(30)
    expect(seen.success).toEqual(Array(30).fill(200)) // your onSuccess saw each replay, not the 401s
  })

  it('a method transform runs once for a replayed request', async () => {
    const { auth, fake } = await fresh(server)
    const { alova } = alovaFor(auth)
    fake.revokeAccess()
    const result = await alova.Post('/api/echo', { n: 1 }, { transform: (d: Body) => ({ ...d, wrapped: [d.token] }) })
    expect(result).toMatchObject({ token: 'at-2', body: '{"n":1}', wrapped: ['at-2'] })
  })

  it('P2/I3: a late 401 for an already-replaced token replays at once, without a second refresh', async () => {
    const { auth, fake } = await fresh(server)
    const { alova } = alovaFor(auth)
    const release = server.gate('/api/slow')
    const pending = alova.Get<Body>('/api/slow').send()
    await until(() => server.count('/api/slow') === 1)
    await auth.refresh()
    fake.live.delete('at-1')
    release()
    expect((await pending).token).toBe('at-2')
    expect(fake.refreshCalls).toBe(1)
    expect(tokens('/api/slow')).toEqual(['Bearer at-1', 'Bearer at-2'])
  })

  it('P5/I3: a 401 right after a successful refresh reaches your handler after one replay, no loop', async () => {
    const { auth, fake } = await fresh(server)
    const { alova, seen } = alovaFor(auth)
    await expect(alova.Get('/api/always-401')).rejects.toBeInstanceOf(HttpError)
    expect(server.count('/api/always-401')).toBe(2)
    expect(fake.refreshCalls).toBe(1)
    expect(seen.success).toEqual([401])
  })

  it('an adapter that throws on 401 is refreshed and replayed through onError', async () => {
    const { auth, fake } = await fresh(server)
    const base = adapterFetch()
    const throwing = ((elements, method) => {
      const ctrl = base(elements, method)
      const response = () =>
        ctrl.response().then((r) => (r.status === 401 ? Promise.reject(Object.assign(new Error('401'), { response: r })) : r))
      return { ...ctrl, response }
    }) as typeof base
    const { alova } = alovaFor(auth, { requestAdapter: throwing })
    fake.revokeAccess()
    expect(await alova.Get<Body>('/api/data')).toMatchObject({ token: 'at-2' })
    expect(fake.refreshCalls).toBe(1)
  })

  it('network failures during the refresh are retried and the requests then succeed (I6)', async () => {
    const { auth, fake } = await fresh(server, { clock: undefined, retry: { baseDelay: 5, attempts: 3 } })
    const { alova } = alovaFor(auth)
    fake.next = ['network', 'network']
    fake.revokeAccess()
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => alova.Get<Body>('/api/data', { params: { i } })))
    expect(results.every((r) => r.token === 'at-2')).toBe(true)
    expect(fake.refreshCalls).toBe(3)
  })
})

describe('alova: failures settle and surface', () => {
  it('P3/I2: a rejected refresh fails every held and in-flight request with SESSION_EXPIRED', async () => {
    const { auth, fake } = await fresh(server)
    const { alova } = alovaFor(auth)
    fake.revokeAccess()
    fake.next = ['reject']
    const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => alova.Get('/api/data', { params: { i } })))
    expect(results.every((r) => r.status === 'rejected' && isTesseraError(r.reason, 'SESSION_EXPIRED'))).toBe(true)
    expect(fake.refreshCalls).toBe(1)
    await expect(alova.Get('/api/data')).rejects.toMatchObject({ name: 'TesseraError', code: 'SESSION_EXPIRED' })
  })

  it('I4: requests held during a refresh reject LOGGED_OUT on logout and never send the old token', async () => {
    const { auth, fake, clock } = await fresh(server)
    const { alova } = alovaFor(auth)
    fake.next = ['hang']
    clock.jump(301_000)
    const held = Promise.allSettled(Array.from({ length: 5 }, (_, i) => alova.Get('/api/data', { params: { i } })))
    await flush()
    await auth.logout()
    const results = await held
    expect(results.every((r) => r.status === 'rejected' && isTesseraError(r.reason, 'LOGGED_OUT'))).toBe(true)
    expect(server.count('/api/data')).toBe(0)
  })

  it('P4: your handlers’ errors and adapter errors reject; nothing resolves undefined (alova #772)', async () => {
    const { auth, fake } = await fresh(server)
    const closed = await startResourceServer()
    await closed.close()
    const { alova } = alovaFor(auth)
    await expect(alova.Get('/api/error')).rejects.toMatchObject({ status: 500 })
    const refused = await alova.Get(`${closed.url}/public`).then(
      (value) => ({ resolved: value }),
      (error: unknown) => ({ rejected: error }),
    )
    expect(refused).toMatchObject({ rejected: { name: 'TypeError' } })
    const handled = alovaFor(auth, { onError: (e) => Promise.reject(new Error('mine', { cause: e })) })
    await expect(handled.alova.Get(`${closed.url}/public`)).rejects.toThrow('mine')
    expect(handled.seen.errors).toHaveLength(1)
    expect(fake.refreshCalls).toBe(0)
  })
})

describe('alova: the refresh bypasses alova (P6)', () => {
  it('P6: with an HTTP authority on the same origin, alova never sees the refresh call', async () => {
    const { fake, auth } = await freshOverHttp(server)
    const { alova, seen } = alovaFor(auth)
    fake.revokeAccess()
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => alova.Get<Body>('/api/data', { params: { i } })))
    expect(results.every((r) => r.token === 'at-2')).toBe(true)
    expect(server.count('/auth/refresh')).toBe(1)
    expect(seen.before).toHaveLength(20) // 10 sends + 10 replays, and no refresh among them
    expect(seen.before.every((t) => t === 'Bearer at-1' || t === 'Bearer at-2')).toBe(true)
    auth.dispose()
  })
})
