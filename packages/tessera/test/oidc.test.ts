import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { createAuth, isTesseraError, type Auth, type AuthStatus, type TesseraError } from '../src/index.js'
import { oidcAuthority, type OidcAuthorityOptions, type OidcLoginRequest, type OidcUser } from '../src/authorities/oidc.js'
import { decodeSession } from '../src/core/stored.js'
import { createDpop, type Dpop } from '../src/proof/dpop.js'
import { IDBFactory } from 'fake-indexeddb'
import { FakeClock, FakeStorage, flush } from './fakes.js'
import { APP, REDIRECT, startOidcProvider, testAuthorityOptions, walkProviderPages, type OidcTestProvider } from './oidc-kit.js'
import { notATokenResponse, refusedRefresh, refusedRevocation, type RawAnswer } from './token-server-corpus.js'

/**
 * Integration: the real engine with `oidcAuthority` against a real OpenID provider (oidc-provider)
 * on 127.0.0.1, its login and consent pages driven with plain fetch and a cookie jar.
 */
let op: OidcTestProvider
let issuer: string
beforeAll(async () => {
  op = await startOidcProvider()
  issuer = op.issuer
})
afterAll(() => op.close())
const wire = { set: (path: string, answer: RawAnswer) => op.wire.set(path, answer) }
const signIn = (authorizationUrl: string, options: { cancel?: boolean } = {}) => walkProviderPages(authorizationUrl, APP, options)

/** Calls to the provider, for assertions: which endpoints were hit, and what the token endpoint answered. */
interface Calls {
  paths: string[]
  /** What the token endpoint answered: its JSON, or `{ text }` when it was not JSON. */
  tokens: Array<{ grant: string | null; sent: string | null; body: Record<string, unknown> }>
  failNext: number | null
}

const engines: Auth<OidcUser, OidcLoginRequest>[] = []
afterEach(() => {
  op.wire.clear()
  op.rewriteToken = null
  for (const a of engines.splice(0)) a.dispose()
  vi.unstubAllGlobals()
})

/** One page load of the app: an engine over an OIDC authority, with the browser's pieces injected. */
function page(url = `${APP}/`, shared: { tx?: FakeStorage; session?: FakeStorage; dpop?: Dpop } = {}, extra: Partial<OidcAuthorityOptions> = {}) {
  const tx = shared.tx ?? new FakeStorage()
  const session = shared.session ?? new FakeStorage()
  const navigations: string[] = []
  const calls: Calls = { paths: [], tokens: [], failNext: null }
  const state = { url }
  const recording: typeof fetch = async (input, init) => {
    const target = new URL(String(input))
    calls.paths.push(target.pathname)
    if (calls.failNext !== null && target.pathname === '/token') {
      const status = calls.failNext
      calls.failNext = null
      return new Response('upstream down', { status, headers: { 'retry-after': '2' } })
    }
    const res = await fetch(input, init)
    if (target.pathname === '/token') {
      const sent = new URLSearchParams(String(init?.body))
      const text = await res.clone().text()
      calls.tokens.push({ grant: sent.get('grant_type'), sent: sent.get('refresh_token'), body: /^\s*\{/.test(text) ? JSON.parse(text) : { text } })
    }
    return res
  }
  const authority = oidcAuthority({ ...testAuthorityOptions(issuer, { tx, state, navigations }), fetch: recording, dpop: shared.dpop, ...extra })
  const clock = new FakeClock()
  const dpop = shared.dpop && { proof: shared.dpop, allowedOrigins: [issuer], fetch: recording }
  const auth = createAuth({ authority, storage: session, clock, retry: { attempts: 1 }, ...dpop })
  engines.push(auth)
  const statuses: AuthStatus[] = [auth.getSnapshot().status]
  auth.subscribe(() => {
    const s = auth.getSnapshot().status
    if (s !== statuses.at(-1)) statuses.push(s)
  })
  const stored = () => {
    const raw = session.map.get('tessera')
    return raw ? decodeSession<OidcUser>(raw).tokens : null
  }
  return { auth, authority, tx, session, navigations, calls, statuses, state, stored, clock }
}

/** Starts a login in one page load and walks the provider; resolves the callback URL and the login's storage. */
async function startLogin(options: { cancel?: boolean } = {}) {
  const before = page()
  await before.auth.ready()
  before.auth.login().catch(() => {}) // never settles by design: the page is leaving
  await vi.waitFor(() => expect(before.navigations).toHaveLength(1))
  const authorizationUrl = new URL(before.navigations[0]!)
  return { before, authorizationUrl, callback: await signIn(authorizationUrl.href, options) }
}

/** A full login: redirect, provider pages, and the page load that handles the callback (with `dpop`, a DPoP-bound session). */
async function loggedIn(dpop?: Dpop) {
  const { before, callback } = await startLogin()
  const after = page(callback, { tx: before.tx, dpop })
  await after.auth.ready()
  expect(after.auth.getSnapshot().status).toBe('authenticated')
  return after
}

/** The engine ended up with no session, for `reason`, and stored nothing. */
function expectNoSession(p: ReturnType<typeof page>, field: string) {
  const snap = p.auth.getSnapshot()
  expect(snap.status).toBe('unauthenticated')
  expect(isTesseraError(snap.error, 'LOGIN_FAILED')).toBe(true)
  expect(snap.error!.field).toBe(field)
  expect(snap.user).toBeNull()
  expect(p.statuses).not.toContain('authenticated')
  expect(p.stored()).toBeNull()
  expect(p.tx.map.size).toBe(0) // the login in progress is consumed either way
  expect(new URL(p.state.url).search).toBe('') // and the callback is gone from the URL
}

/** I6, P11: after failures short of a refusal the session and its refresh token are kept; once the provider behaves, that token still refreshes. */
async function expectKeptThenRefreshed(p: ReturnType<typeof page>, before: { refreshToken?: string }) {
  expect(p.auth.getSnapshot().status).toBe('authenticated')
  expect(p.stored()!.refreshToken).toBe(before.refreshToken)
  await p.auth.refresh()
  expect(p.stored()!.refreshToken).not.toBe(before.refreshToken)
}

/** I5: an error may name what went wrong, never carry the code or a token. */
function expectNoSecrets(error: TesseraError | null, ...secrets: string[]) {
  const text = JSON.stringify({ message: error?.message, cause: error?.cause })
  for (const s of secrets) expect(text).not.toContain(s)
}

describe('oidcAuthority against a real OpenID provider', () => {
  it('login redirects with PKCE S256, state and nonce, and stays authenticating while the page leaves', async () => {
    const { before, authorizationUrl: u } = await startLogin()
    expect(u.origin + u.pathname).toBe(`${issuer}/auth`)
    const p = Object.fromEntries(u.searchParams)
    expect(p).toMatchObject({ client_id: 'web', redirect_uri: REDIRECT, response_type: 'code', scope: 'openid profile offline_access', code_challenge_method: 'S256' })
    expect(p.code_challenge).toMatch(/^[\w-]{43}$/)
    const tx = JSON.parse(before.tx.map.get('tessera.oidc')!)
    expect(tx.state).toBe(p.state)
    expect(tx.nonce).toBe(p.nonce)
    expect(tx.verifier).not.toBe(p.code_challenge) // the verifier never leaves the browser
    expect(before.auth.getSnapshot().status).toBe('authenticating')
    expect(before.statuses).toEqual(['initializing', 'unauthenticated', 'authenticating'])
  })

  it('login parameters are passed on, but never replace the protocol ones (state, nonce, PKCE, redirect_uri)', async () => {
    const p = page()
    await p.auth.ready()
    p.auth.login({ params: { prompt: 'login', login_hint: 'ada', state: 'chosen', redirect_uri: 'https://evil.example/' } }).catch(() => {})
    await vi.waitFor(() => expect(p.navigations).toHaveLength(1))
    const q = new URL(p.navigations[0]!).searchParams
    expect([q.get('prompt'), q.get('login_hint'), q.get('redirect_uri')]).toEqual(['login', 'ada', REDIRECT])
    expect(q.get('state')).toBe(JSON.parse(p.tx.map.get('tessera.oidc')!).state)
    expect(q.get('state')).not.toBe('chosen')
  })

  it('full code flow: the callback page load goes initializing → authenticated with the user, never unauthenticated', async () => {
    const { before, callback } = await startLogin()
    expect(new URL(callback).searchParams.get('code')).toBeTruthy()
    const after = page(callback, { tx: before.tx })
    // The engine takes the callback at once, before storage and other tabs (its own login wins).
    expect(after.auth.getSnapshot().status).toBe('initializing')
    await after.auth.ready()
    expect(after.statuses).toEqual(['initializing', 'authenticated'])
    expect(after.auth.getSnapshot().user).toMatchObject({ sub: 'ada', name: 'Ada Lovelace' })
    expect(after.calls.paths).toEqual(['/.well-known/openid-configuration', '/token', '/me'])
    const tokens = after.stored()!
    expect(tokens.accessToken).toBeTruthy()
    expect(tokens.refreshToken).toBeTruthy()
    expect(tokens.idToken!.split('.')).toHaveLength(3)
    expect(tokens.expiresAt! - tokens.receivedAt).toBe(60_000)
    expect(after.state.url).toBe(`${APP}/callback`) // code and state dropped from the address bar
    expect(after.tx.map.size).toBe(0)
    expect(await after.auth.getAccessToken()).toBe(tokens.accessToken)
    expect(after.authority.hasCallback()).toBe(false) // the URL was cleaned
  })

  it('without a userinfo endpoint the user is the ID token\'s validated claims', async () => {
    const { before, callback } = await startLogin()
    const noUserinfo: typeof fetch = async (input, init) => {
      const res = await fetch(input, init)
      if (!String(input).endsWith('/.well-known/openid-configuration')) return res
      const { userinfo_endpoint: _, ...metadata } = await res.json()
      return Response.json(metadata)
    }
    const p = page(callback, { tx: before.tx }, { fetch: noUserinfo })
    await p.auth.ready()
    expect(p.auth.getSnapshot()).toMatchObject({ status: 'authenticated', user: { sub: 'ada', iss: issuer, aud: 'web' } })
  })

  it('refresh rotates the refresh token, and the provider rejects the old one afterwards', async () => {
    const p = await loggedIn()
    const first = p.stored()!
    await p.auth.refresh()
    const second = p.stored()!
    expect(p.calls.tokens.at(-1)).toMatchObject({ grant: 'refresh_token', sent: first.refreshToken })
    expect(second.refreshToken).toBeTruthy()
    expect(second.refreshToken).not.toBe(first.refreshToken)
    expect(second.accessToken).not.toBe(first.accessToken)
    expect(p.auth.getSnapshot()).toMatchObject({ status: 'authenticated', generation: 2 })
    const reuse = await p.authority.refresh(first.refreshToken, new AbortController().signal).catch((e: TesseraError) => e)
    expect(isTesseraError(reuse, 'INVALID_GRANT')).toBe(true)
    expect(reuse).toMatchObject({ status: 400, field: 'refresh_token', cause: { error: 'invalid_grant' } })
    expect((reuse as TesseraError).message).toMatch(/invalid_grant/)
  })

  it('a reused refresh token revokes the grant at the provider: the next refresh ends the session as expired (SESSION_EXPIRED)', async () => {
    const p = await loggedIn()
    const first = p.stored()!
    await p.auth.refresh()
    await p.authority.refresh(first.refreshToken, new AbortController().signal).catch(() => {}) // a thief replays the old one
    const expired = vi.fn()
    p.auth.on('expired', expired)
    const error = await p.auth.refresh().catch((e: TesseraError) => e)
    expect(isTesseraError(error, 'SESSION_EXPIRED')).toBe(true)
    expect(p.auth.getSnapshot()).toMatchObject({ status: 'expired', user: null })
    expect(p.auth.getSnapshot().error!.code).toBe('SESSION_EXPIRED')
    expect(expired).toHaveBeenCalledTimes(1)
    await flush()
    expect(p.stored()).toBeNull()
    await expect(p.auth.getAccessToken()).rejects.toMatchObject({ code: 'SESSION_EXPIRED' })
  })

  it('I6, P11: a provider 503 or 429 on refresh is NETWORK_ERROR with retryAfter and keeps the session', async () => {
    const p = await loggedIn()
    const before = p.stored()!
    for (const status of [503, 429]) {
      p.calls.failNext = status
      const error = await p.auth.refresh().catch((e: TesseraError) => e)
      expect(error).toMatchObject({ code: 'NETWORK_ERROR', status, retryAfter: 2000 })
    }
    await expectKeptThenRefreshed(p, before)
  })

  it('logout revokes the refresh token and navigates to end_session with id_token_hint and post_logout_redirect_uri', async () => {
    const p = await loggedIn()
    const tokens = p.stored()!
    await p.auth.logout()
    expect(p.auth.getSnapshot().status).toBe('unauthenticated')
    expect(p.calls.paths).toContain('/token/revocation')
    expect(p.navigations).toHaveLength(1)
    const end = new URL(p.navigations[0]!)
    expect(end.origin + end.pathname).toBe(`${issuer}/session/end`)
    expect(Object.fromEntries(end.searchParams)).toEqual({ client_id: 'web', id_token_hint: tokens.idToken, post_logout_redirect_uri: `${APP}/` })
    // The provider accepts the hint: its confirmation page, not an error.
    const res = await fetch(end, { redirect: 'manual' })
    expect(res.status).toBe(200)
    expect(await res.text()).not.toMatch(/error/i)
    const revoked = await p.authority.refresh(tokens.refreshToken, new AbortController().signal).catch((e: TesseraError) => e)
    expect(isTesseraError(revoked, 'INVALID_GRANT')).toBe(true)
  })

  it('tampered state: LOGIN_FAILED (field state), no code exchange, unauthenticated with nothing stored', async () => {
    const { before, callback } = await startLogin()
    const url = new URL(callback)
    const code = url.searchParams.get('code')!
    url.searchParams.set('state', 'forged')
    const p = page(url.href, { tx: before.tx })
    await p.auth.ready()
    expectNoSession(p, 'state')
    expect(p.statuses).toEqual(['initializing', 'unauthenticated'])
    expect(p.calls.paths).not.toContain('/token')
    expectNoSecrets(p.auth.getSnapshot().error, code)
  })

  it('mismatched nonce: LOGIN_FAILED (field nonce), unauthenticated with nothing stored and no token in the error', async () => {
    const { before, callback } = await startLogin()
    const tx = JSON.parse(before.tx.map.get('tessera.oidc')!)
    before.tx.map.set('tessera.oidc', JSON.stringify({ ...tx, nonce: 'not-the-nonce-sent' }))
    const p = page(callback, { tx: before.tx })
    await p.auth.ready()
    expectNoSession(p, 'nonce')
    const issued = p.calls.tokens[0]!.body
    expect(issued.access_token).toBeTruthy() // the provider did answer: the ID token was refused here
    expectNoSecrets(p.auth.getSnapshot().error, String(issued.access_token), String(issued.id_token), String(issued.refresh_token))
  })

  it('replayed callback: the second page load with the same URL fails (no login waiting), the first session is untouched', async () => {
    const { before, callback } = await startLogin()
    const first = page(callback, { tx: before.tx })
    await first.auth.ready()
    expect(first.auth.getSnapshot().status).toBe('authenticated')
    const replay = page(callback, { tx: before.tx })
    await replay.auth.ready()
    expectNoSession(replay, 'state')
    expect(replay.calls.paths).not.toContain('/token')
    await first.auth.refresh()
    expect(first.auth.getSnapshot().status).toBe('authenticated')
  })

  it('replayed code with a copied login state: the provider refuses it (LOGIN_FAILED, field code, 400) and revokes what the code gave', async () => {
    const { before, callback } = await startLogin()
    const copy = before.tx.map.get('tessera.oidc')!
    const first = page(callback, { tx: before.tx })
    await first.auth.ready()
    before.tx.map.set('tessera.oidc', copy) // an attacker who copied the browser's storage
    const replay = page(callback, { tx: before.tx })
    await replay.auth.ready()
    expectNoSession(replay, 'code')
    expect(replay.auth.getSnapshot().error).toMatchObject({ status: 400, cause: { error: 'invalid_grant' } })
    expectNoSecrets(replay.auth.getSnapshot().error, new URL(callback).searchParams.get('code')!)
    // oidc-provider revokes the tokens issued for a code that is used twice.
    await expect(first.auth.refresh()).rejects.toMatchObject({ code: 'SESSION_EXPIRED' })
  })

  it('provider error=access_denied: LOGIN_FAILED (field error) with the provider error in cause, unauthenticated', async () => {
    const { before, callback } = await startLogin({ cancel: true })
    expect(new URL(callback).searchParams.get('error')).toBe('access_denied')
    const p = page(callback, { tx: before.tx })
    await p.auth.ready()
    expectNoSession(p, 'error')
    expect(p.auth.getSnapshot().error).toMatchObject({ message: expect.stringContaining('access_denied'), cause: { error: 'access_denied' } })
    expect(p.statuses).toEqual(['initializing', 'unauthenticated'])
  })

  it('a page that is not the callback restores nothing and calls nobody', async () => {
    const p = page(`${APP}/orders?code=promo42`)
    await p.auth.ready()
    expect(p.auth.getSnapshot()).toMatchObject({ status: 'unauthenticated', error: null })
    expect(p.calls.paths).toEqual([])
    expect(p.state.url).toBe(`${APP}/orders?code=promo42`)
    expect(p.authority.hasCallback()).toBe(false)
  })

  it('login that cannot start (provider unreachable) fails typed, navigates nowhere; a retry discovers again', async () => {
    const p = page(`${APP}/`, {}, { issuer: 'http://127.0.0.1:9' })
    await p.auth.ready()
    await expect(p.auth.login()).rejects.toMatchObject({ code: 'NETWORK_ERROR' })
    expect(p.auth.getSnapshot().status).toBe('unauthenticated')
    expect(p.navigations).toEqual([])
    await expect(p.auth.login()).rejects.toMatchObject({ code: 'NETWORK_ERROR' })
    expect(p.calls.paths.filter((x) => x === '/.well-known/openid-configuration')).toHaveLength(2)
  })

  it('setup errors are typed: http issuer without allowInsecureRequests (TypeError), issuer unlike its metadata (INVALID_TOKEN_RESPONSE)', async () => {
    expect(() => oidcAuthority({ issuer, clientId: 'web', redirectUri: REDIRECT })).toThrow(TypeError)
    // A provider reached under another name: its discovery document names the real issuer.
    const alias = 'http://id.example.test'
    const p = page(`${APP}/`, {}, { issuer: alias, fetch: (u, init) => fetch(String(u).replace(alias, issuer), init) })
    await p.auth.ready()
    await expect(p.auth.login()).rejects.toMatchObject({ code: 'INVALID_TOKEN_RESPONSE', field: 'issuer' })
    expect(p.auth.getSnapshot().status).toBe('unauthenticated')
    expect(p.navigations).toEqual([])
  })

  it('Back from the provider (page restored from bfcache): the pending login ends ABORTED, unauthenticated', async () => {
    const win = new EventTarget()
    vi.stubGlobal('addEventListener', win.addEventListener.bind(win))
    vi.stubGlobal('removeEventListener', win.removeEventListener.bind(win))
    const p = page()
    await p.auth.ready()
    const login = p.auth.login()
    await vi.waitFor(() => expect(p.navigations).toHaveLength(1))
    win.dispatchEvent(Object.assign(new Event('pageshow'), { persisted: false })) // the first show: nothing
    await flush()
    expect(p.auth.getSnapshot().status).toBe('authenticating')
    win.dispatchEvent(Object.assign(new Event('pageshow'), { persisted: true }))
    await expect(login).rejects.toMatchObject({ code: 'ABORTED' })
    expect(p.auth.getSnapshot().status).toBe('unauthenticated')
  })
})

describe('Issue 13 finding 4: a provider that bends the spec, on the wire, through the engine', () => {
  /** Token endpoint calls so far (refreshes, after the login). */
  const tokenCalls = (p: ReturnType<typeof page>) => p.calls.paths.filter((x) => x === '/token').length

  it.each(Object.entries(refusedRefresh))('a refresh answered %s ends the session: SESSION_EXPIRED, expired, nothing stored, never retried', async (_, answer) => {
    const p = await loggedIn()
    wire.set('/token', answer)
    const expired = vi.fn()
    p.auth.on('expired', expired)
    const error = await p.auth.refresh().catch((e: TesseraError) => e)
    expect(error).toMatchObject({ code: 'SESSION_EXPIRED', status: answer.status })
    expect((error as TesseraError).cause).toMatchObject({ code: 'INVALID_GRANT', status: answer.status, field: 'refresh_token' })
    expect(p.auth.getSnapshot()).toMatchObject({ status: 'expired', user: null, error: { code: 'SESSION_EXPIRED' } })
    expect(expired).toHaveBeenCalledTimes(1)
    await flush()
    expect(p.stored()).toBeNull()
    // Not a dead refresh token presented every 30 s for ever: an hour later, still no new attempt.
    const calls = tokenCalls(p)
    await p.clock.advance(3_600_000)
    expect(tokenCalls(p)).toBe(calls)
    await expect(p.auth.getAccessToken()).rejects.toMatchObject({ code: 'SESSION_EXPIRED' })
  })

  it('the provider\'s own words reach the error (invalid_code on 403), never a token', async () => {
    const p = await loggedIn()
    const tokens = p.stored()!
    wire.set('/token', refusedRefresh['invalid_code (JSON) on 403']!)
    const error = await p.auth.refresh().catch((e: TesseraError) => e)
    expect((error as TesseraError).cause).toMatchObject({ message: expect.stringContaining('invalid_code: code expired'), cause: { error: 'invalid_code' } })
    expectNoSecrets(error as TesseraError, tokens.refreshToken!, tokens.accessToken)
  })

  it.each(Object.entries(notATokenResponse))('a refresh answered %s is INVALID_TOKEN_RESPONSE: the session and its refresh token are kept', async (_, answer) => {
    const p = await loggedIn()
    const before = p.stored()!
    wire.set('/token', answer)
    await expect(p.auth.refresh()).rejects.toMatchObject({ code: 'INVALID_TOKEN_RESPONSE', status: 200 })
    await expectKeptThenRefreshed(p, before)
  })

  it('lowercase token_type "bearer" and extra fields are a valid token response', async () => {
    const p = await loggedIn()
    const before = p.stored()!
    op.rewriteToken = (body) => ({ ...body, token_type: 'bearer', not_before_policy: 0, session_state: 'x-1', 'x-custom': { nested: true } })
    await p.auth.refresh()
    expect(op.rewriteToken).toBeNull() // the answer really was rewritten on the wire
    const after = p.stored()!
    expect(p.calls.tokens.at(-1)!.body).toMatchObject({ token_type: 'bearer', session_state: 'x-1' })
    expect(p.auth.getSnapshot()).toMatchObject({ status: 'authenticated', generation: 2 })
    expect(after.refreshToken).not.toBe(before.refreshToken)
    expect(await p.auth.getAccessToken()).toBe(after.accessToken)
  })

  it('a revocation answered 401 with an empty body: logout resolves, the local session is over, the refusal is a logout-error event', async () => {
    const p = await loggedIn()
    const tokens = p.stored()!
    wire.set('/token/revocation', refusedRevocation)
    const failures: TesseraError[] = []
    p.auth.on('logout-error', (n) => void failures.push(n.error!))
    await expect(p.auth.logout()).resolves.toBeUndefined()
    expect(p.auth.getSnapshot()).toMatchObject({ status: 'unauthenticated', user: null })
    await flush()
    expect(p.stored()).toBeNull()
    expect(failures).toHaveLength(1)
    expect(failures[0]).toMatchObject({ code: 'INVALID_GRANT', status: 401, field: 'token' })
    expectNoSecrets(failures[0]!, tokens.refreshToken!, tokens.accessToken)
    expect(p.navigations).toHaveLength(1) // the provider's session is still ended
  })
})

describe('oidcAuthority({ dpop }) against oidc-provider with DPoP on (issue 16)', () => {
  afterEach(() => void (op.requireDpopNonce = false))
  const proofsTo = (path: string, p: ReturnType<typeof page>) => p.calls.paths.filter((x) => x === path).length

  it('with nonces required: the code exchange, a refresh, userinfo and a resource request each get one retry with the nonce; the tokens are bound to the page\'s key', async () => {
    op.requireDpopNonce = true
    const profile = new IDBFactory()
    const p = await loggedIn(createDpop({ indexedDB: profile }))
    expect(p.auth.getSnapshot().user).toMatchObject({ sub: 'ada', name: 'Ada Lovelace' })
    // The exchange is asked for the nonce once; userinfo then has it (oauth4webapi keeps it per origin).
    expect(p.calls.tokens.map((t) => t.body.error ?? t.body.token_type)).toEqual(['use_dpop_nonce', 'DPoP'])
    expect(p.calls.paths).toEqual(['/.well-known/openid-configuration', '/token', '/token', '/me'])

    // A reload: the same key from IndexedDB, no nonce yet. The refresh is asked once, and stays a refresh.
    const reloaded = page(`${APP}/`, { session: p.session, dpop: createDpop({ indexedDB: profile }) })
    await reloaded.auth.ready()
    await reloaded.auth.refresh()
    expect(reloaded.calls.tokens.map((t) => t.body.error ?? t.body.token_type)).toEqual(['use_dpop_nonce', 'DPoP'])
    expect(reloaded.auth.getSnapshot()).toMatchObject({ status: 'authenticated', refreshing: false })
    // Another reload whose first proof goes to userinfo: asked once too.
    const third = page(`${APP}/`, { session: p.session, dpop: createDpop({ indexedDB: profile }) })
    await third.auth.ready()
    await third.auth.reloadUser()
    expect(third.calls.paths).toEqual(['/.well-known/openid-configuration', '/me', '/me'])
    // A resource request through the engine (userinfo is a DPoP resource), proven by tessera/dpop: one retry, no refresh.
    const refreshes: unknown[] = []
    third.auth.on('refresh', (n) => void refreshes.push(n))
    third.calls.paths.length = 0
    expect((await third.auth.fetch(`${issuer}/me`)).status).toBe(200)
    expect(third.calls.paths).toEqual(['/me', '/me'])
    expect(refreshes).toEqual([])

    // The token copied out of the page is useless: as a Bearer token, or with a proof from another key.
    const token = await third.auth.getAccessToken()
    expect((await fetch(`${issuer}/me`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(401)
    const thief = createDpop({ indexedDB: new IDBFactory() }).fetch()
    const stolen = await thief(`${issuer}/me`, { headers: { authorization: `DPoP ${token}` } })
    expect(stolen.status).toBe(401)
    expect(stolen.headers.get('www-authenticate')).toMatch(/^DPoP /)
  })

  it('without nonces: one request each, and a refresh token used with another key is refused', async () => {
    const dpop = createDpop({ indexedDB: new IDBFactory() })
    const p = await loggedIn(dpop)
    expect(p.calls.tokens.map((t) => t.body.token_type)).toEqual(['DPoP'])
    expect(p.calls.paths).toEqual(['/.well-known/openid-configuration', '/token', '/me'])
    // The same refresh token, from an authority holding another key: the provider refuses it.
    const thief = page(`${APP}/`, { dpop: createDpop({ indexedDB: new IDBFactory() }) })
    await expect(thief.authority.refresh(p.stored()!.refreshToken, new AbortController().signal)).rejects.toMatchObject({ code: 'INVALID_GRANT', status: 400 })
    await p.auth.refresh() // still good from the page itself
    expect(p.auth.getSnapshot().status).toBe('authenticated')
  })
})
