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

const invalid = (field: string, problem = 'is invalid') =>
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
    const bytes = Uint8Array.from(atob(part[1]!.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0))
    const claims: unknown = JSON.parse(new TextDecoder().decode(bytes))
    return claims && typeof claims === 'object' && !Array.isArray(claims) ? (claims as JwtClaims) : null
  } catch {
    return null
  }
}

const TOKEN = /^[\x21-\x7e]+$/ // visible ASCII: anything else could split or inject a header
/** Longer than any server accepts in a header (Node's whole header limit is 16 KiB): never sent. */
const MAX_TOKEN = 16_384
const isToken = (v: unknown): v is string => typeof v === 'string' && v.length <= MAX_TOKEN && TOKEN.test(v)

/**
 * Whether `value` is a {@link TokenSet} as Tessera writes it (to storage, to other tabs): the same
 * token rules as {@link parseTokenResponse}, so nothing read back can inject a header (I8).
 * @internal
 */
export function isTokenSet(value: unknown): value is TokenSet {
  const t = value as TokenSet | null
  return (
    isToken(t?.accessToken) &&
    [t.refreshToken, t.idToken].every((v) => v === undefined || isToken(v)) &&
    Number.isFinite(t.receivedAt) &&
    (t.expiresAt === null || Number.isFinite(t.expiresAt))
  )
}

function token(body: Record<string, unknown>, names: string[], required: boolean): string | undefined {
  const name = names.find((n) => body[n] != null)
  if (name === undefined) {
    if (required) throw invalid(names[0]!, 'is missing')
    return undefined
  }
  const value = body[name]
  if (!isToken(value)) throw invalid(name)
  return value
}

/**
 * Validates a token endpoint's JSON body field by field and computes the local expiry.
 * Accepts OAuth names (`access_token`, `refresh_token`, `expires_in`, `id_token`, `token_type`) and
 * the common hand-rolled ones (`token`, `refreshToken`, `expiresIn`).
 *
 * @param body - the parsed JSON body
 * @param receivedAt - local clock (ms) when the response arrived
 * @throws {@link TesseraError} `INVALID_TOKEN_RESPONSE` naming the field at fault.
 */
export function parseTokenResponse(body: unknown, receivedAt: number): TokenSet {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalid('(body)', 'must be a JSON object')
  const b = body as Record<string, unknown>
  const accessToken = token(b, ['access_token', 'token'], true)!
  const refreshToken = token(b, ['refresh_token', 'refreshToken'], false)
  const idToken = token(b, ['id_token'], false)
  if (idToken !== undefined && !decodeJwt(idToken)) throw invalid('id_token')
  const type = b.token_type
  // `DPoP`: a token bound to the page's key (RFC 9449), sent with a proof (`tessera/dpop`).
  if (type != null && (typeof type !== 'string' || !/^(bearer|dpop)$/i.test(type)))
    throw invalid('token_type')
  const inName = b.expires_in != null ? 'expires_in' : 'expiresIn'
  const expiresIn = b[inName]
  let expiresAt: number | null = null
  if (expiresIn != null) {
    if (typeof expiresIn !== 'number' || !(expiresIn >= 0) || expiresIn > 1e9) throw invalid(inName)
    expiresAt = receivedAt + expiresIn * 1000
  } else if (accessToken.split('.').length === 3) {
    const claims = decodeJwt(accessToken)
    // A JWT is our only source of expiry here: one we cannot read is an error, not "never expires".
    const { exp, iat } = claims ?? {}
    if (!claims || [exp, iat].some((v) => v !== undefined && typeof v !== 'number')) throw invalid('access_token')
    // exp − iat is the lifetime the server meant; counting it from receipt cancels clock skew (P13).
    if (exp !== undefined) expiresAt = iat !== undefined ? receivedAt + (exp - iat) * 1000 : exp * 1000
  }
  return { accessToken, refreshToken, idToken, expiresAt, receivedAt }
}
