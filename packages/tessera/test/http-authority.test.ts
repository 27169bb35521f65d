import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openPgliteStore, silentLogger, startServer, type RunningServer, type Store } from '@tessera/server'
import { createAuth, isTesseraError, type StoragePort, type TesseraError } from '../src/index.js'
import { httpAuthority } from '../src/authorities/http.js'
import { FakeClock, FakeStorage, flush } from './fakes.js'
import { notATokenResponse, refusedRefresh, refusedRevocation, writeRaw, type RawAnswer } from './token-server-corpus.js'

/** Integration: the real client against the real reference server over 127.0.0.1. */
let store: Store
let server: RunningServer
const clock = new FakeClock()
const email = 'ada@example.test'
const password = 'correct horse battery'

beforeAll(async () => {
  store = await openPgliteStore()
  server = await startServer({ store, scryptCost: 1024, logger: silentLogger, accessTokenTtl: 300, faults: true, now: () => clock.now() })
  const res = await fetch(`${server.url}/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password, name: 'Ada' }),
  })
  expect(res.status).toBe(201)
})
afterAll(async () => {
  await server?.close()
  await store?.close()
})

function client(extra: { storage?: StoragePort; fetch?: typeof fetch; refreshToken?: 'body' | 'cookie' } = {}) {
  const authority = httpAuthority<{ id: string; email: string; name: string; roles: string[] }>({
    baseUrl: `${server.url}/auth`,
    refreshToken: extra.refreshToken,
    fetch: extra.fetch,
  })
  const auth = createAuth({
    authority,
    clock,
    storage: extra.storage,
    allowedOrigins: [server.url],
    environment: { subscribe: () => () => {} },
    retry: { baseDelay: 1, attempts: 2, timeout: 5_000 },
  })
  return { auth, authority }
}

/** A client signed in as the registered user, and the tokens it has stored at the moment. */
async function signedIn() {
  const storage = new FakeStorage()
  const { auth } = client({ storage })
  await auth.ready()
  await auth.login({ email, password })
  return { auth, stored: () => JSON.parse(storage.map.get('tessera')!).tokens as { refreshToken: string } }
}
/** POST /auth/refresh with `refreshToken`, straight to the server, as someone holding a copy of it would. */
const presentRefreshToken = (refreshToken: string) =>
  fetch(`${server.url}/auth/refresh`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ refresh_token: refreshToken }),
  })
const stats = async () => (await (await fetch(`${server.url}/__stats`)).json()) as { refresh: { calls: number; succeeded: number; reuseDetected: number } }

describe('httpAuthority against the reference server', () => {
  it('the README example runs as written (against this server)', async () => {
    const readme = readFileSync(resolve(__dirname, '../../../README.md'), 'utf8')
    const code = /## Ten lines\n\n```ts\n([\s\S]*?)```/.exec(readme)![1]!
    const src = resolve(__dirname, '../src')
    const runnable = code
      .replace("from 'tessera'", `from '${src}/index.ts'`)
      .replace("from 'tessera/http'", `from '${src}/authorities/http.ts'`)
      .replaceAll('http://127.0.0.1:8787', server.url)
      .replace("email: 'demo@tessera.dev', password: 'tessera-demo'", `email: '${email}', password: '${password}'`)
    expect(runnable).toContain(server.url) // the example names the demo server's address
    const file = join(mkdtempSync(join(tmpdir(), 'tessera-readme-')), 'example.ts')
    writeFileSync(file, runnable)
    const logs: unknown[] = []
    const log = console.log
    console.log = (...args: unknown[]) => void logs.push(args)
    try {
      await import(file)
    } finally {
      console.log = log
    }
    expect(logs.flat()).toContainEqual(expect.objectContaining({ sub: expect.any(String), items: expect.any(Array) }))
    expect(logs.flat()).toContain('authenticated')
  })

  it('login → authed request → expiry → refresh with rotation → the user stays', async () => {
    const { auth, stored } = await signedIn()
    expect(auth.getSnapshot()).toMatchObject({ status: 'authenticated', user: { email, name: 'Ada' } })
    const first = stored()
    expect((await auth.fetch(`${server.url}/api/data`)).status).toBe(200)
    const before = (await stats()).refresh.succeeded
    clock.jump(301_000) // the access token expired on both clocks
    const res = await auth.fetch(`${server.url}/api/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"n":1}' })
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ body: { n: 1 } })
    expect((await stats()).refresh.succeeded).toBe(before + 1)
    await flush()
    const second = stored()
    expect(second.refreshToken).not.toBe(first.refreshToken) // rotated
    expect(auth.getSnapshot().generation).toBe(2)
    auth.dispose()
  })

  it('a reused refresh token revokes the family: the next refresh ends the client session (SESSION_EXPIRED)', async () => {
    const { auth, stored } = await signedIn()
    const stolen = stored().refreshToken
    await auth.refresh() // rotates: `stolen` is now used
    const replay = await presentRefreshToken(stolen)
    expect(replay.status).toBe(400)
    expect((await replay.json()).error).toBe('invalid_grant')
    await expect(auth.refresh()).rejects.toMatchObject({ code: 'SESSION_EXPIRED', status: 400 })
    expect(auth.getSnapshot().status).toBe('expired')
    await expect(auth.fetch(`${server.url}/api/data`)).rejects.toMatchObject({ code: 'SESSION_EXPIRED' })
  })

  it('logout revokes the refresh token on the server', async () => {
    const { auth, stored } = await signedIn()
    const rt = stored().refreshToken
    await auth.logout()
    const res = await presentRefreshToken(rt)
    expect(res.status).toBe(400)
  })

  it('wrong credentials are LOGIN_FAILED with the status; the server message names no secret', async () => {
    const { auth } = client()
    await auth.ready()
    const error = await auth.login({ email, password: 'wrong password' }).catch((e) => e)
    expect(isTesseraError(error, 'LOGIN_FAILED')).toBe(true)
    expect(error.status).toBe(401)
    expect(error.message).not.toContain('wrong password')
    expect(auth.getSnapshot()).toMatchObject({ status: 'unauthenticated', error: { code: 'LOGIN_FAILED' } })
  })

  it('a refresh-token cookie session: no token in JS, and a reload restores the session by refreshing', async () => {
    const cookieServer = await startServer({ store, scryptCost: 1024, logger: silentLogger, refreshTokenDelivery: 'cookie', now: () => clock.now() })
    try {
      // Node's fetch keeps no cookies: a minimal jar stands in for the browser's.
      let jar = ''
      const jarFetch = (async (input: RequestInfo | URL, init: RequestInit = {}) => {
        const headers = new Headers(init.headers)
        if (jar) headers.set('cookie', jar)
        const res = await fetch(input, { ...init, headers })
        const set = res.headers.get('set-cookie')
        if (set) jar = set.split(';')[0]!.endsWith('=') ? '' : set.split(';')[0]!
        return res
      }) as typeof fetch
      const make = () =>
        createAuth({
          authority: httpAuthority({ baseUrl: `${cookieServer.url}/auth`, refreshToken: 'cookie', fetch: jarFetch }),
          clock,
          allowedOrigins: [cookieServer.url],
          environment: { subscribe: () => () => {} },
        })
      const tab = make()
      await tab.ready()
      await tab.login({ email, password })
      expect(jar).toMatch(/=/)
      tab.dispose()
      const reloaded = make()
      await reloaded.ready()
      expect(reloaded.getSnapshot()).toMatchObject({ status: 'authenticated', user: { email } })
      await reloaded.logout()
      const again = make()
      await again.ready()
      expect(again.getSnapshot().status).toBe('unauthenticated')
    } finally {
      await cookieServer.close()
    }
  })

  it('I6: the token server down is a NETWORK_ERROR that keeps the session', async () => {
    const { auth } = createAuthAgainst('http://127.0.0.1:9/auth') // nothing listens on port 9
    await auth.ready()
    await expect(auth.login({ email, password })).rejects.toMatchObject({ code: 'NETWORK_ERROR' })
  })
})

function createAuthAgainst(baseUrl: string) {
  return { auth: createAuth({ authority: httpAuthority({ baseUrl }), clock, environment: { subscribe: () => () => {} } }) }
}

describe('Issue 13 finding 4: a JSON token server that bends the spec, on the wire, through the engine', () => {
  /** A token server whose next answer per path can be scripted byte for byte; otherwise it rotates honestly. */
  async function bending(run: (s: Awaited<ReturnType<typeof startBending>>) => Promise<void>) {
    const s = await startBending()
    try {
      await run(s)
    } finally {
      await s.close()
    }
  }
  async function startBending() {
    const wire = new Map<string, RawAnswer>()
    const seen: string[] = []
    let n = 0
    const tokens = () => JSON.stringify({ access_token: `at-${++n}`, token_type: 'Bearer', expires_in: 60, refresh_token: `rt-${n}` })
    const server = createServer((req, res) => {
      req.resume()
      seen.push(req.url!)
      const scripted = wire.get(req.url!)
      wire.delete(req.url!)
      writeRaw(res, scripted ?? { status: req.url === '/logout' ? 204 : 200, headers: { 'content-type': 'application/json' }, body: req.url === '/logout' ? '' : tokens() })
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    const clock = new FakeClock()
    const storage = new FakeStorage()
    const auth = createAuth({ authority: httpAuthority({ baseUrl: url, endpoints: { me: null } }), clock, storage, retry: { attempts: 1 }, environment: { subscribe: () => () => {} } })
    await auth.ready()
    await auth.login({ email, password })
    const close = () => {
      auth.dispose()
      return new Promise<void>((r) => server.close(() => r()))
    }
    return { auth, wire, seen, clock, storage, close }
  }

  it.each(Object.entries(refusedRefresh))('a refresh answered %s ends the session: SESSION_EXPIRED, expired, never retried', async (_, answer) => {
    await bending(async (s) => {
      s.wire.set('/refresh', answer)
      const error = await s.auth.refresh().catch((e: TesseraError) => e)
      expect(error).toMatchObject({ code: 'SESSION_EXPIRED', status: answer.status, cause: { code: 'INVALID_GRANT' } })
      expect(s.auth.getSnapshot()).toMatchObject({ status: 'expired', error: { code: 'SESSION_EXPIRED' } })
      await flush()
      expect(s.storage.map.get('tessera')).toBeUndefined()
      const refreshes = s.seen.filter((p) => p === '/refresh').length
      await s.clock.advance(3_600_000)
      expect(s.seen.filter((p) => p === '/refresh').length).toBe(refreshes)
    })
  })

  it.each(Object.entries(notATokenResponse))('a refresh answered %s is INVALID_TOKEN_RESPONSE: the session is kept', async (_, answer) => {
    await bending(async (s) => {
      s.wire.set('/refresh', answer)
      await expect(s.auth.refresh()).rejects.toMatchObject({ code: 'INVALID_TOKEN_RESPONSE', status: 200 })
      expect(s.auth.getSnapshot().status).toBe('authenticated')
      await s.auth.refresh()
      expect(await s.auth.getAccessToken()).toBe('at-2')
    })
  })

  it('lowercase token_type "bearer" and extra fields are a valid token response', async () => {
    await bending(async (s) => {
      const body = JSON.stringify({ access_token: 'at-x', token_type: 'bearer', expires_in: 60, refresh_token: 'rt-x', scope: 'a b', 'not-before-policy': 0, session: { id: 1 } })
      s.wire.set('/refresh', { status: 200, headers: { 'content-type': 'application/json; charset=utf-8' }, body })
      await s.auth.refresh()
      expect(s.auth.getSnapshot()).toMatchObject({ status: 'authenticated', generation: 2 })
      expect(await s.auth.getAccessToken()).toBe('at-x')
    })
  })

  it('a logout answered 401 with an empty body: logout resolves, the local session is over, the refusal is a logout-error event', async () => {
    await bending(async (s) => {
      s.wire.set('/logout', refusedRevocation)
      const failures: TesseraError[] = []
      s.auth.on('logout-error', (n) => void failures.push(n.error!))
      await expect(s.auth.logout()).resolves.toBeUndefined()
      expect(s.auth.getSnapshot().status).toBe('unauthenticated')
      expect(failures).toHaveLength(1)
      expect(failures[0]).toMatchObject({ status: 401 })
      expect(JSON.stringify({ m: failures[0]!.message, c: failures[0]!.cause })).not.toMatch(/rt-1|at-1/)
    })
  })
})
