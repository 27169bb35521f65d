import { fail } from './errors.js'

/**
 * The tokens of a session, validated. `expiresAt` is on the local clock (ms), computed from the
 * moment the response arrived — never from comparing the server's clock with ours (P13).
 */
export interface TokenSet {
  /** The bearer access token. */
  accessToken: string
  /** The refresh token, if the server sent one in the body (absent for cookie sessions). */
  refreshToken?: string
  /** The OpenID Connect ID token, if any. */
  idToken?: string
  /** Local-clock time (ms since epoch) at which the access token stops being valid; `null` if unknown. */
  expiresAt: number | null
  /** Local-clock time (ms since epoch) at which the response arrived. */
  receivedAt: number
}

/** The decoded, unverified claims of a JWT. Only for reading `exp`, `iat`, `sub`: never for trust. */
export type JwtClaims = Record<string, unknown> & { exp?: number; iat?: number; sub?: string }

const invalid = (field: string, problem: string) =>
  fail('INVALID_TOKEN_RESPONSE', `Invalid token response: \`${field}\` ${problem}`, { field })

/**
 * Decodes the payload of a JWT without verifying it. Returns `null` when `token` is not a JWT.
 *
 * @example `decodeJwt(token)?.sub`
 */
export function decodeJwt(token: string): JwtClaims | null {
  const part = token.split('.')
  if (part.length !== 3) return null
  try {
    const b64 = part[1]!.replace(/-/g, '+').replace(/_/g, '/')
    const json = decodeURIComponent(
      Array.from(atob(b64), (c) => '%' + c.charCodeAt(0).toString(16).padStart(2, '0')).join(''),
    )
    const claims: unknown = JSON.parse(json)
    return claims && typeof claims === 'object' && !Array.isArray(claims) ? (claims as JwtClaims) : null
  } catch {
    return null
  }
}

const TOKEN = /^[\x21-\x7e]+$/ // visible ASCII: anything else could split or inject a header

function token(body: Record<string, unknown>, names: string[], required: boolean): string | undefined {
  const name = names.find((n) => body[n] != null)
  if (name === undefined) {
    if (required) throw invalid(names[0]!, 'is missing')
    return undefined
  }
  const value = body[name]
  if (typeof value !== 'string' || !TOKEN.test(value)) throw invalid(name, 'must be a non-empty token string')
  return value
}

/**
 * Validates a token endpoint's JSON body field by field and computes the local expiry.
 * Accepts OAuth names (`access_token`, `refresh_token`, `expires_in`, `id_token`, `token_type`) and
 * the common camelCase ones (`token`/`accessToken`, `refreshToken`, `expiresIn`).
 *
 * @param body - the parsed JSON body
 * @param receivedAt - local clock (ms) when the response arrived
 * @throws {@link TesseraError} `INVALID_TOKEN_RESPONSE` naming the field at fault.
 */
export function parseTokenResponse(body: unknown, receivedAt: number): TokenSet {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalid('(body)', 'must be a JSON object')
  const b = body as Record<string, unknown>
  const accessToken = token(b, ['access_token', 'accessToken', 'token'], true)!
  const refreshToken = token(b, ['refresh_token', 'refreshToken'], false)
  const idToken = token(b, ['id_token', 'idToken'], false)
  if (idToken !== undefined && !decodeJwt(idToken)) throw invalid('id_token', 'is not a decodable JWT')
  const type = b.token_type ?? b.tokenType
  if (type != null && (typeof type !== 'string' || type.toLowerCase() !== 'bearer'))
    throw invalid('token_type', 'must be "Bearer"')
  const inName = b.expires_in != null ? 'expires_in' : 'expiresIn'
  const expiresIn = b[inName]
  let expiresAt: number | null = null
  if (expiresIn != null) {
    if (typeof expiresIn !== 'number' || !(expiresIn >= 0) || expiresIn > 1e9) throw invalid(inName, 'must be a number of seconds')
    expiresAt = receivedAt + expiresIn * 1000
  } else if (accessToken.split('.').length === 3) {
    const claims = decodeJwt(accessToken)
    if (!claims) throw invalid('access_token', 'looks like a JWT but cannot be decoded, and no expires_in was given')
    const { exp, iat } = claims
    if (exp !== undefined && typeof exp !== 'number') throw invalid('access_token', 'has a non-numeric exp claim')
    if (iat !== undefined && typeof iat !== 'number') throw invalid('access_token', 'has a non-numeric iat claim')
    // exp − iat is the lifetime the server meant; counting it from receipt cancels clock skew (P13).
    if (exp !== undefined) expiresAt = iat !== undefined ? receivedAt + (exp - iat) * 1000 : exp * 1000
  }
  return { accessToken, refreshToken, idToken, expiresAt, receivedAt }
}
