import type { TesseraError } from './errors.js'
import type { AuthEventType, AuthStatus } from './machine.js'
import type { TokenSet } from './tokens.js'
import type { RetryPolicy } from './retry.js'
import type { Clock } from '../ports/clock.js'
import type { EnvironmentPort } from '../ports/environment.js'
import type { StoragePort } from '../ports/storage.js'
import type { ChannelPort } from '../ports/channel.js'
import type { LockPort } from '../ports/lock.js'
import type { AudiencePort } from './audiences.js'

/**
 * The token server, as the engine needs it. The engine never knows URLs or response shapes:
 * `login`, `refresh` and `restore` resolve with the raw JSON body, which the engine validates.
 *
 * To end a session, throw a {@link TesseraError} `INVALID_GRANT` from `refresh`; throw
 * `NETWORK_ERROR`/`TIMEOUT` (with `retryAfter` when known) for anything transient.
 */
export interface Authority<User = unknown, Credentials = unknown> {
  /** Exchanges credentials for a token response body. */
  login(credentials: Credentials, signal: AbortSignal): Promise<unknown>
  /**
   * Exchanges a refresh token (absent for cookie sessions) for a token response body. With
   * `request` (tokens per audience, {@link AuthOptions.audiences}), asks for an access token for that
   * audience and scope (RFC 8707 `resource`, or the provider's `audience` parameter); without it, the
   * session's own. An authority that ignores `request` keeps working for the session's own tokens.
   */
  refresh(refreshToken: string | undefined, signal: AbortSignal, request?: TokenRequest): Promise<unknown>
  /**
   * Revokes the session on the server. Best effort: the local session ends regardless, and a
   * failure (or no answer within `retry.timeout`) is reported as a `logout-error` event.
   */
  logout?(tokens: TokenSet, signal: AbortSignal): Promise<void>
  /** Loads the user profile with a fresh access token. */
  fetchUser?(accessToken: string, signal: AbortSignal): Promise<User>
  /**
   * Finds a session when storage has none: a refresh cookie, an OIDC callback in the URL.
   * Resolves with a token response body, or `null` when there is no session.
   */
  restore?(signal: AbortSignal): Promise<unknown>
  /**
   * Whether this page load carries a login callback (OIDC `code`/`state` in the URL). When true,
   * `restore` runs first, before storage and other tabs are consulted.
   */
  hasCallback?(): boolean
}

/** Progress of one user-visible action, for forms and buttons. */
export interface ActionState {
  status: 'idle' | 'pending' | 'fulfilled' | 'rejected'
  error: TesseraError | null
}

/** The actions whose progress the snapshot tracks; `user` is the profile load after a login, a new subject or `reloadUser()`. */
export type ActionName = 'login' | 'logout' | 'refresh' | 'user'

/**
 * An immutable view of the session, replaced only when something changes (safe for
 * `useSyncExternalStore`). Holds no token.
 */
export interface AuthSnapshot<User = unknown> {
  readonly status: AuthStatus
  /** A refresh is running; orthogonal to `status`. */
  readonly refreshing: boolean
  readonly user: User | null
  /** Why there is no session, or the last refresh failure. Never contains a token. */
  readonly error: TesseraError | null
  /** Local-clock expiry of the access token (ms since epoch), `null` if unknown or no session. */
  readonly expiresAt: number | null
  /** Token generation: increments each time the session's tokens change (a new access token, or a refresh token rotated by an audience's refresh). */
  readonly generation: number
  /** Per-action progress: `actions.login.status === 'pending'` while a login runs. */
  readonly actions: Readonly<Record<ActionName, Readonly<ActionState>>>
  /** Derived: `status === 'authenticated'`. */
  readonly isAuthenticated: boolean
  /** Derived on read: the access token is inside the leeway (or past expiry). */
  readonly isExpiringSoon: boolean
}

/** Names of the events `auth.on` accepts. */
export type AuthEventName =
  | 'login'
  | 'logout'
  | 'logout-error'
  | 'refresh'
  | 'refresh-error'
  | 'expired'
  | 'unauthorized'
  | 'transition'
  | 'user'
  | 'user-error'
  | 'storage-error'

/** What an event handler receives. Never contains a token. */
export interface AuthNotice<User = unknown> {
  type: AuthEventName
  /** The snapshot after the event. */
  snapshot: AuthSnapshot<User>
  /** For `refresh-error`, `expired`, `user-error`, `storage-error`, `logout-error`. */
  error?: TesseraError
  /** For `transition`: the status left, and the machine event that caused it. */
  from?: AuthStatus
  event?: AuthEventType
  /** For `unauthorized`: the token generation the rejected request carried. */
  generation?: number
}

/** A token to send, stamped with its generation (P2). */
export interface Grant {
  token: string
  generation: number
  /** The headers that carry the token, shaped by {@link AuthOptions.placement}: what transports add to a request. */
  headers: Readonly<Record<string, string>>
  /**
   * Set by a {@link ProofPort} (DPoP): reads the answer to a request sent with this grant (a
   * `Response`, or anything with `status` and `headers`) and keeps the server's new nonce. True when
   * the server asked for the same request again with that nonce (`use_dpop_nonce`): transports send
   * it once more with a new grant (a second time, the answer is delivered as is), and never count it
   * as a 401 (no refresh; the request keeps its one replay).
   */
  retry?(response: { status: number; headers: unknown }): boolean
}

/**
 * Which access token: for an API (`audience`, RFC 8707's `resource`) and a `scope`. Neither: the
 * session's own token. Needs {@link AuthOptions.audiences}.
 * @example `auth.getAccessToken({ audience: 'https://billing.example/', scope: 'invoices:read' })`
 */
export interface TokenRequest {
  /** The API the token is for: sent as `resource` (RFC 8707) or `audience`, as the authority is set up. */
  audience?: string
  /** The scope asked for, space-separated. @defaultValue the server's default for the audience */
  scope?: string
}

/**
 * A request a grant is asked for: transports pass its method and URL so that a {@link ProofPort} can
 * prove it, and so that {@link AuthOptions.audiences} picks the token of the URL's origin. An explicit
 * `audience` or `scope` asks for that token whatever the URL.
 */
export interface GrantOptions extends WaitOptions, TokenRequest {
  /** The request's method. @defaultValue `'GET'` */
  method?: string
  /** The request's URL, absolute or relative to the page. Without it no proof is made. */
  url?: string
}

/**
 * Binds requests to a key the page holds (DPoP, RFC 9449): `createDpop()` from `tessera/dpop` is one.
 * @example `createAuth({ authority, proof: createDpop() })`
 */
export interface ProofPort {
  /**
   * Called once by {@link createAuth} with the engine (to hear its events). Returns what makes a
   * request's grant: given the token's grant and the request, resolves the grant to send, whose
   * headers carry the token and the proof.
   */
  attach(auth: Pick<Auth, 'on'>): (grant: Grant, request: GrantOptions) => Promise<Grant>
}

/**
 * Where transports put the access token.
 * @example `{ header: 'X-Access-Token', scheme: '' }` sends `X-Access-Token: <token>`
 */
export interface TokenPlacement {
  /** The header name. @defaultValue `'Authorization'` */
  header?: string
  /** The scheme written before the token; `''` sends the token alone. @defaultValue `'Bearer'` */
  scheme?: string
}

/** Options of {@link createAuth}. */
export interface AuthOptions<User = unknown, Credentials = unknown> {
  /** The token server. */
  authority: Authority<User, Credentials>
  /** Session key: storage key and cross-tab scope. @defaultValue `'tessera'` */
  key?: string
  /** Where the session survives reloads. @defaultValue memory (tokens never persisted) */
  storage?: StoragePort
  /** Refresh this long before expiry, in ms (capped at a quarter of the token's lifetime). @defaultValue 60 000 */
  leeway?: number
  /** Refresh retry, timeout and cooldown. */
  retry?: Partial<RetryPolicy>
  /** How every transport sends the token. @defaultValue `Authorization: Bearer <token>` */
  placement?: TokenPlacement
  /**
   * Proves every request that carries the token (DPoP: `createDpop()` from `tessera/dpop`); its
   * grants replace `placement`. @defaultValue none: the token alone (`placement`)
   */
  proof?: ProofPort
  /** Origins (besides the page's own and relative URLs) that may receive the token (I5). */
  allowedOrigins?: string[]
  /**
   * Tokens per audience (`createAudiences()`): `auth.getAccessToken({ audience, scope })`, and
   * transports sending each origin it maps the token of that origin's API (those origins are
   * allowed). @defaultValue none: one token, the session's
   */
  audiences?: AudiencePort
  /** The `fetch` used by `auth.fetch`. @defaultValue `globalThis.fetch`, looked up per call */
  fetch?: typeof fetch
  /** @defaultValue the system clock */
  clock?: Clock
  /** @defaultValue page lifecycle events in browsers, nothing elsewhere */
  environment?: EnvironmentPort
  /** Source of jitter, `[0, 1)`. @defaultValue `Math.random` */
  random?: () => number
  /**
   * Messages between the tabs of this key; `null` for single-tab mode.
   * @defaultValue a `BroadcastChannel` named `tessera:<key>` where it exists
   */
  channel?: ChannelPort | null
  /**
   * The exclusive refresh lock shared by tabs; `null` for a per-tab lock.
   * @defaultValue Web Locks where they exist
   */
  lock?: LockPort | null
  /** How long a new tab waits for a peer to hand it the live session, in ms. @defaultValue 150 */
  joinTimeout?: number
  /**
   * How long a tab waits for the refresh lock without hearing the holder's heartbeat before it
   * goes ahead without it (a frozen or vanished holder, P9), in ms. @defaultValue `retry.timeout`
   */
  lockPatience?: number
}

/** Per-request option of `auth.fetch`: `'none'` sends a visitor request untouched. */
export interface AuthRequestInit extends RequestInit {
  auth?: 'required' | 'none'
}

/** Waiting for a token can be cancelled. */
export interface WaitOptions {
  signal?: AbortSignal | null
}

/** The session engine. Create one with {@link createAuth}. */
export interface Auth<User = unknown, Credentials = unknown> {
  /** The current snapshot; the same object until something changes. */
  getSnapshot(): AuthSnapshot<User>
  /** Calls `listener` after every snapshot change; returns the unsubscribe function. */
  subscribe(listener: () => void): () => void
  /** Listens to one event; returns the function that stops listening. Handlers may call any verb (P16). */
  on(event: AuthEventName, handler: (notice: AuthNotice<User>) => void): () => void
  /**
   * Logs in. Resolves once authenticated (and the user loaded, if the authority can).
   * @throws {@link TesseraError} as thrown by the authority, `INVALID_TOKEN_RESPONSE`, or `ABORTED` when a newer login or a logout supersedes it.
   */
  login(credentials: Credentials): Promise<void>
  /**
   * Ends the session at once (waiting requests reject with `LOGGED_OUT`), then tells the server.
   * Resolves once the server answered or `retry.timeout` passed; never rejects: a server that
   * refuses or cannot be reached is a `logout-error` event (the local session is over regardless).
   */
  logout(): Promise<void>
  /**
   * Refreshes now. Concurrent callers share one refresh (I1) and get the same promise.
   * @throws {@link TesseraError} `SESSION_EXPIRED`, `NETWORK_ERROR`, `TIMEOUT`, `LOGGED_OUT`, `UNAUTHENTICATED`.
   */
  refresh(): Promise<void>
  /**
   * Resolves an access token that is valid now, waiting for or starting a refresh when needed. With
   * `audience` or `scope`, that audience's token (one cached per audience and scope, refreshed
   * single-flight from the session's refresh token; {@link AuthOptions.audiences}).
   * @throws TypeError for `audience` or `scope` without {@link AuthOptions.audiences}; otherwise as {@link Auth.getGrant}.
   */
  getAccessToken(options?: WaitOptions & TokenRequest): Promise<string>
  /**
   * Like {@link Auth.getAccessToken}, with the token's generation and the headers to send, for
   * transports. Given the request's `method` and `url`, the grant proves that request when the
   * engine has a {@link AuthOptions.proof}.
   */
  getGrant(options?: GrantOptions): Promise<Grant>
  /**
   * For transports: a request sent with `generation` got 401. Resolves the token to replay with:
   * the current one if it is newer (no refresh, P2), else a refreshed one (single flight, P1).
   * Pass the request's `url` (or its `audience`) as for {@link Auth.getGrant}: an audience's token is
   * refreshed, not the session's.
   */
  handleUnauthorized(generation: number, options?: GrantOptions): Promise<Grant>
  /** Whether a token may be sent to `url` (relative, the page's origin, or `allowedOrigins`). */
  isAllowedUrl(url: string | URL): boolean
  /** `fetch` with the token attached and 401s refreshed and replayed once. */
  fetch(input: RequestInfo | URL, init?: AuthRequestInit): Promise<Response>
  /** Resolves when the session has been restored (status left `initializing`). */
  ready(): Promise<void>
  /**
   * Loads the user profile again with the current token (tracked as `actions.user`).
   * @throws {@link TesseraError} the authority's error (also a `user-error` event), or `UNAUTHENTICATED` without a session.
   */
  reloadUser(): Promise<void>
  /** Sets an action's progress back to `idle` (e.g. when a form is reopened). */
  resetAction(name: ActionName): void
  /** Stops timers and listeners; waiting callers reject with `DISPOSED`. */
  dispose(): void
}
