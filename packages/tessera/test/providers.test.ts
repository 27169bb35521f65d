import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { createAuth, isTesseraError, type Auth, type TesseraError } from '../src/index.js'
import { httpAuthority } from '../src/authorities/http.js'
import { oidcAuthority, withProviders, type OidcUser, type ProviderLogin } from '../src/authorities/oidc.js'
import { FakeClock, FakeStorage } from './fakes.js'
import { APP, REDIRECT, startOidcProvider, walkProviderPages, type OidcTestProvider } from './oidc-kit.js'
import { startShapedBackend } from './servers/shaped-backends.js'

/**
 * Issue 15 (refine's `providerName`): one session, several ways in. Credentials go to the app's
 * own token server (a Hono backend of the Directive shape); "Sign in with …" goes to one of two
 * real OpenID providers (oidc-provider) that share one redirect URI.
 */
let work: OidcTestProvider
let social: OidcTestProvider
let backend: Awaited<ReturnType<typeof startShapedBackend>>
beforeAll(async () => {
  ;[work, social, backend] = await Promise.all([startOidcProvider('Ada at work'), startOidcProvider('Ada socially'), startShapedBackend('directive')])
})
afterAll(() => Promise.all([work.close(), social.close(), backend.close()]))

const engines: Auth<unknown, never>[] = []
afterEach(() => engines.splice(0).forEach((a) => a.dispose()))

type Tab = { session: FakeStorage; tx: FakeStorage; provider: FakeStorage }
const newTab = (session = new FakeStorage()): Tab => ({ session, tx: new FakeStorage(), provider: new FakeStorage() })

/** One page load: an engine over `withProviders(httpAuthority, { work, social })`, with what it sent where. */
function page(tab: Tab, url = `${APP}/`) {
  const sent: string[] = []
  const navigations: string[] = []
  const recording: typeof fetch = (input, init) => {
    const u = new URL(String(input))
    sent.push(`${u.origin === work.issuer ? 'work' : u.origin === social.issuer ? 'social' : 'backend'} ${u.pathname}`)
    return fetch(input, init)
  }
  const oidc = (op: OidcTestProvider) =>
    oidcAuthority({
      issuer: op.issuer,
      clientId: 'web',
      redirectUri: REDIRECT,
      storage: tab.tx,
      fetch: recording,
      navigate: (u) => void navigations.push(u),
      currentUrl: () => url,
      replaceUrl: (u) => void (url = u),
      allowInsecureRequests: true,
    })
  const password = httpAuthority<OidcUser>({
    baseUrl: backend.base,
    fetch: recording,
    refresh: { body: (refreshToken) => ({ refreshToken }) },
    logout: { body: (t) => ({ refreshToken: t.refreshToken }) },
  })
  const authority = withProviders(password, { work: oidc(work), social: oidc(social) }, { storage: tab.provider })
  const auth = createAuth({ authority, storage: tab.session, clock: new FakeClock(), channel: null, retry: { attempts: 1 }, environment: { subscribe: () => () => {} } })
  engines.push(auth as Auth<unknown, never>)
  const refreshToken = () => (JSON.parse(tab.session.map.get('tessera') ?? 'null')?.tokens?.refreshToken as string | undefined) ?? null
  return { auth, authority, sent, navigations, refreshToken }
}

/** Starts "Sign in with `name`" on a page of `tab`, walks the provider's pages, and loads the callback page. */
async function signInWith(name: string, tab = newTab()) {
  const before = page(tab)
  await before.auth.ready()
  before.auth.login({ provider: name }).catch(() => {}) // the page is leaving
  await vi.waitFor(() => expect(before.navigations).toHaveLength(1))
  const callback = await walkProviderPages(before.navigations[0]!, APP)
  const after = page(tab, callback)
  await after.auth.ready()
  return { tab, before, after }
}

describe('withProviders: credentials and named OpenID providers, one session', () => {
  it('"Sign in with social": its pages, its callback, its refreshes and its revocation, also in another tab that never saw the login', async () => {
    const { tab, before, after } = await signInWith('social')
    expect(new URL(before.navigations[0]!).origin).toBe(social.issuer)
    expect(after.auth.getSnapshot()).toMatchObject({ status: 'authenticated', user: { sub: 'ada', name: 'Ada socially' } })
    expect(after.sent).toEqual(['social /.well-known/openid-configuration', 'social /token', 'social /me'])
    expect(after.refreshToken()).toMatch(/^social~/) // the session carries its provider
    await after.auth.refresh()
    expect(after.sent.at(-1)).toBe('social /token')
    after.auth.dispose()

    // Another tab (or a reload): the session from shared storage, nothing remembered in this tab.
    const other = page(newTab(tab.session))
    await other.auth.ready()
    expect(other.auth.getSnapshot().status).toBe('authenticated')
    const live = other.refreshToken()!
    await other.auth.refresh()
    expect(other.sent).toEqual(['social /.well-known/openid-configuration', 'social /token'])
    await other.auth.reloadUser()
    expect(other.sent.at(-1)).toBe('social /me')
    const current = other.refreshToken()!
    await other.auth.logout()
    expect(other.sent.at(-1)).toBe('social /token/revocation')
    expect(other.sent.some((s) => s.startsWith('work') || s.startsWith('backend'))).toBe(false)
    // Rotated, then revoked: both refresh tokens are dead at the provider.
    for (const rt of [live, current]) {
      const error = await other.authority.refresh(rt, new AbortController().signal).catch((e: TesseraError) => e)
      expect(isTesseraError(error, 'INVALID_GRANT')).toBe(true)
    }
  })

  it('two providers share one redirect URI: the callback goes to the one this tab started', async () => {
    const { after } = await signInWith('work')
    expect(after.auth.getSnapshot()).toMatchObject({ status: 'authenticated', user: { name: 'Ada at work' } })
    expect(after.sent.every((s) => s.startsWith('work '))).toBe(true)
    expect(after.refreshToken()).toMatch(/^work~/)
  })

  it('credentials go to the app\'s own server: its /me, its refresh, its logout (which revokes)', async () => {
    const p = page(newTab())
    await p.auth.ready()
    await p.auth.login({ email: backend.user.email, password: backend.user.password } as unknown as ProviderLogin)
    expect(p.auth.getSnapshot()).toMatchObject({ status: 'authenticated', user: { id: 'u-1', role: 'admin' } })
    const first = p.refreshToken()!
    expect(first).not.toContain('~')
    await p.auth.refresh()
    const live = p.refreshToken()!
    await p.auth.logout()
    expect(p.sent).toEqual(['backend /api/auth/login', 'backend /api/auth/me', 'backend /api/auth/refresh', 'backend /api/auth/logout'])
    expect((await backend.presentRefreshToken(live)).status).toBe(401)
  })

  it('a provider name nobody registered is LOGIN_FAILED (field provider), and names are checked at once', async () => {
    const p = page(newTab())
    await p.auth.ready()
    await expect(p.auth.login({ provider: 'github' })).rejects.toMatchObject({ code: 'LOGIN_FAILED', field: 'provider' })
    expect(p.navigations).toEqual([])
    expect(() => withProviders(null, { 'no spaces': p.authority as never })).toThrow(TypeError)
    await expect(withProviders(null, {}).login({} as never, new AbortController().signal)).rejects.toMatchObject({ code: 'LOGIN_FAILED' })
  })
})
