import { fail } from './errors.js'
import type { TokenSet } from './tokens.js'

/** A session as written to storage. Version 1. */
interface Stored<User> {
  v: 1
  tokens: TokenSet
  user: User | null
}

/** @internal */
export const encodeSession = <User>(tokens: TokenSet, user: User | null): string =>
  JSON.stringify({ v: 1, tokens, user } satisfies Stored<User>)

const optionalString = (v: unknown) => v === undefined || (typeof v === 'string' && v !== '')

/**
 * Reads what {@link encodeSession} wrote. Anything else — corrupt JSON, another app's data, an
 * old version — is an `INVALID_STORED_SESSION` error (I8), which the engine treats as no session.
 */
export function decodeSession<User>(raw: string): Stored<User> {
  let data: Partial<Stored<User>> | null = null
  try {
    data = JSON.parse(raw)
  } catch {}
  const t = data?.tokens
  if (
    data?.v !== 1 ||
    typeof t !== 'object' ||
    t === null ||
    typeof t.accessToken !== 'string' ||
    t.accessToken === '' ||
    !optionalString(t.refreshToken) ||
    !optionalString(t.idToken) ||
    !(t.expiresAt === null || Number.isFinite(t.expiresAt)) ||
    !Number.isFinite(t.receivedAt)
  )
    throw fail('INVALID_STORED_SESSION', 'The stored session is not one Tessera wrote; ignoring it')
  return { v: 1, tokens: t, user: data.user ?? null }
}
