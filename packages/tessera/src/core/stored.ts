import { fail, type TesseraError } from './errors.js'
import { PROTOCOL, STEP, isCount, ordered, type Session } from './tabs.js'
import { memoryStorage, type StoragePort } from '../ports/storage.js'

/**
 * A session as written to storage, protocol 2: the tokens with their order, the user, and the
 * highest epoch the writer had seen. Times are on the writer's clock.
 */
export interface Stored<User> {
  v: typeof PROTOCOL
  tokens: Session
  user: User | null
  seen: number
}


/** Larger than any session Tessera writes: read no further (I8). */
const MAX_STORED = 1 << 20

/** @internal */
export const encodeSession = <User>(tokens: Session, user: User | null, seen: number): string =>
  JSON.stringify({ v: PROTOCOL, tokens, user, seen } satisfies Stored<User>)

/**
 * Reads what {@link encodeSession} wrote, or what the previous protocol wrote (its order made up
 * from `mine`, as for its messages: see `ordered`). Anything else — corrupt JSON, another app's
 * data, an unknown version, an order from the future, a megabyte — is an `INVALID_STORED_SESSION`
 * error (I8), which the engine treats as no session.
 */
export function decodeSession<User>(raw: string, mine: Session | null = null, known = 0): Stored<User> {
  let data: Partial<Stored<User>> | { v: 1; tokens?: unknown; user?: User } | undefined
  try {
    if (raw.length <= MAX_STORED) data = JSON.parse(raw)
  } catch {}
  const legacy = data?.v === 1
  const seen = legacy ? known : (data as Partial<Stored<User>> | undefined)?.seen
  const tokens = (legacy || data?.v === PROTOCOL) && isCount(seen) && seen <= known + STEP ? ordered(data!.tokens, mine, known) : null
  if (!tokens || (!legacy && tokens.order[0] > seen!)) throw fail('INVALID_STORED_SESSION', 'Stored session ignored: not written by Tessera')
  return { v: PROTOCOL, tokens, user: data!.user ?? null, seen: seen! }
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
    async read(mine: Session | null, seen: number): Promise<Stored<User> | null> {
      const raw = await use((s) => s.get(key))
      return raw == null ? null : decodeSession<User>(String(raw), mine, seen)
    },
    /** Queues writing the session (or removing the entry when `tokens` is `null`). */
    write(tokens: Session | null, user: User | null, seen: number) {
      writes = writes.then(() => use((s) => (tokens ? s.set(key, encodeSession(tokens, user, seen)) : s.remove(key)))).then(() => {})
    },
  }
}
