import { hashToken, startServer, silentLogger, type RunningServer, type StatsSnapshot } from '@tessera/server'
import { IDBFactory } from 'fake-indexeddb'
import { decodeJwt } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAuth, type Auth, type AuthEventName } from '../src/index.js'
import { httpAuthority } from '../src/authorities/http.js'
import { decodeSession } from '../src/core/stored.js'
import { createDpop } from '../src/proof/dpop.js'
import { FakeStorage, flush } from './fakes.js'
import { TRANSPORTS, echoed, senders } from './transport-kit.js'

/**
 * tessera/dpop against the REFERENCE server with `dpop: 'required'` (issue 16): the real client on every
 * transport, and the attacks a thief with copied tokens can try, each next to the same request from the page.
 */
let server: RunningServer
beforeAll(async () => {
  server = await startServer({ port: 0, dpop: 'required', faults: true, scryptCost: 1024, logger: silentLogger })
})
afterAll(async () => {
  await server?.close()
})

const engines: Auth[] = []
afterAll(() => {
  for (const a of engines.splice(0)) a.dispose()
})
let users = 0
const stats = async () => (await (await fetch(`${server.url}/__stats`)).json()) as StatsSnapshot

/** A page signed in with DPoP: its engine, key handle, storage (what an XSS could read) and events. */
async function page() {
  const email = `dpop-${++users}@example.test`
  const password = 'correct horse battery'
  const res = await fetch(`${server.url}/auth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password }) })
  expect(res.status).toBe(201)
  const dpop = createDpop({ indexedDB: new IDBFactory() })
  const storage = new FakeStorage()
  const auth = createAuth({
    authority: httpAuthority({ baseUrl: `${server.url}/auth`, dpop }),
    proof: dpop,
    allowedOrigins: [server.url],
    channel: null,
    lock: null,
    storage,
    retry: { attempts: 1 },
  })
  engines.push(auth)
  const events: AuthEventName[] = []
  for (const name of ['refresh', 'unauthorized', 'expired', 'logout-error'] as const) auth.on(name, () => void events.push(name))
  await auth.ready()
  await auth.login({ email, password })
  await flush()
  const copied = () => ({ access: decodeSession(storage.map.get('tessera')!).tokens.accessToken, refresh: decodeSession(storage.map.get('tessera')!).tokens.refreshToken! })
  return { auth, dpop, events, copied }
}

describe("tessera/dpop on the reference server (dpop: 'required')", () => {
  it.each(TRANSPORTS)('%s: requests carry DPoP proofs the server accepts, before and after a refresh; the tokens are bound to the page key', async (name) => {
    const { auth, dpop, events } = await page()
    const token = await auth.getAccessToken()
    expect(decodeJwt(token!).cnf).toEqual({ jkt: await dpop.thumbprint() })
    await fetch(`${server.url}/__stats/reset`, { method: 'POST' })
    const send = senders(auth)[name]
    const first = await send(`${server.url}/api/echo`, { n: 1 })
    expect([first.status, echoed(name, first.json)]).toEqual([200, { n: 1 }])
    await auth.refresh()
    const second = await send(`${server.url}/api/echo`, { n: 2 })
    expect([second.status, echoed(name, second.json)]).toEqual([200, { n: 2 }])
    expect(await auth.getAccessToken()).not.toBe(token)
    expect((await stats()).api).toEqual({ calls: 2, unauthorized: 0 })
    expect(events).toEqual(['refresh'])
  })

  it('an access token copied out of the page: 401 as Bearer and with a proof from another key; the page itself: 200', async () => {
    const { auth, copied } = await page()
    const { access } = copied()
    const thief = createDpop({ indexedDB: new IDBFactory() })
    for (const path of ['/api/data', '/auth/me']) {
      expect((await fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${access}` } })).status).toBe(401)
      const stolen = await thief.fetch()(`${server.url}${path}`, { headers: { authorization: `DPoP ${access}` } })
      expect(stolen.status).toBe(401)
      expect(((await stolen.json()) as { error: string }).error).toBe('invalid_dpop_proof')
      expect((await auth.fetch(`${server.url}${path}`)).status).toBe(200)
    }
  })

  it('a refresh token copied out of the page: 400 and no tokens, with another key or none; the page refreshes with it after', async () => {
    const { auth, copied, events } = await page()
    const { refresh } = copied()
    const thief = createDpop({ indexedDB: new IDBFactory() })
    const body = JSON.stringify({ refresh_token: refresh })
    const headers = { 'content-type': 'application/json' }
    for (const send of [thief.fetch(), fetch]) {
      const res = await send(`${server.url}/auth/refresh`, { method: 'POST', headers, body })
      expect(res.status).toBe(400)
      const json = (await res.json()) as Record<string, unknown>
      expect(json.access_token ?? json.refresh_token).toBeUndefined()
    }
    await auth.refresh()
    expect(copied().refresh).not.toBe(refresh)
    expect((await auth.fetch(`${server.url}/api/data`)).status).toBe(200)
    expect(events).toEqual(['refresh'])
  })

  it("a replayed proof (same jti) and a proof for another method or URL: 401; the page's own requests: 200", async () => {
    const { auth, dpop, copied } = await page()
    const { access } = copied()
    const url = `${server.url}/api/data`
    const proof = await dpop.proof('GET', url, access)
    const send = (target: string, p: string, method = 'GET') =>
      fetch(target, { method, headers: { authorization: `DPoP ${access}`, dpop: p, 'content-type': 'application/json' }, body: method === 'POST' ? '{}' : undefined })
    expect((await send(url, proof)).status).toBe(200) // the page's own request
    expect((await send(url, proof)).status).toBe(401) // the same proof again
    expect((await send(`${server.url}/api/echo`, await dpop.proof('GET', `${server.url}/api/echo`, access), 'POST')).status).toBe(401)
    expect((await send(url, await dpop.proof('GET', `${server.url}/auth/me`, access))).status).toBe(401)
    expect((await auth.fetch(`${server.url}/api/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status).toBe(200)
    expect((await auth.fetch(url)).status).toBe(200)
  })

  it("logout revokes the bound refresh token with the page's proof (no logout-error); the copied refresh token is dead", async () => {
    const { auth, copied, events } = await page()
    const { refresh } = copied()
    await auth.logout()
    await flush()
    const record = await server.store.findRefreshToken(hashToken(refresh))
    expect(record?.revokedAt).not.toBeNull()
    expect(events).not.toContain('logout-error')
  })
})

describe('tessera/dpop on the reference server with nonces (dpopNonces)', () => {
  let nonced: RunningServer
  beforeAll(async () => {
    nonced = await startServer({ port: 0, dpop: 'required', dpopNonces: true, scryptCost: 1024, logger: silentLogger })
  })
  afterAll(async () => {
    await nonced?.close()
  })

  it('the login is asked for the nonce once and retried; the refresh carries it and is not asked; every transport passes', async () => {
    const email = 'nonce@example.test'
    const password = 'correct horse battery'
    await fetch(`${nonced.url}/auth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password }) })
    const answers: Array<[string, number]> = []
    const counting: typeof fetch = async (input, init) => {
      const res = await fetch(input, init)
      answers.push([new URL(String(input)).pathname, res.status])
      return res
    }
    const dpop = createDpop({ indexedDB: new IDBFactory() })
    const auth = createAuth({ authority: httpAuthority({ baseUrl: `${nonced.url}/auth`, dpop, fetch: counting }), proof: dpop, allowedOrigins: [nonced.url], channel: null, lock: null, retry: { attempts: 1 } })
    engines.push(auth)
    await auth.ready()
    await auth.login({ email, password })
    await auth.refresh()
    expect(answers).toEqual([
      ['/auth/login', 400],
      ['/auth/login', 200],
      ['/auth/refresh', 200],
    ])
    for (const name of TRANSPORTS) {
      const answer = await senders(auth)[name](`${nonced.url}/api/echo`, { name })
      expect([name, answer.status, echoed(name, answer.json)]).toEqual([name, 200, { name }])
    }
  })
})

