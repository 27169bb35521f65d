import { Client, fetchExchange, gql } from '@urql/core'
import { IDBFactory } from 'fake-indexeddb'
import { EmbeddedJWK, calculateJwkThumbprint, jwtVerify } from 'jose'
import { createHash } from 'node:crypto'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createAuth, isTesseraError, type Auth, type AuthEventName } from '../src/index.js'
import { httpAuthority } from '../src/authorities/http.js'
import { createDpop, type Dpop } from '../src/proof/dpop.js'
import { authExchange } from '../src/transports/urql.js'
import { decodeSession } from '../src/core/stored.js'
import { FakeBus, FakeLocks, FakeStorage, flush } from './fakes.js'
import { startDpopServer, type DpopServer } from './servers/dpop-server.js'
import { TRANSPORTS, senders } from './transport-kit.js'

/**
 * DPoP (RFC 9449, issue 16) against a real loopback server that verifies every proof with jose
 * (test/servers/dpop-server.ts), the key in fake-indexeddb (one `IDBFactory` per test is one
 * browser profile: engines on it are tabs of one origin).
 */
let server: DpopServer
beforeAll(async () => {
  server = await startDpopServer()
})
afterAll(() => server.close())
const engines: Auth[] = []
afterEach(() => {
  for (const a of engines.splice(0)) a.dispose()
  server.reset()
  server.demand.token = server.demand.resource = false
})

const sha256 = (text: string) => createHash('sha256').update(text).digest('base64url')

/** One tab: an engine whose authority and transports prove with `dpop` (a handle on `profile`'s IndexedDB). */
function tab(profile: IDBFactory, extra: { dpop?: Dpop; channel?: ReturnType<FakeBus['channel']>; lock?: FakeLocks; storage?: FakeStorage } = {}) {
  const dpop = extra.dpop ?? createDpop({ indexedDB: profile })
  const auth = createAuth({
    authority: httpAuthority({ baseUrl: `${server.url}/auth`, dpop }),
    proof: dpop,
    allowedOrigins: [server.url],
    channel: extra.channel ?? null,
    lock: extra.lock ?? null,
    storage: extra.storage,
    retry: { attempts: 1 },
  })
  engines.push(auth)
  const events: AuthEventName[] = []
  for (const name of ['refresh', 'unauthorized', 'expired', 'logout-error'] as const) auth.on(name, () => void events.push(name))
  return { auth, dpop, events }
}
async function signedIn(profile = new IDBFactory()) {
  const t = tab(profile)
  await t.auth.ready()
  await t.auth.login({ email: 'ada@example.test', password: 'pw' })
  return t
}
/** Every record in the profile's key store (what tabs share). */
function storedKeys(profile: IDBFactory): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const open = profile.open('tessera-dpop', 1)
    open.onsuccess = () => {
      const req = open.result.transaction('keys', 'readonly').objectStore('keys').getAll()
      req.onsuccess = () => (open.result.close(), resolve(req.result))
      req.onerror = () => reject(req.error)
    }
    open.onerror = () => reject(open.error)
  })
}

describe('proofs', () => {
  it('a proof verifies with jose: typ dpop+jwt, ES256, only the public jwk; htm, htu without query and fragment, iat, a fresh jti, ath', async () => {
    const dpop = createDpop({ indexedDB: new IDBFactory() })
    const before = Math.floor(Date.now() / 1000)
    const proof = await dpop.proof('post', 'https://api.example.test/items/7?page=2&sort=x#top', 'at-secret')
    const { payload, protectedHeader } = await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: ['ES256'] })
    expect(protectedHeader).toEqual({ typ: 'dpop+jwt', alg: 'ES256', jwk: { kty: 'EC', crv: 'P-256', x: expect.any(String), y: expect.any(String) } })
    expect(payload).toEqual({ htm: 'POST', htu: 'https://api.example.test/items/7', iat: expect.any(Number), jti: expect.any(String), ath: sha256('at-secret') })
    expect(payload.iat).toBeGreaterThanOrEqual(before)
    expect(payload.iat).toBeLessThanOrEqual(Math.floor(Date.now() / 1000))
    // Token endpoint proofs have no ath; every proof has its own jti.
    const other = await jwtVerify(await dpop.proof('POST', 'https://id.example.test/token'), EmbeddedJWK, { typ: 'dpop+jwt', algorithms: ['ES256'] })
    expect(other.payload.ath).toBeUndefined()
    expect(other.payload.jti).not.toBe(payload.jti)
    // The thumbprint is RFC 7638's, as jose computes it from the proof's header.
    expect(await dpop.thumbprint()).toBe(await calculateJwkThumbprint(protectedHeader.jwk!))
  })

  it('the private key cannot leave WebCrypto: not extractable, not exportable', async () => {
    const { privateKey, publicKey } = await createDpop({ indexedDB: new IDBFactory() }).keyPair()
    expect(privateKey.extractable).toBe(false)
    expect(privateKey.algorithm).toMatchObject({ name: 'ECDSA', namedCurve: 'P-256' })
    await expect(crypto.subtle.exportKey('jwk', privateKey)).rejects.toThrow()
    expect((await crypto.subtle.exportKey('jwk', publicKey)).d).toBeUndefined()
  })

  it('a grant asked without a URL (getAccessToken) is the token alone; with one, Authorization: DPoP and a proof', async () => {
    const { auth } = await signedIn()
    const token = await auth.getAccessToken()
    expect(await auth.getGrant()).toMatchObject({ token, headers: { Authorization: `Bearer ${token}` } })
    const grant = await auth.getGrant({ method: 'DELETE', url: `${server.url}/api/items/1?x=1` })
    expect(grant.headers.Authorization).toBe(`DPoP ${token}`)
    const { payload } = await jwtVerify(grant.headers.DPoP!, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: ['ES256'] })
    expect(payload).toMatchObject({ htm: 'DELETE', htu: `${server.url}/api/items/1`, ath: sha256(token) })
  })
})

describe('one key per origin, in IndexedDB', () => {
  it('two engines ("tabs") share one key, and a reload (a new handle) keeps it', async () => {
    const profile = new IDBFactory()
    const a = await signedIn(profile)
    const b = tab(profile)
    expect(await b.dpop.thumbprint()).toBe(await a.dpop.thumbprint())
    const reloaded = createDpop({ indexedDB: profile })
    expect(await reloaded.thumbprint()).toBe(await a.dpop.thumbprint())
    // Another profile (another browser) has its own key.
    expect(await createDpop({ indexedDB: new IDBFactory() }).thumbprint()).not.toBe(await a.dpop.thumbprint())
    expect(await storedKeys(profile)).toHaveLength(1)
  })

  it('8 tabs making the first key at the same moment end with ONE key (added only if absent, in one transaction)', async () => {
    const profile = new IDBFactory()
    let made = 0
    const counting = {
      getRandomValues: (a: Uint8Array) => crypto.getRandomValues(a),
      randomUUID: () => crypto.randomUUID(),
      subtle: Object.assign(Object.create(crypto.subtle) as SubtleCrypto, {
        generateKey: ((...args: Parameters<SubtleCrypto['generateKey']>) => (made++, crypto.subtle.generateKey(...args))) as SubtleCrypto['generateKey'],
        exportKey: crypto.subtle.exportKey.bind(crypto.subtle),
        sign: crypto.subtle.sign.bind(crypto.subtle),
        digest: crypto.subtle.digest.bind(crypto.subtle),
      }),
    } as unknown as Crypto
    const tabs = Array.from({ length: 8 }, () => createDpop({ indexedDB: profile, crypto: counting }))
    const prints = await Promise.all(tabs.map((d) => d.thumbprint()))
    expect(made).toBeGreaterThan(1) // the race happened: several tabs made a key
    expect(new Set(prints).size).toBe(1)
    expect(await storedKeys(profile)).toHaveLength(1)
  })

  it('logout makes a new key in every tab; the logout call itself still proves with the old one', async () => {
    const profile = new IDBFactory()
    const bus = new FakeBus()
    const locks = new FakeLocks()
    const a = tab(profile, { channel: bus.channel(), lock: locks })
    const b = tab(profile, { channel: bus.channel(), lock: locks })
    await Promise.all([a.auth.ready(), b.auth.ready()])
    await a.auth.login({ email: 'ada@example.test', password: 'pw' })
    await expect.poll(() => b.auth.getSnapshot().status).toBe('authenticated') // b joined over the channel
    expect((await b.auth.fetch(`${server.url}/api/data`)).status).toBe(200)
    const old = await a.dpop.thumbprint()
    expect(server.keys('/api/')).toEqual([old])

    await a.auth.logout()
    expect(server.stats.logout).toEqual({ calls: 1, jkts: [old] })
    expect(a.events).not.toContain('logout-error')
    await expect.poll(() => b.auth.getSnapshot().status).toBe('unauthenticated')
    // The next session, started in the other tab, has a new key; both tabs use it.
    await b.auth.login({ email: 'ada@example.test', password: 'pw' })
    await expect.poll(() => a.auth.getSnapshot().status).toBe('authenticated')
    server.reset()
    for (const t of [a, b]) expect((await t.auth.fetch(`${server.url}/api/data`)).status).toBe(200)
    const [fresh] = server.keys('/api/')
    expect(server.keys('/api/')).toHaveLength(1)
    expect(fresh).not.toBe(old)
    expect(await a.dpop.thumbprint()).toBe(fresh)
    expect(await storedKeys(profile)).toHaveLength(1)
  })
})

describe('server nonces', () => {
  it('at the token endpoint: login and refresh are each answered by one retry with the nonce, and the session lives on', async () => {
    server.demand.token = true
    const { auth, events } = await signedIn()
    expect(server.stats.challenges.token).toBe(1)
    expect(server.stats.login).toBe(1)
    await auth.refresh() // the nonce of the login's answer is remembered: no challenge
    expect(server.stats.challenges.token).toBe(1)
    server.rotateNonce()
    await auth.refresh()
    expect(server.stats.challenges.token).toBe(2)
    expect(server.stats.refresh).toMatchObject({ calls: 2, succeeded: 2 })
    expect(auth.getSnapshot().status).toBe('authenticated')
    expect(events.filter((e) => e === 'refresh')).toHaveLength(2)
    expect(events).not.toContain('expired')
  })

  it.each(TRANSPORTS)('at a resource server, %s: exactly one retry with the nonce, no refresh, no replay spent', async (name) => {
    const { auth, events } = await signedIn()
    const send = senders(auth)[name]
    server.demand.resource = true
    server.reset()
    const first = await send(`${server.url}/api/echo`, { n: 1 })
    expect(first.status).toBe(200)
    expect(server.stats.challenges.resource).toBe(1)
    expect(server.stats.api).toEqual({ calls: 2, ok: 1, unauthorized: 0 })
    // The nonce is kept for the origin: the next request carries it at once.
    expect((await send(`${server.url}/api/echo`, { n: 2 })).status).toBe(200)
    expect(server.stats.challenges.resource).toBe(1)
    expect(server.stats.refresh.calls).toBe(0)
    expect(events).toEqual([])

    // A nonce retry does not spend the request's one replay: a stale nonce and a dead token, one request.
    server.rotateNonce()
    server.expireAll()
    server.reset()
    const second = await send(`${server.url}/api/echo`, { n: 3 })
    expect(second.status).toBe(200)
    expect(server.stats.challenges.resource).toBe(1)
    expect(server.stats.refresh).toMatchObject({ calls: 1, succeeded: 1 })
    expect(server.stats.api).toEqual({ calls: 3, ok: 1, unauthorized: 1 })
    expect(events).toEqual(['unauthorized', 'refresh'])
  })

  it.each(TRANSPORTS)('%s: a server that keeps asking (a new nonce each time) gets one retry, then its answer as is: no refresh', async (name) => {
    const { auth, events } = await signedIn()
    server.demand.resource = 'always'
    server.reset()
    const answer = await senders(auth)[name](`${server.url}/api/echo`, { n: 1 })
    expect(answer.status).toBe(401)
    expect(server.stats.challenges.resource).toBe(2)
    expect(server.stats.api.calls).toBe(2)
    expect(server.stats.refresh.calls).toBe(0)
    expect(events).toEqual([])
  })
})

describe('every transport', () => {
  it.each(TRANSPORTS)('%s sends Authorization: DPoP with a proof, and replays a real 401 once after one refresh, with a fresh proof', async (name) => {
    const { auth, dpop, events } = await signedIn()
    const send = senders(auth)[name]
    const before = await auth.getAccessToken()
    expect((await send(`${server.url}/api/echo`, { n: 1 })).status).toBe(200)
    server.expireAll() // the token dies on the server before its time
    const answer = await send(`${server.url}/api/echo`, { n: 2 })
    expect(answer.status).toBe(200)
    const after = await auth.getAccessToken()
    expect(after).not.toBe(before)
    const api = server.stats.proofs.filter((p) => p.path === '/api/echo')
    expect(api.map((p) => p.token)).toEqual([before, before, after]) // sent, 401, replayed once
    expect(api.map((p) => p.ath)).toEqual([sha256(before), sha256(before), sha256(after)])
    expect(new Set(api.map((p) => p.jti)).size).toBe(3) // a fresh proof each time
    expect(api.every((p) => p.method === 'POST' && p.htu === `${server.url}/api/echo`)).toBe(true)
    expect(server.keys()).toEqual([await dpop.thumbprint()])
    expect(server.stats.refresh).toMatchObject({ calls: 1, succeeded: 1, wrongKey: 0 })
    expect(server.stats.bearer).toBe(0)
    expect(events).toEqual(['unauthorized', 'refresh'])
  })

  it('urql: a query sent with GET (urql\'s default) is proven for GET; one too long for a URL goes, and is proven, as POST', async () => {
    const { auth } = await signedIn()
    const asGraphql: typeof fetch = async (input, init) => {
      const res = await fetch(input, init)
      return res.ok ? Response.json({ data: { echo: await res.json() } }) : res
    }
    const client = new Client({ url: `${server.url}/api/graphql`, fetch: asGraphql, requestPolicy: 'network-only', exchanges: [authExchange(auth), fetchExchange] })
    const Echo = gql`
      query Echo($text: String) {
        echo(text: $text)
      }
    `
    const short = await client.query(Echo, { text: 'hi' }).toPromise()
    const long = await client.query(Echo, { text: 'x'.repeat(3_000) }).toPromise()
    expect([short.error, long.error]).toEqual([undefined, undefined])
    expect(server.stats.proofs.filter((p) => p.path === '/api/graphql').map((p) => p.method)).toEqual(['GET', 'POST'])
  })
})

describe('stolen tokens are useless', () => {
  it('an access token copied out of the page: 401 as Bearer and with a proof from another key; a refresh token copied out: 400, no tokens; the page itself goes on', async () => {
    const storage = new FakeStorage()
    const { auth } = tab(new IDBFactory(), { storage })
    await auth.login({ email: 'ada@example.test', password: 'pw' })
    await flush()
    const token = await auth.getAccessToken()
    const { refreshToken } = decodeSession(storage.map.get('tessera')!).tokens
    expect((await fetch(`${server.url}/api/data`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(401)
    const thief = createDpop({ indexedDB: new IDBFactory() })
    expect((await thief.fetch()(`${server.url}/api/data`, { headers: { authorization: `DPoP ${token}` } })).status).toBe(401)
    const stolen = await thief.fetch()(`${server.url}/auth/refresh`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ refresh_token: refreshToken }) })
    expect(stolen.status).toBe(400)
    expect(await stolen.json()).toEqual({ error: 'invalid_grant', error_description: 'bound to another key' })
    expect(server.stats.refresh).toMatchObject({ wrongKey: 1, succeeded: 0 })
    // From the page: the same requests succeed.
    expect((await auth.fetch(`${server.url}/api/data`)).status).toBe(200)
    await auth.refresh()
    expect(server.stats.refresh).toMatchObject({ wrongKey: 1, succeeded: 1 })
  })
})

describe('DPOP_UNAVAILABLE: never a silent Bearer', () => {
  it('without IndexedDB, or without WebCrypto, making the handle throws a typed error', () => {
    expect(globalThis.indexedDB).toBeUndefined() // Node, like an old webview
    for (const make of [() => createDpop(), () => createDpop({ indexedDB: new IDBFactory(), crypto: {} as Crypto })]) {
      let error: unknown
      try {
        make()
      } catch (e) {
        error = e
      }
      expect(isTesseraError(error, 'DPOP_UNAVAILABLE')).toBe(true)
    }
  })

  it('an IndexedDB that fails when used: the login rejects with DPOP_UNAVAILABLE and nothing reaches the server', async () => {
    const broken = {
      open() {
        const req = {} as IDBOpenDBRequest & { error: DOMException }
        queueMicrotask(() => {
          Object.defineProperty(req, 'error', { value: new DOMException('The operation failed for reasons unrelated to the database itself', 'UnknownError') })
          req.onerror?.(new Event('error'))
        })
        return req
      },
    } as unknown as IDBFactory
    const { auth } = tab(new IDBFactory(), { dpop: createDpop({ indexedDB: broken }) })
    await auth.ready()
    await expect(auth.login({ email: 'ada@example.test', password: 'pw' })).rejects.toMatchObject({ code: 'DPOP_UNAVAILABLE' })
    expect(server.stats.login).toBe(0)
    expect(server.stats.bearer).toBe(0)
  })
})
