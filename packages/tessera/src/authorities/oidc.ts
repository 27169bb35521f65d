import * as oauth from 'oauth4webapi'
import { retryAfter } from './retry-after.js'
import { handOver, hiddenFrame, inSilentFrame, isHandle, samePage, subjectOf, toHandle, type SilentRenewOptions } from './silent-renew.js'
import { TesseraError, isTesseraError, sessionStorageStore, type Authority, type StoragePort, type TokenRequest, type TokenSet } from '../index.js'
import type { Dpop } from '../proof/dpop.js'

/**
 * The user {@link oidcAuthority} resolves by default: the userinfo claims (or, without a userinfo
 * endpoint, the ID token's claims).
 *
 * @example
 * ```ts
 * const auth = createAuth({ authority: oidcAuthority({ issuer, clientId, redirectUri }) })
 * const name = auth.getSnapshot().user?.name ?? auth.getSnapshot().user?.sub
 * ```
 */
export interface OidcUser {
  /** The subject: the provider's stable id for the user. */
  sub: string
  name?: string
  email?: string
  [claim: string]: unknown
}

/**
 * What `auth.login()` accepts with an OIDC authority: nothing, or extra authorization request
 * parameters (`prompt`, `login_hint`, `ui_locales`, `acr_values`, …).
 *
 * @example `auth.login({ params: { prompt: 'login', login_hint: 'ada@example.com' } })`
 */
export type OidcLoginRequest = { params?: Record<string, string> } | void

/**
 * Options of {@link oidcAuthority}. Only `issuer`, `clientId` and `redirectUri` are required; the
 * browser pieces (`navigate`, `currentUrl`, `replaceUrl`, `storage`) are injectable for tests.
 *
 * @example
 * ```ts
 * const options: OidcAuthorityOptions = {
 *   issuer: 'https://id.example.com/realms/main',
 *   clientId: 'web',
 *   redirectUri: `${location.origin}/callback`,
 *   postLogoutRedirectUri: `${location.origin}/`,
 *   scope: 'openid profile email offline_access',
 * }
 * ```
 */
export interface OidcAuthorityOptions<User = OidcUser> {
  /** The issuer identifier; its `/.well-known/openid-configuration` is fetched once (and again after a failure). */
  issuer: string | URL
  /** The client id registered at the provider. */
  clientId: string
  /** Where the provider sends the browser back with `code`/`state` (registered at the provider). */
  redirectUri: string
  /** @defaultValue `'openid profile offline_access'` (`offline_access` asks for a refresh token) */
  scope?: string
  /** Where the provider sends the browser after RP-initiated logout (registered at the provider). */
  postLogoutRedirectUri?: string
  /**
   * A confidential client's secret (`client_secret_basic`). Leave unset in browsers: a public client
   * with PKCE (`token_endpoint_auth_method: 'none'`) is the browser setup.
   */
  clientSecret?: string
  /** @defaultValue `globalThis.fetch`, looked up per call */
  fetch?: typeof fetch
  /**
   * Keeps the login in progress (`state`, `nonce`, PKCE verifier) across the redirect; single use.
   * @defaultValue `sessionStorageStore()` (one tab, survives the redirect)
   */
  storage?: StoragePort
  /** Storage key of the login in progress. @defaultValue `'tessera.oidc'` */
  key?: string
  /** Leaves the page for `url`. @defaultValue `location.assign(url)` */
  navigate?: (url: string) => void
  /** The page's URL, read when the engine restores. @defaultValue `location.href` */
  currentUrl?: () => string
  /** Replaces the page's URL without navigating (drops `code`/`state`). @defaultValue `history.replaceState(history.state, '', url)` */
  replaceUrl?: (url: string) => void
  /** Shapes the claims into your user. @defaultValue the claims as they are */
  mapUser?: (claims: OidcUser) => User
  /**
   * Navigate to the provider's `end_session_endpoint` on logout, ending the provider's session too.
   * @defaultValue `true`
   */
  endProviderSession?: boolean
  /**
   * Allows `http:` endpoints. Only for local development and tests: tokens then travel in clear.
   * @defaultValue `false`
   */
  allowInsecureRequests?: boolean
  /**
   * When the provider gives no refresh token, renew the session with `prompt=none` in a hidden
   * frame (see {@link oidcAuthority}); `false`: the session then ends when its access token does.
   * @defaultValue `{}` (on, answers at `redirectUri`)
   */
  silentRenew?: SilentRenewOptions | false
  /**
   * DPoP (`createDpop()` from `tessera/dpop`, the one given to the engine as `proof`): the code
   * exchange, refreshes and userinfo carry proofs of its key (oauth4webapi's DPoP), so the provider
   * binds the tokens to it; a `use_dpop_nonce` answer gets the request once more with the nonce.
   */
  dpop?: Pick<Dpop, 'keyPair'>
  /**
   * How a token per audience (`createAudiences()`) names its audience in the refresh token grant:
   * `resource` (RFC 8707 resource indicators: Keycloak, oidc-provider, Entra's v1 endpoints, …) or
   * `audience` (Auth0 and others). `scope` is sent as `scope`.
   * @defaultValue `'resource'`
   */
  audienceParameter?: 'resource' | 'audience'
}

/**
 * An {@link Authority} speaking OpenID Connect: Authorization Code flow with PKCE. Its `login`
 * takes an {@link OidcLoginRequest}; `logout`, `fetchUser` and `restore` are always present.
 *
 * @example
 * ```ts
 * const authority: OidcAuthority = oidcAuthority({ issuer, clientId: 'web', redirectUri })
 * if (authority.hasCallback()) showSpinner('Signing you in…')
 * const auth = createAuth({ authority })
 * ```
 */
export type OidcAuthority<User = OidcUser> = Authority<User, OidcLoginRequest> &
  Required<Pick<Authority<User, OidcLoginRequest>, 'logout' | 'fetchUser' | 'restore'>> & {
    /**
     * Whether the page's URL is a callback (`code` or `error` at `redirectUri`, or at the silent
     * redirect URI inside a renewal frame) that `restore()` will handle. Synchronous, no I/O.
     */
    hasCallback(): boolean
  }

interface Transaction {
  state: string
  nonce: string
  verifier: string
}

/** Provider errors of a silent request that are worth another try (OAuth 2.0 §4.1.2.1); any other ends the session. */
const TRANSIENT = ['server_error', 'temporarily_unavailable']

/** Callback parameters dropped from the URL once read (RFC 6749 §4.1.2, RFC 9207, OIDC Session). */
const CALLBACK_PARAMS = ['code', 'state', 'iss', 'error', 'error_description', 'error_uri', 'session_state']

/** The provider's own `error` and `error_description`: from a JSON error body, a callback, or a `WWW-Authenticate` challenge. */
function providerWords(e: unknown): { error?: string; error_description?: string } {
  if (e instanceof oauth.WWWAuthenticateChallengeError) return e.cause[0]?.parameters ?? {}
  if (e instanceof oauth.ResponseBodyError || e instanceof oauth.AuthorizationResponseError) return { error: e.error, error_description: e.error_description }
  return {}
}

/**
 * What a failure of oauth4webapi may safely carry into a {@link TesseraError}: its codes and the
 * provider's words, never its own `cause` (which can hold the authorization code, the token
 * response or the ID token's claims; I5).
 */
function safeCause(e: unknown) {
  const x = e as { name?: string; code?: string; message?: string }
  return { name: x?.name, code: x?.code, ...providerWords(e), message: x?.message }
}

/** 400, 401, 403: the server said no to what was sent, whatever its body looks like (issue 13). */
const isRefusal = (status: number | undefined) => status === 400 || status === 401 || status === 403

/** The field at fault, when oauth4webapi names one; `grant` when the provider refused what was sent. */
function faultyField(e: unknown, grant: string, status: number | undefined): string | undefined {
  if (e instanceof oauth.AuthorizationResponseError) return 'error'
  if (isRefusal(status) || e instanceof oauth.ResponseBodyError || e instanceof oauth.WWWAuthenticateChallengeError) return grant
  const claim = ((e as { cause?: { claim?: unknown } } | null)?.cause ?? {}).claim
  if (typeof claim === 'string') return claim
  return /"(state|iss)"/.exec(String((e as Error | null)?.message))?.[1]
}

/**
 * An authority for any OpenID Connect provider (Keycloak, Auth0, Entra ID, Okta, Zitadel,
 * oidc-provider, …) with the Authorization Code flow and PKCE (S256), built on oauth4webapi.
 *
 * - `auth.login()` stores `state`, `nonce` and the PKCE verifier, then navigates to the provider.
 *   Its promise **does not settle** while the page leaves, so the engine honestly stays
 *   `authenticating` (never a flash of `unauthenticated`) — for up to the engine's
 *   `retry.timeout` (10 s by default): a provider slower than that to answer the navigation
 *   shows `TIMEOUT` on the page until the browser replaces it. It rejects only when the login is
 *   superseded (a newer login, a logout), when the redirect could not start (provider unreachable:
 *   `NETWORK_ERROR`; no OpenID provider at `issuer`, or its metadata names another issuer:
 *   `INVALID_TOKEN_RESPONSE`; storage refused: `LOGIN_FAILED`), or with `ABORTED` when the page comes back
 *   from the back/forward cache without a callback (the user pressed Back at the provider).
 * - On the next page load, `restore()` (run by the engine while `initializing`) handles a callback
 *   at `redirectUri`: the URL is cleaned and the stored login consumed first (a replayed callback
 *   fails), then `state` and `iss` are checked, the code is exchanged with the verifier and the ID
 *   token validated with the `nonce`. Every failure is a `LOGIN_FAILED` {@link TesseraError} whose
 *   `field` names what was wrong (`state`, `nonce`, `iss`, `error` for a provider error such as
 *   `access_denied`, `code` for a code the provider refused) and whose `cause` holds the provider's
 *   `error`/`error_description` — never a code or token. Network trouble is `NETWORK_ERROR`.
 * - `refresh()` uses the refresh token grant; a rotated refresh token replaces the old one, an
 *   unrotated one is kept. 400/401/403 → `INVALID_GRANT` (the session ends) whatever the body says
 *   or fails to say (OAuth JSON, an empty body, text, HTML); network, 408, 429 and 5xx →
 *   `NETWORK_ERROR` with `retryAfter` (retried, session kept: I6); a 200 that is not a token
 *   response → `INVALID_TOKEN_RESPONSE` (reported, session kept).
 * - **Silent renew**: when the provider gives no refresh token (a public client without
 *   `offline_access`), the session keeps a renewal handle (`silent:` and its subject) where the
 *   refresh token would be, and `refresh()` loads an authorization request with `prompt=none`,
 *   fresh `state`, `nonce` and PKCE in a hidden iframe (`response_mode=web_message` when the
 *   provider advertises it, else `query` to `silentRenew.redirectUri`), exchanges the code, and
 *   accepts the tokens only for the same `sub`. The engine makes it single-flight across tabs and
 *   bounds each attempt by `retry.timeout` (a frame that never answers: `TIMEOUT`, retried, session
 *   kept). `login_required`, `interaction_required`, `consent_required`,
 *   `account_selection_required` (or any other provider error but `server_error` and
 *   `temporarily_unavailable`), another `sub`, or a code the provider refuses → `INVALID_GRANT`:
 *   the session ends (`SESSION_EXPIRED`, the provider's error in `cause.cause`). A frame that loads
 *   a page and answers nothing within 2 s (`X-Frame-Options`, CSP `frame-ancestors`) →
 *   `NETWORK_ERROR` saying it was blocked. A `state`, `nonce` or `iss` that does not match →
 *   `INVALID_TOKEN_RESPONSE` naming the field (no tokens taken, session kept). Browsers that keep
 *   the provider's cookies from a frame on another site (Safari, Firefox, Chrome with third-party
 *   cookies blocked) turn every renewal into `login_required`: prefer refresh tokens with rotation.
 * - `logout()` revokes the refresh token (a silently renewed session's access token) when the
 *   provider advertises a `revocation_endpoint`, then navigates to its `end_session_endpoint` with `id_token_hint`, `client_id` and
 *   `post_logout_redirect_uri`. A refused revocation (a public client may not be allowed to
 *   revoke) rejects after the navigation started: the engine's session is over regardless and
 *   reports it as a `logout-error` event.
 * - `fetchUser()` reads the userinfo endpoint (checking `sub` against the ID token when it knows
 *   it), or returns the ID token's claims when there is no userinfo endpoint.
 *
 * @throws TypeError at once when `issuer` is not `https:` and `allowInsecureRequests` is not set.
 * @remarks Give the engine persistent `storage` (e.g. `sessionStorageStore()`) if a reload should
 * keep the session: the callback can be exchanged only once.
 * @see RFC 6749 §4.1, RFC 7636 (PKCE), RFC 9207 (`iss`), OpenID Connect Core 1.0 §3.1, RP-Initiated Logout 1.0
 *
 * @example
 * ```ts
 * import { createAuth, sessionStorageStore } from 'tessera'
 * import { oidcAuthority } from 'tessera/oidc'
 *
 * const auth = createAuth({
 *   authority: oidcAuthority({
 *     issuer: 'https://id.example.com',
 *     clientId: 'web',
 *     redirectUri: `${location.origin}/callback`,
 *     postLogoutRedirectUri: location.origin,
 *   }),
 *   storage: sessionStorageStore(),
 * })
 * await auth.ready() // a callback in the URL has been handled: authenticated, or unauthenticated with the reason
 * if (auth.getSnapshot().status !== 'authenticated') loginButton.onclick = () => auth.login()
 * ```
 */
export function oidcAuthority<User = OidcUser>(options: OidcAuthorityOptions<User>): OidcAuthority<User> {
  const { clientId, redirectUri, scope = 'openid profile offline_access', key = 'tessera.oidc' } = options
  const issuer = new URL(options.issuer)
  if (issuer.protocol !== 'https:' && options.allowInsecureRequests !== true)
    throw new TypeError(`oidcAuthority: the issuer ${issuer.href} is not https: (pass allowInsecureRequests: true for local development only)`)
  const client: oauth.Client = { client_id: clientId }
  const clientAuth = options.clientSecret ? oauth.ClientSecretBasic(options.clientSecret) : oauth.None()
  const storage = options.storage ?? sessionStorageStore()
  const navigate = options.navigate ?? ((url: string) => globalThis.location.assign(url))
  const currentUrl = options.currentUrl ?? (() => globalThis.location.href)
  const replaceUrl = options.replaceUrl ?? ((url: string) => globalThis.history.replaceState(globalThis.history.state, '', url))
  const mapUser = options.mapUser ?? ((claims: OidcUser) => claims as User)
  const renewing = options.silentRenew === false ? null : options.silentRenew
  const silent = renewing === null ? null : { redirectUri: renewing?.redirectUri ?? redirectUri, frame: renewing?.frame ?? hiddenFrame }

  // Looked up per call: importing this module touches no global.
  const http = (signal?: AbortSignal) => ({
    signal,
    [oauth.customFetch]: (url: string, init: RequestInit) => (options.fetch ?? globalThis.fetch)(url, init),
    [oauth.allowInsecureRequests]: options.allowInsecureRequests === true,
  })

  // ── discovery: one request, cached; a failure is forgotten so the next call tries again ──
  let metadata: Promise<oauth.AuthorizationServer> | null = null
  function discover(): Promise<oauth.AuthorizationServer> {
    metadata ??= send(() => oauth.discoveryRequest(issuer, { ...http(), algorithm: 'oidc' }))
      .then((res) => oauth.processDiscoveryResponse(issuer, res))
      .catch((e) => {
        metadata = null
        if (isTesseraError(e)) throw e
        // Reached, but not an OpenID provider at this issuer (404, wrong `issuer`): a setup error, not retried.
        throw new TesseraError('INVALID_TOKEN_RESPONSE', `OIDC discovery of ${issuer.href} failed: ${(e as Error)?.message}`, {
          cause: safeCause(e),
          field: (e as { cause?: { attribute?: string } })?.cause?.attribute ?? '(discovery)',
        })
      })
    return metadata
  }

  /** Sends a request; network failures, 408, 429 and 5xx become `NETWORK_ERROR` (transient, I6). */
  async function send(request: () => Promise<Response>, signal?: AbortSignal): Promise<Response> {
    let res: Response
    try {
      res = await request()
    } catch (cause) {
      if (signal?.aborted) throw signal.reason
      if ((cause as Error)?.name === 'AbortError' || (cause as Error)?.name === 'TimeoutError') throw cause
      // oauth4webapi refusing to send (an http: endpoint, a missing endpoint) is a setup error, not the network.
      if (cause instanceof oauth.OperationProcessingError || typeof (cause as { code?: unknown })?.code === 'string') throw cause
      throw new TesseraError('NETWORK_ERROR', 'The OpenID provider could not be reached', { cause: safeCause(cause) })
    }
    const s = res.status
    if (s === 408 || s === 429 || s >= 500) {
      await res.body?.cancel().catch(() => {})
      throw new TesseraError('NETWORK_ERROR', `The OpenID provider answered ${s}`, { status: s, retryAfter: retryAfter(res) })
    }
    return res
  }

  /**
   * A refused or malformed answer, as the error the engine understands. Decided by the HTTP
   * `status` of the answer, not by how far its body parsed: providers answer a refused refresh
   * token with an empty 400, a `text/plain` 401 or an HTML 403 as often as with OAuth JSON.
   */
  function refused(e: unknown, code: 'LOGIN_FAILED' | 'INVALID_GRANT', what: string, grant: string, status?: number): TesseraError {
    if (isTesseraError(e)) return e
    const words = providerWords(e)
    const said = words.error ? [words.error, words.error_description].filter(Boolean).join(': ') : isRefusal(status) ? `the provider answered ${status}` : (e as Error)?.message
    const details = { cause: safeCause(e), status, field: faultyField(e, grant, status) }
    // Refresh, revocation, userinfo: the provider saying no ends the session; a malformed 2xx is reported, not retried.
    return new TesseraError(code === 'LOGIN_FAILED' || isRefusal(status) ? code : 'INVALID_TOKEN_RESPONSE', `${what}: ${said}`, details)
  }

  // oauth4webapi's DPoP handle for the key in use (a new key after a logout gets a new one; nonces are kept per handle).
  let proving: { pair: CryptoKeyPair; DPoP: oauth.DPoPHandle } | null = null
  /**
   * Sends a request (with a DPoP proof when `dpop` is set) and reads the answer with `read`. A
   * provider asking for its DPoP nonce gets the request once more; any other failure is `fail`'s.
   */
  async function exchange<T>(request: (dpop: oauth.DPoPRequestOptions) => Promise<Response>, read: (res: Response) => Promise<T>, fail: (e: unknown, status: number) => TesseraError, signal: AbortSignal): Promise<T> {
    for (let retried = false; ; retried = true) {
      const pair = await options.dpop?.keyPair()
      if (pair && proving?.pair !== pair) proving = { pair, DPoP: oauth.DPoP(client, pair) }
      const res = await send(() => request(pair ? { DPoP: proving!.DPoP } : {}), signal)
      try {
        return await read(res)
      } catch (e) {
        if (!retried && oauth.isDPoPNonceError(e)) continue
        throw fail(e, res.status)
      }
    }
  }

  // The claims of the ID token behind the latest access token this authority obtained: the subject
  // userinfo must match, and the user when there is no userinfo endpoint.
  let known: { accessToken: string; claims: OidcUser } | null = null

  /** The token response body the engine validates; an unrotated refresh token is kept. */
  function body(res: oauth.TokenEndpointResponse, previousRefreshToken?: string) {
    const claims = oauth.getValidatedIdTokenClaims(res)
    if (claims) known = { accessToken: res.access_token, claims: claims as OidcUser }
    return {
      access_token: res.access_token,
      token_type: res.token_type,
      expires_in: res.expires_in,
      // No refresh token: the session's subject stands in for one, and refreshes renew silently.
      refresh_token: res.refresh_token ?? previousRefreshToken ?? (silent && claims ? toHandle(claims.sub) : undefined),
      id_token: res.id_token,
      scope: res.scope,
    }
  }

  /** In the renewal frame, a page at the silent redirect URI is a callback too: the parent's. */
  const inFrame = () => !!silent && inSilentFrame()

  function callbackUrl(): URL | null {
    const url = new URL(currentUrl())
    const p = url.searchParams
    return (samePage(url, redirectUri) || (inFrame() && samePage(url, silent!.redirectUri))) && (p.has('code') || p.has('error')) ? url : null
  }

  /** An authorization request with a fresh `state`, `nonce` and PKCE verifier (S256): a login's, or a silent renewal's. */
  async function authorizationRequest(as: oauth.AuthorizationServer, redirect: string, extra?: Record<string, string>) {
    if (!as.authorization_endpoint) throw new TesseraError('LOGIN_FAILED', 'The provider has no authorization_endpoint', { field: 'authorization_endpoint' })
    const tx: Transaction = { state: oauth.generateRandomState(), nonce: oauth.generateRandomNonce(), verifier: oauth.generateRandomCodeVerifier() }
    const url = new URL(as.authorization_endpoint)
    const params = {
      ...extra,
      client_id: clientId,
      redirect_uri: redirect,
      response_type: 'code',
      scope,
      state: tx.state,
      nonce: tx.nonce,
      code_challenge: await oauth.calculatePKCECodeChallenge(tx.verifier),
      code_challenge_method: 'S256',
    }
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v)
    return { url, tx }
  }

  /**
   * Renews a session that has no refresh token: `prompt=none` in a hidden frame, the code exchanged
   * like a login's, and the ID token's subject must be the session's. The transaction stays in
   * memory: the frame shares this tab's storage, and a login in progress keeps its own.
   */
  async function renew(handle: string | undefined, signal: AbortSignal) {
    const sub = subjectOf(handle)
    if (!silent || sub === undefined) throw new TesseraError('INVALID_GRANT', 'No refresh token (was offline_access granted?)', { field: 'refresh_token' })
    const as = await discover()
    const mode = as.response_modes_supported?.includes('web_message') ? 'web_message' : 'query'
    const { url, tx } = await authorizationRequest(as, silent.redirectUri, { prompt: 'none', response_mode: mode })
    if (signal.aborted) throw signal.reason
    let answer: URL
    try {
      answer = new URL(await silent.frame({ url: url.href, redirectUri: silent.redirectUri, signal }))
    } catch (e) {
      if (signal.aborted) throw signal.reason
      throw isTesseraError(e) ? e : new TesseraError('NETWORK_ERROR', 'The silent renew frame failed', { cause: safeCause(e) })
    }
    let params: URLSearchParams
    try {
      if (!samePage(answer, silent.redirectUri)) throw new TesseraError('INVALID_TOKEN_RESPONSE', 'Silent renew answer not at the silent redirect URI', { field: 'redirect_uri' })
      params = oauth.validateAuthResponse(as, client, answer, tx.state)
    } catch (e) {
      if (!(e instanceof oauth.AuthorizationResponseError)) throw refused(e, 'INVALID_GRANT', 'Silent renew answer rejected', 'code')
      // login_required, interaction_required, consent_required, …: the provider will not renew without the user.
      const code = TRANSIENT.includes(e.error) ? 'NETWORK_ERROR' : 'INVALID_GRANT'
      throw new TesseraError(code, `Silent renew refused: ${[e.error, e.error_description].filter(Boolean).join(': ')}`, { cause: safeCause(e), field: 'error' })
    }
    // The same exchange as a login's: with DPoP, the renewed tokens are bound to the page's key too.
    const result = await exchange(
      (dpop) => oauth.authorizationCodeGrantRequest(as, client, clientAuth, params, silent.redirectUri, tx.verifier, { ...http(signal), ...dpop }),
      (res) => oauth.processAuthorizationCodeResponse(as, client, res, { expectedNonce: tx.nonce, requireIdToken: true }),
      (e, status) => refused(e, 'INVALID_GRANT', 'Silent renew code exchange rejected', 'code', status),
      signal,
    )
    // Another user signed in at the provider meanwhile: their tokens are not this session's.
    if (oauth.getValidatedIdTokenClaims(result)!.sub !== sub)
      throw new TesseraError('INVALID_GRANT', 'Silent renew signed in another user', { field: 'sub' })
    return body(result)
  }

  async function readTransaction(): Promise<Transaction | null> {
    try {
      const raw = await storage.get(key)
      await storage.remove(key) // single use, before anything can fail or wait
      const tx: unknown = raw ? JSON.parse(raw) : null
      const ok = (v: unknown) => typeof v === 'string' && v.length > 0
      if (tx && typeof tx === 'object' && ['state', 'nonce', 'verifier'].every((k) => ok((tx as Record<string, unknown>)[k]))) return tx as Transaction
    } catch {}
    return null
  }

  function pageLeft(signal: AbortSignal): Promise<never> {
    return new Promise<never>((_, reject) => {
      const target = globalThis as { addEventListener?: typeof addEventListener; removeEventListener?: typeof removeEventListener }
      const stop = (error: unknown) => {
        signal.removeEventListener('abort', onAbort)
        target.removeEventListener?.('pageshow', onShow)
        reject(error)
      }
      const onAbort = () => stop(signal.reason)
      // Back from the provider without a callback: this page (restored from bfcache) is still waiting.
      const onShow = (event: Event) => {
        if ((event as PageTransitionEvent).persisted) stop(new TesseraError('ABORTED', 'The login redirect was abandoned'))
      }
      if (signal.aborted) return onAbort()
      signal.addEventListener('abort', onAbort, { once: true })
      target.addEventListener?.('pageshow', onShow)
    })
  }

  return {
    async login(request, signal) {
      const { url, tx } = await authorizationRequest(await discover(), redirectUri, request?.params)
      try {
        await storage.set(key, JSON.stringify(tx))
      } catch (cause) {
        throw new TesseraError('LOGIN_FAILED', 'Could not keep the login state across the redirect (storage refused)', { cause })
      }
      if (signal.aborted) throw signal.reason
      const waiting = pageLeft(signal)
      navigate(url.href)
      return waiting
    },

    hasCallback: () => callbackUrl() !== null,

    async restore(signal) {
      const url = callbackUrl()
      if (!url) return null
      if (inFrame()) {
        // The parent's silent renewal: its answer goes to the parent, untouched; this frame starts no session.
        handOver(url.href)
        return null
      }
      // Clean the URL first: a reload or a shared link must not replay the callback.
      const clean = new URL(url)
      for (const k of CALLBACK_PARAMS) clean.searchParams.delete(k)
      replaceUrl(clean.href)
      const tx = await readTransaction()
      if (!tx)
        throw new TesseraError('LOGIN_FAILED', 'OIDC callback rejected: no login is waiting for it (already used, or started in another tab)', { field: 'state' })
      const as = await discover()
      let params: URLSearchParams
      try {
        params = oauth.validateAuthResponse(as, client, url, tx.state)
      } catch (e) {
        throw refused(e, 'LOGIN_FAILED', 'OIDC callback rejected', 'code')
      }
      return exchange(
        (dpop) => oauth.authorizationCodeGrantRequest(as, client, clientAuth, params, redirectUri, tx.verifier, { ...http(signal), ...dpop }),
        async (res) => body(await oauth.processAuthorizationCodeResponse(as, client, res, { expectedNonce: tx.nonce, requireIdToken: scope.split(' ').includes('openid') })),
        (e, status) => refused(e, 'LOGIN_FAILED', 'OIDC code exchange rejected', 'code', status),
        signal,
      )
    },

    async refresh(refreshToken, signal, request?: TokenRequest) {
      // A token per audience: its audience (RFC 8707 `resource`, or `audience`) and scope go with the refresh token.
      const additionalParameters: Record<string, string> = {}
      if (request?.audience) additionalParameters[options.audienceParameter ?? 'resource'] = request.audience
      if (request?.scope) additionalParameters.scope = request.scope
      if (!refreshToken || isHandle(refreshToken)) {
        if (request) throw new TesseraError('INVALID_GRANT', 'No refresh token for a token per audience', { field: 'refresh_token' })
        return renew(refreshToken, signal)
      }
      const as = await discover()
      return exchange(
        (dpop) => oauth.refreshTokenGrantRequest(as, client, clientAuth, refreshToken, { ...http(signal), ...dpop, additionalParameters }),
        async (res) => body(await oauth.processRefreshTokenResponse(as, client, res), refreshToken),
        (e, status) => refused(e, 'INVALID_GRANT', 'Refresh rejected', 'refresh_token', status),
        signal,
      )
    },

    async logout(tokens: TokenSet, signal?: AbortSignal) {
      const as = await discover()
      let failure: unknown
      let status: number | undefined
      const token = tokens.refreshToken && !isHandle(tokens.refreshToken) ? tokens.refreshToken : tokens.accessToken
      if (as.revocation_endpoint)
        try {
          const res = await send(() => oauth.revocationRequest(as, client, clientAuth, token, http(signal)), signal)
          status = res.status
          await oauth.processRevocationResponse(res)
        } catch (e) {
          failure = refused(e, 'INVALID_GRANT', 'Revocation failed', 'token', status)
        }
      if (options.endProviderSession !== false && as.end_session_endpoint) {
        const url = new URL(as.end_session_endpoint)
        url.searchParams.set('client_id', clientId)
        if (tokens.idToken) url.searchParams.set('id_token_hint', tokens.idToken)
        if (options.postLogoutRedirectUri) url.searchParams.set('post_logout_redirect_uri', options.postLogoutRedirectUri)
        navigate(url.href)
      }
      if (failure) throw failure
    },

    async fetchUser(accessToken, signal) {
      const as = await discover()
      const claims = known?.accessToken === accessToken ? known.claims : null
      if (!as.userinfo_endpoint) {
        if (claims) return mapUser(claims)
        throw new TesseraError('INVALID_TOKEN_RESPONSE', 'No userinfo endpoint and no ID token for this access token', { field: 'id_token' })
      }
      return exchange(
        (dpop) => oauth.userInfoRequest(as, client, accessToken, { ...http(signal), ...dpop }),
        async (res) => mapUser((await oauth.processUserInfoResponse(as, client, claims?.sub ?? oauth.skipSubjectCheck, res)) as OidcUser),
        (e, status) => refused(e, 'INVALID_GRANT', 'Userinfo refused', 'access_token', status),
        signal,
      )
    },
  }
}

export { handleSilentCallback, type SilentFrame, type SilentFrameRequest, type SilentRenewOptions } from './silent-renew.js'
export { withProviders, type ProviderLogin, type ProvidersAuthority, type WithProvidersOptions } from './providers.js'
