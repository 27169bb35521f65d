import { randomBytes } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import Provider from 'oidc-provider'
import type { OidcAuthorityOptions, SilentFrame } from '../src/authorities/oidc.js'
import type { StoragePort } from '../src/index.js'
import { writeRaw, type RawAnswer } from './token-server-corpus.js'

/** The app the test provider's client redirects back to. Nothing listens there: tests read the URL. */
export const APP = 'http://127.0.0.1:5999'
export const REDIRECT = `${APP}/callback`
/** The page that hands silent renew answers to its parent. */
export const SILENT = `${APP}/silent`

/** A real OpenID provider (oidc-provider) on 127.0.0.1, with hooks to bend its answers on the wire. */
export interface OidcTestProvider {
  issuer: string
  /** Issue 13 finding 4: the next answer of a path, written on the wire instead of the provider's (once). */
  wire: Map<string, RawAnswer>
  /** Rewrites the provider's own JSON answer of the token endpoint (once). */
  rewriteToken: ((body: Record<string, unknown>) => Record<string, unknown>) | null
  /** Every request the provider answered: `METHOD /path?query`, and the token endpoint's `grant_type`. */
  seen: Array<{ method: string; path: string; query: Record<string, string>; grant?: string; resource?: string }>
  /** DPoP (on, as in oidc-provider 9 by default): whether a proof must carry the provider's nonce (`use_dpop_nonce` otherwise). */
  requireDpopNonce: boolean
  close(): Promise<void>
}

/**
 * Starts oidc-provider with one public client `web` (PKCE, refresh tokens rotated, revocation and
 * RP-initiated logout on) whose users (any login name) are called `name`. With
 * `refreshTokens: false` it issues no refresh token at all (a single-page app client that gets
 * none: silent renew's case). With `resources` (resource indicator → its scopes), RFC 8707 resource
 * indicators are on: a resource granted at login can be asked for at the token endpoint, and gets
 * a JWT access token whose `aud` is that resource.
 */
export async function startOidcProvider(
  name = 'Ada Lovelace',
  { refreshTokens = true, resources }: { refreshTokens?: boolean; resources?: Record<string, string> } = {},
): Promise<OidcTestProvider> {
  const server = createServer()
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: 'web',
        token_endpoint_auth_method: 'none', // public client: PKCE instead of a secret
        grant_types: refreshTokens ? ['authorization_code', 'refresh_token'] : ['authorization_code'],
        response_types: ['code'],
        redirect_uris: [REDIRECT, SILENT],
        post_logout_redirect_uris: [`${APP}/`],
      },
    ],
    findAccount: (_ctx: unknown, id: string) => ({ accountId: id, claims: () => ({ sub: id, name }) }),
    claims: { openid: ['sub'], profile: ['name'] },
    features: {
      devInteractions: { enabled: true },
      revocation: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      // Tokens asked for with a proof are bound to its key; nonces when a test asks for them.
      dPoP: { enabled: true, nonceSecret: randomBytes(32), requireNonce: () => op.requireDpopNonce },
      resourceIndicators: {
        enabled: !!resources,
        getResourceServerInfo: (_ctx: unknown, resource: string) => ({ scope: resources?.[resource] ?? '', audience: resource, accessTokenFormat: 'jwt', accessTokenTTL: 60 }),
      },
    },
    pkce: { required: () => true },
    rotateRefreshToken: true,
    // A refresh token for every code grant (by default offline_access also needs prompt=consent).
    issueRefreshToken: async (_ctx: unknown, client: { grantTypeAllowed(t: string): boolean }) => client.grantTypeAllowed('refresh_token'),
    ttl: { AccessToken: 60, AuthorizationCode: 60, IdToken: 60, RefreshToken: 3600, Interaction: 600, Session: 600, Grant: 3600 },
    cookies: { keys: ['tessera-test-cookie-key'] },
  })
  const op: OidcTestProvider = {
    issuer,
    wire: new Map(),
    rewriteToken: null,
    seen: [],
    requireDpopNonce: false,
    close: () => new Promise<void>((r) => server.close(() => r())),
  }
  provider.on('server_error', (_ctx, err) => console.error('provider error', err))
  provider.use(async (ctx, next) => {
    const entry: OidcTestProvider['seen'][number] = { method: ctx.method, path: ctx.path, query: { ...(ctx.query as Record<string, string>) } }
    op.seen.push(entry)
    await next()
    const grant = ctx.oidc?.params?.grant_type
    if (typeof grant === 'string') entry.grant = grant
    const resource = ctx.oidc?.params?.resource
    if (typeof resource === 'string') entry.resource = resource
    if (ctx.path === '/token' && ctx.status === 200 && op.rewriteToken) {
      ctx.body = op.rewriteToken(ctx.body as Record<string, unknown>)
      op.rewriteToken = null
    }
  })
  const callback = provider.callback()
  server.on('request', (req, res) => {
    const path = new URL(req.url!, issuer).pathname
    const answer = op.wire.get(path)
    if (!answer) return callback(req, res)
    op.wire.delete(path)
    req.resume()
    writeRaw(res, answer)
  })
  return op
}

/** What a test page load's browser holds: the login in progress (`tx`), the address bar, where it was sent. */
export interface TestBrowser {
  tx: StoragePort
  state: { url: string }
  navigations: string[]
}

/** The oidcAuthority options of a test page load: the test provider's client `web`, the browser's pieces faked by `browser`. */
export function testAuthorityOptions(issuer: string, { tx, state, navigations }: TestBrowser): OidcAuthorityOptions {
  return {
    issuer,
    clientId: 'web',
    redirectUri: REDIRECT,
    postLogoutRedirectUri: `${APP}/`,
    storage: tx,
    navigate: (u) => void navigations.push(u),
    currentUrl: () => state.url,
    replaceUrl: (u) => void (state.url = u),
    allowInsecureRequests: true,
  }
}

/** A browser's cookies for the provider: what keeps its session between requests. */
export type CookieJar = Map<string, string>

/** One request like a browser's: the jar's cookies sent, its `Set-Cookie` kept (an expired one deleted), no redirect followed. */
async function browse(url: string, jar: CookieJar, body?: string): Promise<Response> {
  const res = await fetch(url, {
    method: body === undefined ? 'GET' : 'POST',
    body,
    redirect: 'manual',
    headers: {
      cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; '),
      ...(body === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded' }),
    },
  })
  for (const c of res.headers.getSetCookie()) {
    const [pair] = c.split(';')
    const i = pair!.indexOf('=')
    if (/expires=Thu, 01 Jan 1970|max-age=0/i.test(c)) jar.delete(pair!.slice(0, i))
    else jar.set(pair!.slice(0, i), pair!.slice(i + 1))
  }
  return res
}

const redirected = (res: Response, from: string) => (res.status >= 300 && res.status < 400 ? new URL(res.headers.get('location')!, from).href : null)

/**
 * Walks the provider's pages like a browser: follows redirects, signs in as `login` (default
 * `ada`) and consents (or cancels), until a redirect lands on `app`; resolves that URL (the
 * callback). Pass a `jar` to keep the provider's session cookies (silent renew needs them).
 */
export async function walkProviderPages(
  authorizationUrl: string,
  app: string,
  options: { cancel?: boolean; jar?: CookieJar; login?: string } = {},
): Promise<string> {
  const { jar = new Map(), login = 'ada' } = options
  let url = authorizationUrl
  let body: string | undefined
  for (let step = 0; step < 20; step++) {
    const res = await browse(url, jar, body)
    body = undefined
    const next = redirected(res, url)
    if (next) {
      if (next.startsWith(app)) return next
      url = next
      continue
    }
    const html = await res.text()
    if (res.status !== 200) throw new Error(`the provider answered ${res.status}: ${html}`)
    const action = new URL(/action="([^"]+)"/.exec(html)![1]!, url).href
    // The form's hidden fields (`prompt`; or `xsrf` and `logout` of the form the provider submits
    // by script when another account signs in over a session), and the user's part of a login.
    const fields = new URLSearchParams([...html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]))
    if (fields.get('prompt') === 'login') fields.set('login', login), fields.set('password', 'any')
    if (options.cancel) url = `${action}/abort`
    else {
      url = action
      body = fields.toString()
    }
  }
  throw new Error('the provider flow did not end on the app')
}

/**
 * The hidden iframe, for Node: loads the silent request with the browser's cookie `jar` and
 * follows the provider's redirects to the silent redirect URI, whose URL it resolves. A page
 * instead (one that needs the user) rejects, as a frame that stays there would be blocked.
 */
export function providerFrame(jar: CookieJar): SilentFrame {
  return async ({ url, redirectUri, signal }) => {
    for (let step = 0; step < 10 && !signal.aborted; step++) {
      const next = redirected(await browse(url, jar), url)
      if (!next) throw new Error(`the silent request stopped on a provider page at ${url}`)
      if (next.startsWith(redirectUri)) return next
      url = next
    }
    throw signal.aborted ? signal.reason : new Error('the silent request did not come back')
  }
}

/** RP-initiated logout at the provider, confirmed like a user would: the session in `jar` ends there. */
export async function endProviderSession(issuer: string, jar: CookieJar): Promise<void> {
  const page = await (await browse(`${issuer}/session/end?client_id=web`, jar)).text()
  const xsrf = /name="xsrf" value="([^"]+)"/.exec(page)?.[1]
  if (!xsrf) throw new Error(`no logout form: ${page}`)
  const res = await browse(new URL(/action="([^"]+)"/.exec(page)![1]!, issuer).href, jar, `xsrf=${xsrf}&logout=yes`)
  if (!redirected(res, issuer)) throw new Error(`the logout was not confirmed: ${res.status}`)
}
