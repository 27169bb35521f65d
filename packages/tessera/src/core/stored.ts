import { fail } from './errors.js'
import { isTokenSet, type TokenSet } from './tokens.js'

/** A session as written to storage. Version 1. */
interface Stored<User> {
  v: 1
  tokens: TokenSet
  user: User | null
}

/** @internal */
export const encodeSession = <User>(tokens: TokenSet, user: User | null): string =>
  JSON.stringify({ v: 1, tokens, user } satisfies Stored<User>)

/**
 * Reads what {@link encodeSession} wrote. Anything else — corrupt JSON, another app's data, an
 * old version — is an `INVALID_STORED_SESSION` error (I8), which the engine treats as no session.
 */
export function decodeSession<User>(raw: string): Stored<User> {
  let data: Partial<Stored<User>> | undefined
  try {
    data = JSON.parse(raw)
  } catch {}
  if (data?.v !== 1 || !isTokenSet(data.tokens)) throw fail('INVALID_STORED_SESSION', 'Stored session ignored: not written by Tessera')
  return { v: 1, tokens: data.tokens, user: data.user ?? null }
}
