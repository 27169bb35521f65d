/**
 * Every failure Tessera reports, by stable code.
 *
 * - `INVALID_TOKEN_RESPONSE` — the token server answered with something that is not a token response.
 * - `INVALID_STORED_SESSION` — the storage held data Tessera did not write (treated as no session).
 * - `STORAGE_UNAVAILABLE` — the storage threw; Tessera fell back to memory.
 * - `UNAUTHENTICATED` — a token was asked for while there is no session.
 * - `SESSION_EXPIRED` — the token server definitely rejected the refresh token; log in again.
 * - `LOGGED_OUT` — the session was ended by a logout while the caller waited.
 * - `INVALID_GRANT` — thrown by authorities: the server definitely rejected a grant.
 * - `LOGIN_FAILED` — thrown by authorities: the credentials were refused.
 * - `NETWORK_ERROR` — the token server could not be reached, or answered 5xx/429 (transient).
 * - `TIMEOUT` — an attempt took longer than its timeout (transient).
 * - `BODY_NOT_REPLAYABLE` — a request with a one-shot stream body got a 401 and cannot be replayed.
 * - `ABORTED` — the action was superseded (a newer login) before it finished.
 * - `DISPOSED` — the engine was disposed while the caller waited.
 * - `DPOP_UNAVAILABLE` — DPoP was asked for where IndexedDB or WebCrypto is missing or fails: no token is sent without its proof.
 */
export type TesseraErrorCode =
  | 'INVALID_TOKEN_RESPONSE'
  | 'INVALID_STORED_SESSION'
  | 'STORAGE_UNAVAILABLE'
  | 'UNAUTHENTICATED'
  | 'SESSION_EXPIRED'
  | 'LOGGED_OUT'
  | 'INVALID_GRANT'
  | 'LOGIN_FAILED'
  | 'NETWORK_ERROR'
  | 'TIMEOUT'
  | 'BODY_NOT_REPLAYABLE'
  | 'ABORTED'
  | 'DISPOSED'
  | 'DPOP_UNAVAILABLE'

/** Extra, secret-free facts attached to a {@link TesseraError}. */
export interface TesseraErrorDetails {
  /** The underlying error, if any. */
  cause?: unknown
  /** The HTTP status that produced the error, if any. */
  status?: number
  /** For malformed input: the field or path at fault (e.g. `expires_in`). */
  field?: string
  /** For 429/503: how long the server asked us to wait, in milliseconds. */
  retryAfter?: number
  /** For `BODY_NOT_REPLAYABLE`: the 401 response that could not be replayed. */
  response?: Response
}

/**
 * The one error class of Tessera. Messages never contain tokens.
 *
 * @example
 * ```ts
 * try { await auth.fetch('/api/me') } catch (e) {
 *   if (isTesseraError(e) && e.code === 'SESSION_EXPIRED') showLogin()
 * }
 * ```
 */
export class TesseraError extends Error {
  override readonly name = 'TesseraError'
  /** Stable machine-readable code. */
  readonly code: TesseraErrorCode
  /** HTTP status behind the error, when there was one. */
  declare readonly status?: number
  /** Field at fault, for malformed input. */
  declare readonly field?: string
  /** Server-requested delay before retrying, in ms. */
  declare readonly retryAfter?: number
  /** The unreplayable response, for `BODY_NOT_REPLAYABLE`. */
  declare readonly response?: Response

  constructor(code: TesseraErrorCode, message: string, details: TesseraErrorDetails = {}) {
    super(message)
    this.code = code
    Object.assign(this, details)
  }
}

/**
 * Cross-realm check for a {@link TesseraError}, optionally of one code.
 * @example `if (isTesseraError(e, 'LOGGED_OUT')) return`
 */
export function isTesseraError(value: unknown, code?: TesseraErrorCode): value is TesseraError {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as Error).name === 'TesseraError' &&
    typeof (value as TesseraError).code === 'string' &&
    (code === undefined || (value as TesseraError).code === code)
  )
}

/** @internal shorthand used across the core. */
export const fail = (code: TesseraErrorCode, message: string, details?: TesseraErrorDetails) =>
  new TesseraError(code, message, details)
