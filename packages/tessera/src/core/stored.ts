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

const text = (v: unknown) => typeof v === 'string' && v !== ''
const number = (v: unknown) => Number.isFinite(v)

/**
 * Reads what {@link encodeSession} wrote. Anything else — corrupt JSON, another app's data, an
 * old version — is an `INVALID_STORED_SESSION` error (I8), which the engine treats as no session.
 */
export function decodeSession<User>(raw: string): Stored<User> {
  let data: Partial<Stored<User>> | undefined
  try {
    data = JSON.parse(raw)
  } catch {}
  const t = data?.tokens
  const valid =
    data?.v === 1 &&
    text(t?.accessToken) &&
    [t!.refreshToken, t!.idToken].every((v) => v === undefined || text(v)) &&
    (t!.expiresAt === null || number(t!.expiresAt)) &&
    number(t!.receivedAt)
  if (!valid) throw fail('INVALID_STORED_SESSION', 'Stored session ignored: not written by Tessera')
  return { v: 1, tokens: t!, user: data!.user ?? null }
}
