import { randomBytes } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import Provider from 'oidc-provider'
import { writeRaw, type RawAnswer } from './token-server-corpus.js'

/** The app the test provider's client redirects back to. Nothing listens there: tests read the URL. */
export const APP = 'http://127.0.0.1:5999'
export const REDIRECT = `${APP}/callback`

/** A real OpenID provider (oidc-provider) on 127.0.0.1, with hooks to bend its answers on the wire. */
export interface OidcTestProvider {
  issuer: string
  /** Issue 13 finding 4: the next answer of a path, written on the wire instead of the provider's (once). */
  wire: Map<string, RawAnswer>
  /** Rewrites the provider's own JSON answer of the token endpoint (once). */
  rewriteToken: ((body: Record<string, unknown>) => Record<string, unknown>) | null
  /** DPoP (on, as in oidc-provider 9 by default): whether a proof must carry the provider's nonce (`use_dpop_nonce` otherwise). */
  requireDpopNonce: boolean
  close(): Promise<void>
}

/**
 * Starts oidc-provider with one public client `web` (PKCE, refresh tokens rotated, revocation and
 * RP-initiated logout on) whose user `ada` is called `name`.
 */
export async function startOidcProvider(name = 'Ada Lovelace'): Promise<OidcTestProvider> {
  const server = createServer()
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: 'web',
        token_endpoint_auth_method: 'none', // public client: PKCE instead of a secret
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        redirect_uris: [REDIRECT],
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
    requireDpopNonce: false,
    close: () => new Promise<void>((r) => server.close(() => r())),
  }
  provider.on('server_error', (_ctx, err) => console.error('provider error', err))
  provider.use(async (ctx, next) => {
    await next()
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

/**
 * Walks the provider's pages like a browser: follows redirects, signs in as `ada` and consents (or
 * cancels), until a redirect lands on `app`; resolves that URL (the callback).
 */
export async function walkProviderPages(authorizationUrl: string, app: string, options: { cancel?: boolean } = {}): Promise<string> {
  const jar = new Map<string, string>()
  let url = authorizationUrl
  let body: string | undefined
  for (let step = 0; step < 20; step++) {
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
      jar.set(pair!.slice(0, i), pair!.slice(i + 1))
    }
    body = undefined
    if (res.status >= 300 && res.status < 400) {
      const next = new URL(res.headers.get('location')!, url).href
      if (next.startsWith(app)) return next
      url = next
      continue
    }
    const html = await res.text()
    if (res.status !== 200) throw new Error(`the provider answered ${res.status}: ${html}`)
    const action = new URL(/action="([^"]+)"/.exec(html)![1]!, url).href
    const prompt = /name="prompt" value="(\w+)"/.exec(html)?.[1]
    if (options.cancel) url = `${action}/abort`
    else {
      url = action
      body = prompt === 'login' ? 'prompt=login&login=ada&password=any' : 'prompt=consent'
    }
  }
  throw new Error('the provider flow did not end on the app')
}
