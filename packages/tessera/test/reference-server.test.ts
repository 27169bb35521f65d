import { startServer, silentLogger, type RunningServer, type StatsSnapshot } from '@tessera/server'
import { Client, fetchExchange, gql } from '@urql/core'
import { createAlova } from 'alova'
import adapterFetch from 'alova/fetch'
import axios from 'axios'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAuth, isTesseraError, type Auth } from '../src/index.js'
import { httpAuthority } from '../src/authorities/http.js'
import { createTesseraAuth } from '../src/transports/alova.js'
import { attachAuth } from '../src/transports/axios.js'
import { authExchange } from '../src/transports/urql.js'
import { FakeEnvironment } from './fakes.js'

// The real reference server (rotating single-use refresh tokens, reuse detection, JWT access
// tokens), with its clock in our hands so access tokens expire on the server without the client knowing.
let server: RunningServer
let now = Date.now()
const N = 50
beforeAll(async () => {
  server = await startServer({ port: 0, accessTokenTtl: 300, faults: true, scryptCost: 1024, logger: silentLogger, now: () => now })
})
afterAll(async () => {
  await server?.close()
})

let users = 0
async function session(): Promise<Auth> {
  const email = `adapter-${++users}@example.test`
  const password = 'correct horse battery'
  const res = await fetch(`${server.url}/auth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password }) })
  expect(res.status).toBe(201)
  const auth = createAuth({
    authority: httpAuthority({ baseUrl: `${server.url}/auth` }),
    allowedOrigins: [server.url],
    environment: new FakeEnvironment(),
    retry: { baseDelay: 5, attempts: 3 },
  })
  await auth.ready()
  await auth.login({ email, password })
  await fetch(`${server.url}/__stats/reset`, { method: 'POST' })
  return auth
}
const stats = async () => (await (await fetch(`${server.url}/__stats`)).json()) as StatsSnapshot
/** Server time moves on: the access token is dead there, still fresh for the client (401s in flight). */
const expireOnServer = () => void (now += 400_000)
/** Server time moves past the refresh token's absolute lifetime: the session is over. */
const endSessionOnServer = () => void (now += 31 * 24 * 3600_000)

// Each adapter as users set it up; `send(i)` resolves the echoed body or rejects.
const adapters: Record<string, (auth: Auth) => (i: number) => Promise<unknown>> = {
  axios(auth) {
    const api = axios.create({ baseURL: server.url })
    attachAuth(api, auth)
    return async (i) => (await api.post('/api/echo', { i })).data.body
  },
  urql(auth) {
    // The reference server speaks REST: a custom fetch shapes /api/echo answers as GraphQL results.
    const restAsGraphql: typeof fetch = async (input, init) => {
      const res = await fetch(input, init)
      return res.ok ? Response.json({ data: { echo: await res.json() } }) : res
    }
    const client = new Client({ url: `${server.url}/api/echo`, fetch: restAsGraphql, preferGetMethod: false, exchanges: [authExchange(auth), fetchExchange] })
    const Echo = gql`
      query Echo($i: Int) {
        echo
      }
    `
    return async (i) => {
      const result = await client.query(Echo, { i }, { requestPolicy: 'network-only' }).toPromise()
      if (result.error) throw result.error.networkError ?? result.error
      return (result.data as { echo: { body: { variables: unknown } } }).echo.body.variables
    }
  },
  alova(auth) {
    const { onAuthRequired, onResponseRefreshToken } = createTesseraAuth(auth)
    const alova = createAlova({
      baseURL: server.url,
      requestAdapter: adapterFetch(),
      cacheFor: null,
      beforeRequest: onAuthRequired(),
      responded: onResponseRefreshToken(async (res: Response) => {
        if (!res.ok) throw new Error(`HTTP ${res.status}`)
        return ((await res.json()) as { body: unknown }).body
      }),
    })
    return (i) => alova.Post('/api/echo', { i }).send()
  },
}

describe('adapters against the reference server', () => {
  for (const [name, make] of Object.entries(adapters)) {
    it(`P1/I1/P7 ${name}: ${N} requests whose token the server expired → one refresh, no reuse, all replayed with the new token`, async () => {
      const auth = await session()
      const send = make(auth)
      await expect(send(-1)).resolves.toEqual({ i: -1 })
      expireOnServer()
      const results = await Promise.allSettled(Array.from({ length: N }, (_, i) => send(i)))
      expect(results.filter((r) => r.status === 'rejected')).toEqual([])
      expect(results.map((r) => (r as PromiseFulfilledResult<unknown>).value)).toEqual(Array.from({ length: N }, (_, i) => ({ i })))
      const s = await stats()
      expect(s.refresh).toMatchObject({ calls: 1, succeeded: 1, reuseDetected: 0, invalidGrant: 0 })
      expect(s.api.unauthorized).toBeLessThanOrEqual(N)
      expect(s.api.calls - s.api.unauthorized).toBe(N + 1)
      auth.dispose()
    })

    it(`P3/I2 ${name}: a refresh token past its lifetime fails every request with SESSION_EXPIRED, none hangs`, async () => {
      const auth = await session()
      const send = make(auth)
      endSessionOnServer()
      const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => send(i)))
      expect(results.every((r) => r.status === 'rejected' && isTesseraError(r.reason, 'SESSION_EXPIRED'))).toBe(true)
      expect((await stats()).refresh).toMatchObject({ calls: 1, invalidGrant: 1 })
      expect(auth.getSnapshot().status).toBe('expired')
      auth.dispose()
    })
  }
})
