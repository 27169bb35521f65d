import { fail, type TesseraError } from './errors.js'
import { isTokenSet, type TokenSet } from './tokens.js'
import { memoryStorage, type StoragePort } from '../ports/storage.js'

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

/**
 * The engine's view of its storage port under one key: writes happen in order, and a storage that
 * throws (quota, private mode) is replaced by memory and reported through `onError` (P20).
 * @internal
 */
export function sessionStore<User>(port: StoragePort, key: string, onError: (error: TesseraError) => void) {
  let writes = Promise.resolve()
  const use = (op: (s: StoragePort) => unknown): Promise<unknown> =>
    (async () => await op(port))().catch((cause) => {
      port = memoryStorage()
      onError(fail('STORAGE_UNAVAILABLE', 'Storage failed; using memory', { cause }))
      return op(port)
    })
  return {
    /** The stored session or `null`; rejects with `INVALID_STORED_SESSION` for data Tessera did not write (I8). */
    async read(): Promise<Stored<User> | null> {
      const raw = await use((s) => s.get(key))
      return raw == null ? null : decodeSession<User>(raw as string)
    },
    /** Queues writing `tokens` and `user` (or removing the entry when `tokens` is `null`). */
    write(tokens: TokenSet | null, user: User | null) {
      writes = writes.then(() => use((s) => (tokens ? s.set(key, encodeSession(tokens, user)) : s.remove(key)))).then(() => {})
    },
  }
}
