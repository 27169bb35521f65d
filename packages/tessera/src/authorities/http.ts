import { TesseraError, type Authority, type TesseraErrorCode, type TokenSet } from '../index.js'
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

/** Options of {@link httpAuthority}. */
export interface HttpAuthorityOptions<User> {
  /** Where the endpoints live, e.g. `'/auth'` or `'https://api.example.com/api/auth'`. */
  baseUrl: string
  /** Override any path; defaults match the Tessera reference server (`/login`, `/refresh`, `/me`, …). */
  endpoints?: Partial<HttpEndpoints>
  /**
   * Where the refresh token travels: in JSON bodies, or in an httpOnly cookie the server sets
   * (then requests use `credentials: 'include'` and a reload restores the session by refreshing).
   * @defaultValue `'body'`
   */
  refreshToken?: 'body' | 'cookie'
  /** The JSON body of a refresh request. @defaultValue `{ refresh_token }` */
  refreshBody?: (refreshToken: string | undefined) => unknown
  /** Shapes the `me` response into your user. @defaultValue the JSON as is */
  mapUser?: (json: unknown) => User
  /** Extra headers for every call (never the token: that is added where needed). */
  headers?: Record<string, string>
  /** @defaultValue `globalThis.fetch`, looked up per call */
  fetch?: typeof fetch
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
 * An authority for JSON token endpoints: the Tessera reference server by default, and with
 * `endpoints`/`refreshBody`/`mapUser` most hand-rolled backends (`{ token, refreshToken,
 * expiresIn }` bodies, OAuth-style `access_token` responses, `GET /api/auth/me`).
 *
 * Errors: a refused login is `LOGIN_FAILED` (with `status`, and `retryAfter` when throttled); a
 * refresh answered 400/401/403 is `INVALID_GRANT` (ends the session); 408/429/5xx and network
 * failures are `NETWORK_ERROR` (retried; `retryAfter` honoured); a body that is not JSON is
 * `INVALID_TOKEN_RESPONSE`.
 *
 * @example
 * ```ts
 * const authority = httpAuthority({ baseUrl: '/api/auth', endpoints: { me: '/me' } })
 * const auth = createAuth({ authority })
 * ```
 */
export function httpAuthority<User = unknown, Credentials = { email: string; password: string }>(
  options: HttpAuthorityOptions<User>,
): HttpAuthority<User, Credentials> {
  const paths = { ...defaults, ...options.endpoints }
  const cookie = options.refreshToken === 'cookie'
  const base = options.baseUrl.replace(/\/$/, '')

  async function call(
    path: string,
    init: { body?: unknown; token?: string; signal?: AbortSignal; method?: string },
    refused: TesseraErrorCode,
  ): Promise<unknown> {
    const headers: Record<string, string> = { accept: 'application/json', ...options.headers }
    if (init.body !== undefined) headers['content-type'] = 'application/json'
    if (init.token) headers.authorization = `Bearer ${init.token}`
    let res: Response
    try {
      res = await (options.fetch ?? globalThis.fetch)(base + path, {
        method: init.method ?? 'POST',
        headers,
        body: init.body === undefined ? undefined : JSON.stringify(init.body),
        credentials: cookie ? 'include' : 'same-origin',
        signal: init.signal,
      })
    } catch (cause) {
      if ((cause as Error)?.name === 'AbortError' || init.signal?.aborted) throw init.signal?.reason ?? cause
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
    const s = res.status
    const described = (json as { error_description?: unknown; message?: unknown; error?: unknown } | undefined) ?? {}
    const reason = [described.error_description, described.message, described.error].find((x) => typeof x === 'string') as string | undefined
    const details = { status: s, retryAfter: retryAfter(res), cause: json }
    if (s === 408 || s === 429 || s >= 500)
      throw new TesseraError(refused === 'LOGIN_FAILED' && s === 429 ? 'LOGIN_FAILED' : 'NETWORK_ERROR', reason ?? `${path} answered ${s}`, details)
    throw new TesseraError(s === 400 || s === 401 || s === 403 ? refused : 'INVALID_TOKEN_RESPONSE', reason ?? `${path} answered ${s}`, details)
  }

  const refresh = (refreshToken: string | undefined, signal: AbortSignal) =>
    call(paths.refresh, { body: options.refreshBody ? options.refreshBody(refreshToken) : cookie ? {} : { refresh_token: refreshToken }, signal }, 'INVALID_GRANT')

  const authority: HttpAuthority<User, Credentials> = {
    login: (credentials, signal) => call(paths.login, { body: credentials, signal }, 'LOGIN_FAILED'),
    refresh,
    async logout(tokens: TokenSet) {
      await call(paths.logout, { body: cookie ? {} : { refresh_token: tokens.refreshToken }, token: tokens.accessToken }, 'INVALID_GRANT')
    },
    register: (input) => call(paths.register, { body: input }, 'LOGIN_FAILED'),
    async forgotPassword(email) {
      await call(paths.forgotPassword, { body: { email } }, 'LOGIN_FAILED')
    },
    async resetPassword(token, password) {
      await call(paths.resetPassword, { body: { token, password } }, 'LOGIN_FAILED')
    },
    async changePassword(accessToken, currentPassword, newPassword) {
      await call(paths.changePassword, { body: { current_password: currentPassword, new_password: newPassword }, token: accessToken }, 'LOGIN_FAILED')
    },
  }
  const me = paths.me
  if (me !== null)
    authority.fetchUser = async (accessToken, signal) => {
      const json = await call(me, { token: accessToken, signal, method: 'GET' }, 'INVALID_GRANT')
      return options.mapUser ? options.mapUser(json) : (json as User)
    }
  if (cookie)
    // After a reload only the cookie remains: a refresh tells whether there is a session.
    authority.restore = (signal) => refresh(undefined, signal).catch((e: TesseraError) => (e.code === 'INVALID_GRANT' ? null : Promise.reject(e)))
  return authority
}
