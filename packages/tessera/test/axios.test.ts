import axios, { AxiosError, type AxiosInstance } from 'axios'
import { describe, expect, it } from 'vitest'
import { isTesseraError } from '../src/index.js'
import { attachAuth } from '../src/transports/axios.js'
import { flush } from './fakes.js'
import { fresh, freshOverHttp, startResourceServer, until, useResourceServer } from './resource-server.js'

const server = useResourceServer()
const other = useResourceServer()

async function client(extra?: Parameters<typeof fresh>[1]) {
  const t = await fresh(server, extra)
  const api: AxiosInstance = axios.create({ baseURL: server.url })
  const detach = attachAuth(api, t.auth)
  return { ...t, api, detach }
}

const tokenOf = (path: string) => server.hits.filter((h) => h.path === path).map((h) => h.auth)

describe('axios: attaching the token', () => {
  it('adds the current token to URLs resolved against baseURL; visitor requests go untouched', async () => {
    const { api, fake } = await client()
    const { data } = await api.get('/api/data')
    expect(data).toMatchObject({ ok: true, token: fake.current })
    expect(tokenOf('/api/data')).toEqual([`Bearer ${fake.current}`])
    const visitor = await api.get('/public', { tessera: 'none' })
    expect(visitor.data).toEqual({ public: true })
    expect(tokenOf('/public')).toEqual([null])
  })

  it('I5: requests to another origin carry no token and never refresh', async () => {
    const { api, fake, auth } = await client()
    other.use(fake)
    const error = await api.get(`${other.url}/api/data`).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(AxiosError)
    expect((error as AxiosError).response?.status).toBe(401)
    const elsewhere = axios.create({ baseURL: other.url })
    attachAuth(elsewhere, auth)
    await expect(elsewhere.get('/public')).resolves.toMatchObject({ status: 200 })
    expect(other.hits.map((h) => h.auth)).toEqual([null, null])
    expect(fake.refreshCalls).toBe(0)
  })

  it('detach() ejects both interceptors', async () => {
    const { api, detach } = await client()
    detach()
    await expect(api.get('/api/data')).rejects.toMatchObject({ response: { status: 401 } })
    expect(tokenOf('/api/data')).toEqual([null])
  })
})

describe('axios: refresh and replay', () => {
  it('P1/I1: 50 concurrent requests with an expired token cause exactly one refresh', async () => {
    const { api, fake, clock } = await client()
    clock.jump(301_000)
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => api.get(`/api/item/${i}`)))
    expect(results.every((r) => r.data.token === 'at-2')).toBe(true)
    expect(fake.refreshCalls).toBe(1)
    expect(server.hits).toHaveLength(50)
  })

  it('P1/I1: 50 requests whose 401s are already in flight join one refresh and are all replayed', async () => {
    const { api, fake } = await client()
    fake.revokeAccess()
    const release = server.gate('/api/data')
    const pending = Promise.all(Array.from({ length: 50 }, () => api.get('/api/data')))
    await until(() => server.count('/api/data') === 50)
    release()
    const results = await pending
    expect(results.every((r) => r.status === 200 && r.data.token === 'at-2')).toBe(true)
    expect(fake.refreshCalls).toBe(1)
    expect(server.count('/api/data')).toBe(100)
  })

  it('P2/I3: a late 401 for an already-replaced token replays at once, without a second refresh', async () => {
    const { api, fake, auth } = await client()
    const release = server.gate('/api/slow')
    const pending = api.get('/api/slow')
    await until(() => server.count('/api/slow') === 1)
    await auth.refresh()
    fake.live.delete('at-1')
    release()
    expect((await pending).data.token).toBe('at-2')
    expect(fake.refreshCalls).toBe(1)
    expect(tokenOf('/api/slow')).toEqual(['Bearer at-1', 'Bearer at-2'])
  })

  it('P7: the replay carries the token read at replay time, never a captured header', async () => {
    const { api, fake } = await client()
    fake.revokeAccess()
    const res = await api.post('/api/echo', { n: 1 }, { headers: { Authorization: 'Bearer stale-by-hand' } })
    expect(res.data).toMatchObject({ token: 'at-2', body: '{"n":1}' })
    expect(tokenOf('/api/echo')).toEqual(['Bearer at-1', 'Bearer at-2'])
  })

  it('P5: the replay marks axios’ merged copy, never the caller’s config, which replays again when sent again', async () => {
    const { api, fake } = await client()
    const config = { url: '/api/echo', headers: { 'X-Mine': '1' } }
    fake.revokeAccess()
    await expect(api.request(config)).resolves.toMatchObject({ data: { token: 'at-2' } })
    expect(config).toEqual({ url: '/api/echo', headers: { 'X-Mine': '1' } })
    fake.revokeAccess()
    await expect(api.request(config)).resolves.toMatchObject({ data: { token: 'at-3' } })
    expect(tokenOf('/api/echo')).toEqual(['Bearer at-1', 'Bearer at-2', 'Bearer at-2', 'Bearer at-3'])
    expect(fake.refreshCalls).toBe(2)
  })

  it('I3: a 401 is still replayed when an interceptor that runs after Tessera’s hands axios a copy of the config', async () => {
    const { auth, fake } = await fresh(server)
    const api = axios.create({ baseURL: server.url })
    api.interceptors.request.use((config) => ({ ...config })) // registered first, so axios runs it last
    attachAuth(api, auth)
    fake.revokeAccess()
    await expect(api.get('/api/data')).resolves.toMatchObject({ data: { token: 'at-2' } })
    expect(tokenOf('/api/data')).toEqual(['Bearer at-1', 'Bearer at-2'])
    expect(fake.refreshCalls).toBe(1)
  })

  it('I5: a config that was sent with a token and is sent again as a visitor request is not refreshed for, nor replayed with a token', async () => {
    const { api, fake } = await client()
    const { config } = await api.get('/api/data') // axios' merged config, as an app may keep and send again
    fake.revokeAccess()
    const error = await api.request({ ...config, headers: {}, tessera: 'none' }).catch((e: unknown) => e)
    expect((error as AxiosError).response?.status).toBe(401)
    expect(tokenOf('/api/data')).toEqual([`Bearer at-1`, null])
    expect(fake.refreshCalls).toBe(0)
  })

  it('P5/I3: a 401 right after a successful refresh surfaces after one replay, no loop', async () => {
    const { api, fake } = await client()
    const error = await api.get('/api/always-401').catch((e: unknown) => e)
    expect(error).toBeInstanceOf(AxiosError)
    expect((error as AxiosError).response?.status).toBe(401)
    expect(server.count('/api/always-401')).toBe(2)
    expect(fake.refreshCalls).toBe(1)
  })

  it('isAuthError widens what counts as an auth error', async () => {
    const t = await fresh(server)
    const api = axios.create({ baseURL: server.url })
    attachAuth(api, t.auth, { isAuthError: (e) => e.response?.status === 500 })
    await expect(api.get('/api/error')).rejects.toMatchObject({ response: { status: 500 } })
    expect(server.count('/api/error')).toBe(2)
    expect(t.fake.refreshCalls).toBe(1)
  })

  it('network failures during the refresh are retried and the requests then succeed (I6)', async () => {
    const { api, fake } = await client({ clock: undefined, retry: { baseDelay: 5, attempts: 3 } })
    fake.next = ['network', 'network']
    fake.revokeAccess()
    const results = await Promise.all(Array.from({ length: 10 }, () => api.get('/api/data')))
    expect(results.every((r) => r.data.token === 'at-2')).toBe(true)
    expect(fake.refreshCalls).toBe(3)
  })
})

describe('axios: failures settle and surface', () => {
  it('P3/I2: a rejected refresh fails every held and in-flight request with SESSION_EXPIRED', async () => {
    const { api, fake } = await client()
    fake.revokeAccess()
    fake.next = ['reject']
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => api.get('/api/data')))
    expect(results.every((r) => r.status === 'rejected' && isTesseraError(r.reason, 'SESSION_EXPIRED'))).toBe(true)
    expect(fake.refreshCalls).toBe(1)
    await expect(api.get('/api/data')).rejects.toMatchObject({ name: 'TesseraError', code: 'SESSION_EXPIRED' })
  })

  it('I4: requests held during a refresh reject LOGGED_OUT on logout and never send the old token', async () => {
    const { api, fake, clock, auth } = await client()
    fake.next = ['hang']
    clock.jump(301_000)
    const held = Promise.allSettled(Array.from({ length: 5 }, () => api.get('/api/data')))
    await flush()
    await auth.logout()
    const results = await held
    expect(results.every((r) => r.status === 'rejected' && isTesseraError(r.reason, 'LOGGED_OUT'))).toBe(true)
    expect(server.count('/api/data')).toBe(0)
  })

  it('I2: a request waiting for a refresh honours its AbortSignal and is never sent', async () => {
    const { api, fake, clock } = await client()
    fake.next = ['hang']
    clock.jump(301_000)
    const ctrl = new AbortController()
    const held = api.get('/api/data', { signal: ctrl.signal }).catch((e: unknown) => e)
    await flush()
    ctrl.abort(new DOMException('user navigated away', 'AbortError'))
    expect(await held).toMatchObject({ name: 'AbortError' })
    expect(server.count('/api/data')).toBe(0)
  })

  it('P4: other errors reject unchanged, the very object later interceptors see', async () => {
    const { api } = await client()
    let seen: unknown
    api.interceptors.response.use(undefined, (e: unknown) => {
      seen = e
      throw e
    })
    const error = await api.get('/api/error').catch((e: unknown) => e)
    expect(error).toBe(seen)
    expect((error as AxiosError).response?.status).toBe(500)
    const closed = await startResourceServer()
    await closed.close()
    const refused = await api.get(`${closed.url}/api/data`, { baseURL: '' }).catch((e: unknown) => e)
    expect(refused).toBeInstanceOf(AxiosError)
    expect((refused as AxiosError).code).toBe('ECONNREFUSED')
  })
})

describe('axios: the refresh bypasses the instance (P6)', () => {
  it('P6: with an HTTP authority on the same origin, the instance never sees the refresh call', async () => {
    const { fake, auth } = await freshOverHttp(server)
    const api = axios.create({ baseURL: server.url })
    const seen: string[] = []
    // Registered before attachAuth, so it runs after Tessera's request interceptor: it sees every send.
    api.interceptors.request.use((config) => {
      seen.push(api.getUri(config))
      return config
    })
    attachAuth(api, auth)
    fake.revokeAccess()
    const results = await Promise.all(Array.from({ length: 10 }, () => api.get('/api/data')))
    expect(results.every((r) => r.data.token === 'at-2')).toBe(true)
    expect(server.count('/auth/refresh')).toBe(1)
    expect(seen).toHaveLength(20)
    expect(seen.some((u) => u.includes('/auth/'))).toBe(false)
    auth.dispose()
  })
})
