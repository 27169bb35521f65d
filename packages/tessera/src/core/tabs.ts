import { fail, type TesseraErrorCode } from './errors.js'
import { sleep } from './retry.js'
import { isSessionId, isTokenSet, type TokenSet } from './tokens.js'
import type { Clock } from '../ports/clock.js'
import type { ChannelPort } from '../ports/channel.js'
import type { LockPort } from '../ports/lock.js'

/** Which session a message speaks of; sessions are ordered by receipt time, then token. */
export type SessionId = Pick<TokenSet, 'receivedAt' | 'accessToken'>

/** What tabs of one session key tell each other (I7). Tokens never leave the origin. */
export type TabMessage<User = unknown> =
  | { type: 'hello' } // a new tab asks its peers for the live session
  | { type: 'session'; tokens: TokenSet; user: User | null } // after login, refresh, user change; answer to hello
  | { type: 'end'; expired: boolean; session: SessionId } // this session ended: logout, or its refresh token was rejected
  | { type: 'cooldown'; until: number; code: TesseraErrorCode; message: string; status?: number } // P12, shared
  | { type: 'refreshing' } // heartbeat of the tab holding the refresh lock

/** Whether session `a` is newer than `b`: receipt time, then the token itself as a tie-break every tab agrees on. */
export const newer = (a: SessionId, b: SessionId | null) =>
  !b || a.receivedAt > b.receivedAt || (a.receivedAt === b.receivedAt && a.accessToken > b.accessToken)

/** The {@link SessionId} of a token set. */
export const idOf = ({ receivedAt, accessToken }: SessionId): SessionId => ({ receivedAt, accessToken })

/** Messages come from other code on the origin: anything malformed is ignored (I8). */
function readMessage<User>(m: unknown): TabMessage<User> | null {
  const x = m as Record<string, unknown> | null
  const type = x?.type
  const ok =
    type === 'hello' ||
    type === 'refreshing' ||
    (type === 'end' && typeof x!.expired === 'boolean' && isSessionId(x!.session)) ||
    (type === 'cooldown' && Number.isFinite(x!.until) && typeof x!.code === 'string' && typeof x!.message === 'string') ||
    (type === 'session' && isTokenSet(x!.tokens))
  return ok ? (m as TabMessage<User>) : null
}

/** The cross-tab half of the engine: a channel, a lock with bounded waits, and heartbeats. */
export interface Tabs<User> {
  post(message: TabMessage<User>): void
  /**
   * Runs `task` holding the session's exclusive lock. The wait is bounded (P9): `patience` ms
   * without a heartbeat from the holder and this tab goes ahead without the lock (the holder is
   * frozen or gone; the server's reuse grace window covers the rare overlap).
   */
  withLock<T>(task: () => Promise<T>, signal: AbortSignal): Promise<T>
  stop(): void
}

/** @internal */
export function createTabs<User>(
  channel: ChannelPort | null,
  lock: LockPort | null,
  name: string,
  clock: Clock,
  patience: number,
  settle: number,
  onMessage: (message: TabMessage<User>) => void,
): Tabs<User> {
  const waiting = new Set<() => void>()
  let lastBeat = -Infinity // when a holder last said it was refreshing; any outcome message clears it
  const stop =
    channel?.subscribe((raw) => {
      const message = readMessage<User>(raw)
      if (message?.type === 'refreshing') {
        lastBeat = clock.now()
        waiting.forEach((w) => w())
      } else if (message) {
        lastBeat = -Infinity
        onMessage(message)
      }
    }) ?? (() => {})
  const post = (message: TabMessage<User>) => channel?.post(message)

  async function withLock<T>(task: () => Promise<T>, signal: AbortSignal): Promise<T> {
    let release: (() => void) | undefined
    if (lock) {
      const ctrl = new AbortController()
      const abort = () => ctrl.abort(signal.reason)
      let timer: unknown
      const wait = () => {
        clock.clearTimeout(timer)
        timer = clock.setTimeout(() => ctrl.abort(fail('TIMEOUT', 'Refresh lock not released')), patience)
      }
      signal.addEventListener('abort', abort)
      waiting.add(wait)
      wait()
      try {
        release = await lock.acquire(name, ctrl.signal)
      } catch (e) {
        if (signal.aborted) throw signal.reason
        // Gave up waiting: go ahead (P9). `release` stays unset.
      } finally {
        clock.clearTimeout(timer)
        waiting.delete(wait)
        signal.removeEventListener('abort', abort)
      }
    }
    // Heartbeats keep the other tabs patient while this one works.
    let beat: unknown
    const heartbeat = () => {
      post({ type: 'refreshing' })
      beat = clock.setTimeout(heartbeat, patience / 3)
    }
    try {
      // Another tab was refreshing and its outcome has not reached us: it was posted before that
      // tab let go, but a channel does not promise to deliver before a lock is granted. Give it one
      // round; if it arrives, the engine adopts it and aborts `signal` (P10). Inside the `try`, so
      // the lock is released either way.
      if (clock.now() - lastBeat < patience) await sleep(settle, clock, signal)
      heartbeat()
      return await task()
    } finally {
      clock.clearTimeout(beat)
      release?.()
    }
  }

  return { post, withLock, stop }
}
