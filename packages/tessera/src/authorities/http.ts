import { TesseraError, type Authority, type TesseraErrorCode, type TokenPlacement, type TokenRequest, type TokenSet } from '../index.js'
import type { Dpop } from '../proof/dpop.js'
import { retryAfter } from './retry-after.js'

/** Paths of a JSON token server, relative to `baseUrl`. `me: null` means the server has no profile endpoint. */
export interface HttpEndpoints {
  login: string
  refresh: string
  logout: string
  me: string | null
  register: string
  forgotPassword: string
  resetPassword: string
  changePassword: string
}

/**
 * How one call is sent. An object body goes as JSON, or as an HTML form with `encoding: 'form'`.
 * @example FastAPI's OAuth2 password form: `{ encoding: 'form', body: (c) => ({ username: c.email, password: c.password }) }`
 */
export interface HttpRequest<Input> {
  /** `'form'` sends `application/x-www-form-urlencoded`. @defaultValue `'json'` */
  encoding?: 'json' | 'form'
  /** The fields to send, from what Tessera has. */
  body?(input: Input): Record<string, unknown>
}

/**
 * A token answer in OAuth 2 names (RFC 6749 §5.1), what {@link HttpAuthorityOptions.mapTokens}
 * returns; `token`, `refreshToken` and `expiresIn` are read as well.
 */
export interface TokenFields {
  access_token: string
  refresh_token?: string
  /** Lifetime of the access token in seconds (without it, a JWT's `exp`). */
  expires_in?: number
  id_token?: string
  /** The user, when the server sends it with the login: given to `mapUser`, and no profile call is made. */
  user?: unknown
}

/** Options of {@link httpAuthority}. */
export interface HttpAuthorityOptions<User, Credentials = { email: string; password: string }> {
  /** Where the endpoints live, e.g. `'/auth'` or `'https://api.example.com/api/auth'`. */
  baseUrl: string
  /** Override any path; defaults match the Tessera reference server (`/login`, `/refresh`, `/me`, …). */
  endpoints?: Partial<HttpEndpoints>
  /**
   * Where the refresh token travels: in request bodies, or in an httpOnly cookie the server sets
   * (then requests use `credentials: 'include'` and a reload restores the session by refreshing).
   * @defaultValue `'body'`
   */
  refreshToken?: 'body' | 'cookie'
  /** The login request. @defaultValue the credentials as JSON */
  login?: HttpRequest<Credentials>
  /**
   * The refresh request. A refresh for a token per audience (`createAudiences()`) adds the
   * audience (named by `audienceParameter`) and `scope` to its fields.
   * @defaultValue `{ refresh_token }` as JSON (`{}` with a cookie)
   */
  refresh?: HttpRequest<string | undefined>
  /**
   * The field naming the audience of a token per audience in a refresh: `audience` (Auth0 and most
   * JSON backends) or `resource` (RFC 8707). @defaultValue `'audience'`
   */
  audienceParameter?: 'audience' | 'resource'
  /** The logout request, sent with the access token. @defaultValue `{ refresh_token }` as JSON (`{}` with a cookie) */
  logout?: HttpRequest<TokenSet>
  /**
   * Reads the answer of login and refresh into token fields, for any shape.
   * @defaultValue the answer as is (OAuth names, or `token`/`refreshToken`/`expiresIn`; its `user` taken)
   * @example `mapTokens: (a: { data: { tokens: { access: string; refresh: string } } }) => ({ access_token: a.data.tokens.access, refresh_token: a.data.tokens.refresh })`
   */
  mapTokens?(answer: unknown): TokenFields
  /** Shapes the user (the `me` answer, or the login's `user`) into yours. @defaultValue as is */
  mapUser?(json: unknown): User
  /** How this authority sends the access token (to `me` and `logout`): pass the engine's. @defaultValue `Authorization: Bearer <token>` */
  placement?: TokenPlacement
  /** Extra headers for every call (never the token: that is added where needed). */
  headers?: Record<string, string>
  /** @defaultValue `globalThis.fetch`, looked up per call */
  fetch?: typeof fetch
  /**
   * DPoP (`createDpop()` from `tessera/dpop`, the one given to the engine as `proof`): every call
   * carries a proof, answered once more when the server asks for its nonce, and the access token
   * goes with the `DPoP` scheme (to `me` and `logout`).
   */
  dpop?: Pick<Dpop, 'fetch'>
}

/** What {@link httpAuthority} returns: an {@link Authority} plus the account verbs UIs need. */
export interface HttpAuthority<User, Credentials> extends Authority<User, Credentials> {
  /** Creates an account. Resolves the server's JSON. */
  register(input: Record<string, unknown>): Promise<unknown>
  /** Asks for a reset link. The server answers the same whether or not the email exists. */
  forgotPassword(email: string): Promise<void>
  /** Sets a new password with a reset token. */
  resetPassword(token: string, password: string): Promise<void>
  /** Changes the password of the signed-in user. */
  changePassword(accessToken: string, currentPassword: string, newPassword: string): Promise<void>
}

const defaults: HttpEndpoints = {
  login: '/login',
  refresh: '/refresh',
  logout: '/logout',
  me: '/me',
  register: '/register',
  forgotPassword: '/forgot-password',
  resetPassword: '/reset-password',
  changePassword: '/change-password',
}

/**
 * What the server said, in the fields backends use: OAuth's `error_description`, FastAPI's
 * `detail` (a string, or a list of `{ loc, msg }`), `message`, `error` (or its `message`).
 */
function serverWords(json: unknown): string | undefined {
  const j = (json ?? {}) as { error_description?: unknown; detail?: unknown; message?: unknown; error?: { message?: unknown } }
  const detail = Array.isArray(j.detail)
    ? j.detail.map((d: { loc?: unknown[]; msg?: unknown }) => (Array.isArray(d?.loc) && d.loc.length ? `${d.loc.at(-1)}: ${d.msg}` : d?.msg)).join('; ')
    : j.detail
  return [j.error_description, detail, j.message, j.error, j.error?.message].find((x): x is string => typeof x === 'string' && x.length > 0)
}

/** A request body: `fields` as JSON, or as an HTML form. */
function encode(fields: Record<string, unknown>, encoding: HttpRequest<never>['encoding'] = 'json') {
  if (encoding === 'json') return { type: 'application/json', body: JSON.stringify(fields) }
  const form = new URLSearchParams()
  for (const [k, v] of Object.entries(fields)) if (v != null) form.append(k, typeof v === 'object' ? JSON.stringify(v) : String(v))
  return { type: 'application/x-www-form-urlencoded', body: form.toString() }
}

/** The top-level field names of an answer (never its values), for errors that say what came back. */
const namesIn = (json: unknown) => (json && typeof json === 'object' ? Object.keys(json).join(', ') || 'nothing' : typeof json)

/**
 * An authority for the token endpoints of your backend: the Tessera reference server by default,
 * and with options only (no code) most hand-rolled ones: a FastAPI OAuth2 password form
 * (`login: { encoding: 'form' }`), `{ token, refreshToken, expiresIn }` or nested answers
 * (`mapTokens`), other request fields (`refresh`/`logout` `body`), another token header
 * (`placement`), the user sent with the login (then `me` is not called).
 *
 * Errors carry the server's words (`error_description`, FastAPI's `detail`, `message`, `error`)
 * as their message, and the `status`: a refused login (a 4xx: 400, 401, 403, FastAPI's 422, …)
 * is `LOGIN_FAILED` (`retryAfter` when throttled); a refresh answered 400/401/403 is
 * `INVALID_GRANT` whatever the body (ends the session); 408/429/5xx and network failures are
 * `NETWORK_ERROR` (retried; `retryAfter` honoured); an answer that is not JSON or has no access
 * token, and a 404/405 (no such endpoint: a wrong URL), are `INVALID_TOKEN_RESPONSE`. A logout
 * the server refuses rejects (the engine reports it as a `logout-error` event).
 *
 * @example
 * ```ts
 * // FastAPI: OAuth2PasswordRequestForm at /token, a JSON { refresh_token } at /refresh
 * const authority = httpAuthority({ baseUrl: '/api', endpoints: { login: '/token', me: '/users/me' }, login: { encoding: 'form' } })
 * const auth = createAuth({ authority })
 * await auth.login({ username: 'ada', password })
 * ```
 */
export function httpAuthority<User = unknown, Credentials = { email: string; password: string }>(
  options: HttpAuthorityOptions<User, Credentials>,
): HttpAuthority<User, Credentials> {
  const paths = { ...defaults, ...options.endpoints }
  const cookie = options.refreshToken === 'cookie'
  const base = options.baseUrl.replace(/\/$/, '')
  const { header = 'Authorization', scheme = options.dpop ? 'DPoP' : 'Bearer' } = options.placement ?? {}
  const send = options.dpop?.fetch(options.fetch) ?? options.fetch
  const mapUser = (json: unknown) => (options.mapUser ? options.mapUser(json) : (json as User))

  /** The body of a call: the fields `request.body` makes of `input` (else `fallback`), encoded as `request` says. */
  const build = <Input>(request: HttpRequest<Input> | undefined, input: Input, fallback: Record<string, unknown>, extra?: Record<string, unknown>) =>
    encode({ ...(request?.body ? request.body(input) : fallback), ...extra }, request?.encoding)

  async function call(
    path: string,
    init: { send?: { type: string; body: string }; token?: string; signal?: AbortSignal; method?: string },
    refused: TesseraErrorCode,
  ): Promise<unknown> {
    const headers: Record<string, string> = { accept: 'application/json', ...(init.send && { 'content-type': init.send.type }), ...options.headers }
    if (init.token) headers[header] = scheme ? `${scheme} ${init.token}` : init.token
    let res: Response
    try {
      res = await (send ?? globalThis.fetch)(base + path, {
        method: init.method ?? 'POST',
        headers,
        body: init.send?.body,
        credentials: cookie ? 'include' : 'same-origin',
        signal: init.signal,
      })
    } catch (cause) {
      if ((cause as Error)?.name === 'AbortError' || init.signal?.aborted) throw init.signal?.reason ?? cause
      if (cause instanceof TesseraError) throw cause // DPOP_UNAVAILABLE: no call goes without its proof
      throw new TesseraError('NETWORK_ERROR', `Could not reach ${path}`, { cause })
    }
    // A body cut off in transit is the network's fault, not a malformed answer: retried (I6).
    const text = await res.text().catch((cause) => {
      throw new TesseraError('NETWORK_ERROR', `The answer from ${path} was cut off`, { status: res.status, cause })
    })
    let json: unknown = undefined
    try {
      json = text ? JSON.parse(text) : undefined
    } catch {}
    if (res.ok) {
      if (text && json === undefined) throw new TesseraError('INVALID_TOKEN_RESPONSE', `${path} answered ${res.status} with a body that is not JSON`, { status: res.status, field: '(body)' })
      return json
    }
    // Decided by the status, whatever the body: the server's words only make the message.
    const s = res.status
    const said = serverWords(json)
    const error = (json as { error?: unknown } | undefined)?.error
    const details = { status: s, retryAfter: retryAfter(res), cause: { error: typeof error === 'string' ? error : undefined, message: said } }
    const login = refused === 'LOGIN_FAILED'
    if (s === 408 || s === 429 || s >= 500) throw new TesseraError(login && s === 429 ? 'LOGIN_FAILED' : 'NETWORK_ERROR', said ?? `${path} answered ${s}`, details)
    // A login refused (400, 401, 403, 422, …), not a login endpoint missing (404, 405: a wrong URL, a setup error).
    const definite = login ? s >= 400 && s < 500 && s !== 404 && s !== 405 : s === 400 || s === 401 || s === 403
    throw new TesseraError(definite ? refused : 'INVALID_TOKEN_RESPONSE', said ?? `${path} answered ${s}`, details)
  }

  /** A login or refresh answer as the engine reads it: through `mapTokens`, with the user it carries through `mapUser`. */
  function tokens(answer: unknown, path: string): unknown {
    let fields: TokenFields & Record<string, unknown>
    try {
      fields = (options.mapTokens ? options.mapTokens(answer) : answer) as TokenFields & Record<string, unknown>
    } catch (cause) {
      throw new TesseraError('INVALID_TOKEN_RESPONSE', `mapTokens could not read the answer of ${path} (it has: ${namesIn(answer)}): ${(cause as Error)?.message}`, { field: '(body)', cause })
    }
    if (!fields || typeof fields !== 'object') return fields // the engine names what is wrong with it
    if (fields.access_token == null && fields.token == null)
      throw new TesseraError('INVALID_TOKEN_RESPONSE', `\`access_token\` is missing from the answer of ${path} (it has: ${namesIn(fields)})${options.mapTokens ? '' : '; read it with mapTokens'}`, { field: 'access_token' })
    const { user, ...rest } = fields
    return user == null ? rest : { ...rest, user: mapUser(user) }
  }

  // A token per audience: its audience and scope go with the refresh token (fields left out when unset).
  const refresh = async (refreshToken: string | undefined, signal: AbortSignal, request?: TokenRequest) => {
    const extra = request && { [options.audienceParameter ?? 'audience']: request.audience, scope: request.scope }
    return tokens(await call(paths.refresh, { send: build(options.refresh, refreshToken, cookie ? {} : { refresh_token: refreshToken }, extra), signal }, 'INVALID_GRANT'), paths.refresh)
  }

  const authority: HttpAuthority<User, Credentials> = {
    login: async (credentials, signal) =>
      tokens(await call(paths.login, { send: build(options.login, credentials, credentials as Record<string, unknown>), signal }, 'LOGIN_FAILED'), paths.login),
    refresh,
    async logout(tokens, signal) {
      const send = build(options.logout, tokens, cookie ? {} : { refresh_token: tokens.refreshToken })
      await call(paths.logout, { send, token: tokens.accessToken, signal }, 'INVALID_GRANT')
    },
    register: (input) => call(paths.register, { send: encode(input) }, 'LOGIN_FAILED'),
    async forgotPassword(email) {
      await call(paths.forgotPassword, { send: encode({ email }) }, 'LOGIN_FAILED')
    },
    async resetPassword(token, password) {
      await call(paths.resetPassword, { send: encode({ token, password }) }, 'LOGIN_FAILED')
    },
    async changePassword(accessToken, currentPassword, newPassword) {
      await call(paths.changePassword, { send: encode({ current_password: currentPassword, new_password: newPassword }), token: accessToken }, 'LOGIN_FAILED')
    },
  }
  const me = paths.me
  if (me !== null) authority.fetchUser = async (accessToken, signal) => mapUser(await call(me, { token: accessToken, signal, method: 'GET' }, 'INVALID_GRANT'))
  if (cookie)
    // After a reload only the cookie remains: a refresh tells whether there is a session.
    authority.restore = (signal) => refresh(undefined, signal).catch((e: TesseraError) => (e.code === 'INVALID_GRANT' ? null : Promise.reject(e)))
  return authority
}
