import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import { createAuth, type AuthOptions, type TesseraError } from '../src/index.js'
import { handleSilentCallback, oidcAuthority, type OidcLoginRequest, type OidcUser, type SilentFrame, type SilentFrameRequest } from '../src/authorities/oidc.js'
import { decodeSession } from '../src/core/stored.js'
import { decodeJwt } from '../src/core/tokens.js'
import { FakeBus, FakeClock, FakeEnvironment, FakeLocks, FakeStorage, flush } from './fakes.js'
import { APP, REDIRECT, SILENT, endProviderSession, providerFrame, startOidcProvider, testAuthorityOptions, walkProviderPages, type CookieJar, type OidcTestProvider } from './oidc-kit.js'

/**
 * Silent renew (issue 16) against a real OpenID provider (oidc-provider on 127.0.0.1) that issues
 * no refresh token: the engine's refresh loads `prompt=none` in a frame (here `providerFrame`,
 * which follows the provider's redirects with the browser's cookie jar; the real hidden iframe is
 * driven in Chromium by e2e/test/silent-renew.test.ts) and exchanges the code.
 */
let op: OidcTestProvider
let issuer: string
beforeAll(async () => {
  op = await startOidcProvider('Ada Lovelace', { refreshTokens: false })
  issuer = op.issuer
})
afterAll(() => op.close())
beforeEach(() => void (op.seen.length = 0))
const stop: Array<() => void> = []
afterEach(() => {
  for (const s of stop.splice(0)) s()
  vi.unstubAllGlobals()
})

/** What the provider saw: the silent requests (`/auth` with `prompt=none`) and the grants at its token endpoint. */
const silentRequests = () => op.seen.filter((s) => s.path === '/auth' && s.query.prompt === 'none')
const grants = () => op.seen.flatMap((s) => (s.grant ? [s.grant] : []))

interface AppOptions {
  url?: string
  tx?: FakeStorage
  session?: FakeStorage
  jar?: CookieJar
  clock?: FakeClock
  engine?: Partial<AuthOptions<OidcUser, OidcLoginRequest>>
}

/** One page load of the app: an engine over an OIDC authority whose silent frame can be swapped (`use`). */
function app({ url = `${APP}/`, tx = new FakeStorage(), session = new FakeStorage(), jar = new Map(), clock = new FakeClock(), engine = {} }: AppOptions = {}) {
  const navigations: string[] = []
  const frames: SilentFrameRequest[] = []
  const state = { url, frame: providerFrame(jar) }
  const authority = oidcAuthority({
    ...testAuthorityOptions(issuer, { tx, state, navigations }),
    silentRenew: { redirectUri: SILENT, frame: (request) => (frames.push(request), state.frame(request)) },
  })
  const auth = createAuth({ authority, storage: session, clock, retry: { attempts: 1 }, channel: null, lock: null, environment: new FakeEnvironment(), random: () => 0.5, ...engine })
  stop.push(() => auth.dispose())
  const stored = () => {
    const raw = session.map.get('tessera')
    return raw ? decodeSession<OidcUser>(raw).tokens : null
  }
  return { auth, authority, tx, session, jar, clock, navigations, frames, state, stored, use: (frame: SilentFrame) => void (state.frame = frame) }
}

/** Signs in through the provider's pages with the browser's cookie `jar`; resolves the callback page load, authenticated. */
async function signedIn(options: AppOptions = {}) {
  const jar = options.jar ?? new Map()
  const tx = new FakeStorage()
  const before = app({ jar, tx }) // the page load that leaves for the provider
  await before.auth.ready()
  before.auth.login().catch(() => {}) // never settles: the page leaves
  await vi.waitFor(() => expect(before.navigations).toHaveLength(1))
  const callback = await walkProviderPages(before.navigations[0]!, APP, { jar })
  before.auth.dispose()
  const p = app({ ...options, jar, tx, url: callback })
  await p.auth.ready()
  expect(p.auth.getSnapshot()).toMatchObject({ status: 'authenticated', user: { sub: 'ada' } })
  return p
}

/** The provider's answer of `request`, as the frame would see it at the silent redirect URI. */
const answered = (request: SilentFrameRequest, params: Record<string, string>) => {
  const url = new URL(SILENT)
  for (const [k, v] of Object.entries({ ...params, state: new URL(request.url).searchParams.get('state')!, iss: issuer })) url.searchParams.set(k, v)
  return url.href
}

/** I5: an error may name what went wrong, never carry the code or a token. */
function expectNoSecrets(error: unknown, ...secrets: string[]) {
  const text = JSON.stringify({ message: (error as Error)?.message, cause: (error as TesseraError)?.cause })
  for (const s of secrets) expect(text).not.toContain(s)
}

describe('silent renew: prompt=none when the provider gives no refresh token', () => {
  it('renews with the provider session cookie: new tokens for the same sub, fresh state/nonce/PKCE each time, no refresh_token grant', async () => {
    const p = await signedIn()
    const first = p.stored()!
    expect(first.refreshToken).toBe('silent:ada') // no refresh token from the provider: the renewal handle stands in
    op.seen.length = 0

    await p.auth.refresh()
    await p.auth.refresh()
    const renewed = p.stored()!
    expect(p.auth.getSnapshot()).toMatchObject({ status: 'authenticated', generation: 3, user: { sub: 'ada' }, error: null })
    expect(renewed.accessToken).not.toBe(first.accessToken)
    expect(decodeJwt(renewed.idToken!)).toMatchObject({ sub: 'ada', aud: 'web' })
    expect(renewed.refreshToken).toBe('silent:ada')
    expect(grants()).toEqual(['authorization_code', 'authorization_code'])
    const [one, two] = silentRequests().map((s) => s.query)
    expect(one).toMatchObject({ prompt: 'none', response_mode: 'query', redirect_uri: SILENT, response_type: 'code', client_id: 'web', code_challenge_method: 'S256' })
    for (const k of ['state', 'nonce', 'code_challenge']) expect(one![k]).not.toBe(two![k])
    expect(p.frames.map((f) => f.redirectUri)).toEqual([SILENT, SILENT])
    expect(p.tx.map.size).toBe(0) // the renewal's state never went to the storage a login in progress uses
    // The new access token is one the provider honours.
    const me = await fetch(`${issuer}/me`, { headers: { authorization: `Bearer ${renewed.accessToken}` } })
    expect(await me.json()).toMatchObject({ sub: 'ada' })
  })

  it('a reload after the access token expired keeps the session (the handle makes it restorable) and the first request renews it', async () => {
    const jar: CookieJar = new Map()
    const p = await signedIn({ jar })
    const first = p.stored()!
    p.auth.dispose()
    const clock = new FakeClock()
    clock.t = p.clock.t + 120_000 // the 60 s access token is dead by now
    const reload = app({ session: p.session, jar, clock })
    await reload.auth.ready()
    expect(reload.auth.getSnapshot().status).toBe('authenticated')
    const token = await reload.auth.getAccessToken()
    expect(token).not.toBe(first.accessToken)
    expect(reload.frames).toHaveLength(1)
    expect(grants()).not.toContain('refresh_token')
  })

  it('login_required once the provider session ended: SESSION_EXPIRED with the provider error as cause, expired, nothing stored', async () => {
    const p = await signedIn()
    const tokens = p.stored()!
    await endProviderSession(issuer, p.jar)
    op.seen.length = 0
    const expired = vi.fn()
    p.auth.on('expired', expired)
    const error = await p.auth.refresh().catch((e: TesseraError) => e)
    expect(error).toMatchObject({ code: 'SESSION_EXPIRED', cause: { code: 'INVALID_GRANT', field: 'error', cause: { error: 'login_required' } } })
    expect(p.auth.getSnapshot()).toMatchObject({ status: 'expired', user: null, error: { code: 'SESSION_EXPIRED' } })
    expect(expired).toHaveBeenCalledTimes(1)
    expect(silentRequests()).toHaveLength(1)
    expect(grants()).toEqual([]) // nothing to exchange
    await flush()
    expect(p.stored()).toBeNull()
    expectNoSecrets(error, tokens.accessToken, tokens.idToken!)
  })

  it.each(['login_required', 'interaction_required', 'consent_required', 'account_selection_required', 'access_denied'])(
    'the provider answering %s ends the session (SESSION_EXPIRED, the error in cause)',
    async (providerError) => {
      const p = await signedIn()
      p.use(async (request) => answered(request, { error: providerError, error_description: 'the user must come back' }))
      const error = await p.auth.refresh().catch((e: TesseraError) => e)
      expect(error).toMatchObject({ code: 'SESSION_EXPIRED', cause: { code: 'INVALID_GRANT', cause: { error: providerError } } })
      expect(p.auth.getSnapshot().status).toBe('expired')
    },
  )

  it.each(['temporarily_unavailable', 'server_error'])('I6: the provider answering %s is transient: NETWORK_ERROR, the session and its token kept', async (providerError) => {
    const p = await signedIn()
    const before = p.stored()!
    p.use(async (request) => answered(request, { error: providerError }))
    await expect(p.auth.refresh()).rejects.toMatchObject({ code: 'NETWORK_ERROR', field: 'error', cause: { error: providerError } })
    expect(p.auth.getSnapshot().status).toBe('authenticated')
    expect(await p.auth.getAccessToken()).toBe(before.accessToken)
  })

  it('I2, I6: a frame that never answers is a TIMEOUT per attempt (the frame told to stop), retried, then a cooldown; the session and its token are kept, and renewal resumes', async () => {
    const p = await signedIn({ engine: { retry: { attempts: 2, timeout: 5_000, baseDelay: 500, cooldown: 30_000 } } })
    const before = p.stored()!
    const real = p.state.frame
    p.use(() => new Promise<string>(() => {})) // an iframe whose page never posts anything
    const refreshing = p.auth.refresh().catch((e: TesseraError) => e)
    await vi.waitFor(() => expect(p.frames).toHaveLength(1))
    await p.clock.advance(5_000) // attempt 1 times out
    await p.clock.advance(1_000) // backoff
    await vi.waitFor(() => expect(p.frames).toHaveLength(2))
    await p.clock.advance(5_000) // attempt 2 times out
    expect(await refreshing).toMatchObject({ code: 'TIMEOUT' })
    expect(p.frames).toHaveLength(2)
    expect(p.frames.every((f) => f.signal.aborted)).toBe(true) // each frame was told to go away
    expect(p.auth.getSnapshot()).toMatchObject({ status: 'authenticated', error: { code: 'TIMEOUT' } })
    expect(await p.auth.getAccessToken()).toBe(before.accessToken) // still valid: kept (P11)
    expect(p.stored()!.refreshToken).toBe('silent:ada')

    // P12: no renewal during the cooldown, even inside the lead; the proactive one after it works.
    p.use(real)
    await p.clock.advance(25_000) // 36 s: the token is not expiring yet
    await p.clock.advance(10_000) // 46 s: inside the 15 s lead, and the cooldown is over
    await vi.waitFor(() => expect(p.auth.getSnapshot().generation).toBe(2))
    expect(p.frames).toHaveLength(3)
    expect(p.stored()!.accessToken).not.toBe(before.accessToken)
  })

  it('another user signed in at the provider meanwhile: the renewal is refused (INVALID_GRANT, field sub) and their tokens are not taken', async () => {
    const p = await signedIn()
    const before = p.stored()!
    // In the same browser, someone signs in at the provider as grace.
    const other = app({ jar: p.jar })
    await other.auth.ready()
    other.auth.login({ params: { prompt: 'login' } }).catch(() => {})
    await vi.waitFor(() => expect(other.navigations).toHaveLength(1))
    await walkProviderPages(other.navigations[0]!, APP, { jar: p.jar, login: 'grace' })
    op.seen.length = 0

    const error = await p.auth.refresh().catch((e: TesseraError) => e)
    expect(error).toMatchObject({ code: 'SESSION_EXPIRED', cause: { code: 'INVALID_GRANT', field: 'sub' } })
    expect(grants()).toEqual(['authorization_code']) // the provider did issue grace's tokens…
    expect(p.auth.getSnapshot()).toMatchObject({ status: 'expired', user: null }) // …and ada's session ended instead
    await flush()
    expect(p.stored()).toBeNull()
    expectNoSecrets(error, before.accessToken)
  })

  it('a forged state: refused (INVALID_TOKEN_RESPONSE, field state) before any code exchange; the session is kept', async () => {
    const p = await signedIn()
    const before = p.stored()!
    let code = ''
    p.use(async (request) => {
      const answer = new URL(await providerFrame(p.jar)(request))
      code = answer.searchParams.get('code')!
      answer.searchParams.set('state', 'forged')
      return answer.href
    })
    op.seen.length = 0
    const error = await p.auth.refresh().catch((e: TesseraError) => e)
    expect(error).toMatchObject({ code: 'INVALID_TOKEN_RESPONSE', field: 'state' })
    expect(code).toBeTruthy()
    expect(grants()).toEqual([])
    expect(p.auth.getSnapshot().status).toBe('authenticated')
    expect(p.stored()!.accessToken).toBe(before.accessToken)
    expectNoSecrets(error, code)
  })

  it('a nonce that is not the one sent: refused (INVALID_TOKEN_RESPONSE, field nonce), the tokens issued are not taken', async () => {
    const p = await signedIn()
    const before = p.stored()!
    p.use((request) => {
      const url = new URL(request.url)
      url.searchParams.set('nonce', 'not-the-nonce-sent') // a response minted for another request
      return providerFrame(p.jar)({ ...request, url: url.href })
    })
    op.seen.length = 0
    await expect(p.auth.refresh()).rejects.toMatchObject({ code: 'INVALID_TOKEN_RESPONSE', field: 'nonce' })
    expect(grants()).toEqual(['authorization_code'])
    expect(p.stored()!.accessToken).toBe(before.accessToken)
    expect(p.auth.getSnapshot()).toMatchObject({ status: 'authenticated', generation: 1 })
  })

  it('an answer that is not at the silent redirect URI is refused (field redirect_uri)', async () => {
    const p = await signedIn()
    p.use(async (request) => (await providerFrame(p.jar)(request)).replace(SILENT, `${APP}/elsewhere`))
    await expect(p.auth.refresh()).rejects.toMatchObject({ code: 'INVALID_TOKEN_RESPONSE', field: 'redirect_uri' })
    expect(p.auth.getSnapshot().status).toBe('authenticated')
  })

  it('I1 across tabs: two tabs that both need a renewal get one frame and one code exchange, and the same new token', async () => {
    const jar: CookieJar = new Map()
    const clock = new FakeClock()
    const bus = new FakeBus()
    const locks = new FakeLocks()
    const tab = () => ({ clock, jar, engine: { channel: bus.channel(), lock: locks } })
    const a = await signedIn(tab())
    const b = app(tab()) // a new tab joins the memory-only session over the channel
    await b.auth.ready()

    expect(b.auth.getSnapshot()).toMatchObject({ status: 'authenticated', user: { sub: 'ada' } })
    op.seen.length = 0

    await Promise.all([a.auth.refresh(), b.auth.refresh()])
    expect(a.frames.length + b.frames.length).toBe(1)
    expect(grants()).toEqual(['authorization_code'])
    const [ta, tb] = await Promise.all([a.auth.getAccessToken(), b.auth.getAccessToken()])
    expect(ta).toBe(tb)
    expect(a.auth.getSnapshot().generation).toBe(2)
  })

  it('logout revokes the access token (there is no refresh token to revoke) and ends the provider session', async () => {
    const p = await signedIn()
    const { accessToken, idToken } = p.stored()!
    const me = () => fetch(`${issuer}/me`, { headers: { authorization: `Bearer ${accessToken}` } }).then((r) => r.status)
    expect(await me()).toBe(200)
    await p.auth.logout()
    expect(await me()).toBe(401)
    expect(new URL(p.navigations.at(-1)!).searchParams.get('id_token_hint')).toBe(idToken)
  })

  it('silentRenew: false keeps the old behaviour: no handle, and the refresh ends the session', async () => {
    const tx = new FakeStorage()
    const jar: CookieJar = new Map()
    const before = app({ tx, jar })
    await before.auth.ready()
    before.auth.login().catch(() => {})
    await vi.waitFor(() => expect(before.navigations).toHaveLength(1))
    const callback = await walkProviderPages(before.navigations[0]!, APP, { jar })
    const session = new FakeStorage()
    const authority = oidcAuthority({ issuer, clientId: 'web', redirectUri: REDIRECT, storage: tx, currentUrl: () => callback, replaceUrl: () => {}, allowInsecureRequests: true, silentRenew: false })
    const auth = createAuth({ authority, storage: session, channel: null, lock: null, retry: { attempts: 1 } })
    stop.push(() => auth.dispose())
    await auth.ready()
    expect(decodeSession(session.map.get('tessera')!).tokens.refreshToken).toBeUndefined()
    await expect(auth.refresh()).rejects.toMatchObject({ code: 'SESSION_EXPIRED', cause: { field: 'refresh_token' } })
  })
})

describe('the page at the silent redirect URI, inside the renewal frame', () => {
  /** This page as Tessera's renewal frame of a parent page on APP. */
  function inFrame(href: string) {
    const posted: Array<[unknown, string]> = []
    vi.stubGlobal('name', 'tessera-silent-renew')
    vi.stubGlobal('parent', { postMessage: (message: unknown, origin: string) => void posted.push([message, origin]) })
    vi.stubGlobal('location', { origin: APP, href })
    return posted
  }

  it('an app whose engine loads there: restore() hands the answer to the parent (its origin only), calls nobody and starts no session; a login in progress is untouched', async () => {
    const url = `${SILENT}?code=abc&state=xyz&iss=${encodeURIComponent(issuer)}`
    const posted = inFrame(url)
    const tx = new FakeStorage()
    tx.map.set('tessera.oidc', JSON.stringify({ state: 's', nonce: 'n', verifier: 'v' })) // the storage the frame shares with its tab
    const p = app({ url, tx })
    expect(p.authority.hasCallback()).toBe(true) // so the engine skips storage and peers
    await p.auth.ready()
    expect(p.auth.getSnapshot()).toMatchObject({ status: 'unauthenticated', error: null })
    expect(posted).toEqual([[{ type: 'tessera:silent-renew', url }, APP]])
    expect(p.state.url).toBe(url) // not cleaned: the answer is the parent's
    expect(tx.map.has('tessera.oidc')).toBe(true)
    expect(op.seen).toEqual([])
  })

  it('handleSilentCallback() posts this page\'s URL to the parent in the frame, and does nothing (false) anywhere else', () => {
    const url = `${SILENT}?error=login_required&state=xyz`
    const posted = inFrame(url)
    expect(handleSilentCallback()).toBe(true)
    expect(posted).toEqual([[{ type: 'tessera:silent-renew', url }, APP]])
    vi.stubGlobal('name', '') // a page that is not the renewal frame
    expect(handleSilentCallback()).toBe(false)
    vi.unstubAllGlobals()
    expect(handleSilentCallback()).toBe(false) // a top-level page
    expect(posted).toHaveLength(1)
  })

  it('outside the frame, a URL at the silent redirect URI is no callback: a visitor opening it starts nothing', async () => {
    const p = app({ url: `${SILENT}?code=abc&state=xyz` })
    expect(p.authority.hasCallback()).toBe(false)
    await p.auth.ready()
    expect(p.auth.getSnapshot()).toMatchObject({ status: 'unauthenticated', error: null })
  })
})
