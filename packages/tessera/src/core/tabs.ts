import { sleep } from './retry.js'
import { isTokenSet, type TokenSet } from './tokens.js'
import type { Clock } from '../ports/clock.js'
import type { ChannelPort } from '../ports/channel.js'
import type { LockPort } from '../ports/lock.js'

/**
 * Where a session stands among the sessions of one key, by no wall clock (clocks step, and each
 * tab's differently): `[epoch, gen]`. A login opens an epoch one past the highest any tab has seen
 * (a Lamport clock: every message and stored session carries it); each refresh adds one to `gen`.
 * A logout ends its epoch: no session of it is adopted again.
 */
export type Order = readonly [epoch: number, gen: number]

/** The engine's tokens: a {@link TokenSet} stamped with its {@link Order}. @internal */
export interface Session extends TokenSet {
  order: Order
}

/** Whether session `a` is newer than `b`: by order, then by token, a tie-break every tab agrees on. */
export function newer(a: Session, b: Session | null): boolean {
  const d = b ? a.order[0] - b.order[0] || a.order[1] - b.order[1] : 1
  return d > 0 || (d === 0 && a.accessToken > b!.accessToken)
}

/** The version of what tabs say to each other and of the stored session. */
export const PROTOCOL = 2
/** Counters stay exact integers, and no message moves them more than `STEP`: a forger cannot pin them. */
const MAX = 2 ** 50
export const STEP = 2 ** 20
/** The longest pause of automatic refreshes anything may ask for, a server's Retry-After included (P12). */
export const MAX_COOLDOWN = 600_000

/**
 * What tabs of one session key tell each other (I7), protocol 2. Every message carries `seen`, the
 * highest epoch its sender knows. Tokens never leave the origin. Fields marked "protocol 1" let tabs
 * still running the previous build understand this one.
 */
export type TabMessage<User = unknown> = { v: typeof PROTOCOL; seen: number } & (
  | { type: 'hello' } // a new tab asks its peers for the live session
  | { type: 'here' } // the answer to hello of a tab without a session: its `seen` is what the new tab needs
  /** After a login, refresh or user change, and in answer to hello. `age`: ms since the tokens arrived, on the sender's clock; `took`: how long the refresh took. */
  | { type: 'session'; tokens: Session; user: User | null; age: number; took: number }
  /** The session of `epoch` ended: a logout, or its refresh token was rejected. `session`: protocol 1. */
  | { type: 'end'; epoch: number; expired: boolean; session: Pick<TokenSet, 'accessToken' | 'receivedAt'> }
  /** Refreshing failed for a while: pause `ms` (P12). */
  | { type: 'cooldown'; ms: number; code: 'NETWORK_ERROR' | 'TIMEOUT'; status?: number }
  | { type: 'refreshing' } // heartbeat of the tab holding the refresh lock
  | { type: 'claim'; id: number } // a tab without Web Locks asks for the refresh lock; the lowest id wins
)

/** A {@link TabMessage} as a tab writes it: `v` and `seen` are added by `post`. */
type Body<User> = TabMessage<User> extends infer M ? (M extends unknown ? Omit<M, 'v' | 'seen'> : never) : never

export const isCount = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0 && (n as number) <= MAX
const isOrder = (o: unknown): o is Order => Array.isArray(o) && o.length === 2 && isCount(o[0]) && isCount(o[1])
/** A duration in ms from another tab: anything else counts as 0. */
const duration = (n: unknown) => (typeof n === 'number' && n >= 0 && n <= 1e12 ? n : 0)

/**
 * A session read from another tab or from storage. Its order is checked, or, from a peer of
 * protocol 1 (none), made up from ours as protocol 1 did (by arrival time) so that a tab still
 * running the previous build is followed, never forked from.
 */
export function ordered(tokens: unknown, mine: Session | null, seen: number): Session | null {
  if (!isTokenSet(tokens)) return null
  const t = tokens as Session
  if (t.order !== undefined) return isOrder(t.order) ? t : null
  const order: Order | null = !mine
    ? [seen + 1, 0]
    : t.accessToken === mine.accessToken
      ? mine.order
      : t.receivedAt > mine.receivedAt || (t.receivedAt === mine.receivedAt && t.accessToken > mine.accessToken)
        ? [mine.order[0], mine.order[1] + 1]
        : null
  return order && { ...t, order }
}

/** The cross-tab half of the engine: the channel, the bounded refresh lock, heartbeats, the shared epoch clock. */
export interface Tabs<User> {
  /** Tells the other tabs. */
  post(message: Body<User>): void
  /**
   * Runs `task` holding the session's exclusive lock: Web Locks, or without them a claim over the
   * channel. Every wait is bounded (P9): `patience` ms without a heartbeat from the holder and this
   * tab goes ahead (the holder is frozen or gone; the server's reuse grace window covers the rare
   * overlap). `exclusive` tells `task` whether it runs under a Web Lock, or may have raced.
   */
  withLock<T>(task: (exclusive: boolean) => Promise<T>, signal: AbortSignal): Promise<T>
  /** The highest epoch any tab is known to have reached. */
  seen(): number
  /** Takes `epoch` into account (from storage, from a session this tab made). */
  see(epoch: number): void
  stop(): void
}

let engines = 0 // a tie-break of claims between engines of one page that draw the same random number

/** @internal */
export function createTabs<User>(o: {
  channel: ChannelPort | null
  lock: LockPort | null
  name: string
  clock: Clock
  patience: number
  settle: number
  random: () => number
  /** The session in hand, for answering protocol-1 peers. */
  mine: () => Session | null
  onMessage: (message: TabMessage<User>) => void
}): Tabs<User> {
  const { channel, lock, clock, patience } = o
  const self = ++engines
  let seen = 0
  // Another tab holds the lock: it said so (heartbeat or claim) less than `patience` ago. Measured
  // with a timer, never by comparing wall-clock readings.
  let held = false
  let heldTimer: unknown
  let holding = false // this tab holds it
  let rivals: number[] | null = null // claims heard while this tab's own claim is open
  const waiting = new Set<() => void>()
  let queue: Promise<unknown> = Promise.resolve()
  const wake = () => waiting.forEach((w) => w())
  function hold(on: boolean) {
    held = on
    clock.clearTimeout(heldTimer)
    if (on) heldTimer = clock.setTimeout(() => hold(false), patience)
    wake()
  }
  const see = (epoch: number) => void (seen = Math.max(seen, epoch))
  const post = (message: Body<User>) => channel?.post({ ...message, v: PROTOCOL, seen })

  /** Messages come from other code on the origin: each is checked and bounded, or ignored (I8). */
  function read(raw: unknown): TabMessage<User> | null {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- checked field by field below, then typed
    const m = raw as Record<string, any> | null
    if (!m || typeof m !== 'object') return null
    const legacy = m.v === undefined
    if (legacy) m.seen = seen
    else if (m.v !== PROTOCOL || !isCount(m.seen) || m.seen > seen + STEP) return null
    const mine = o.mine()
    switch (m.type) {
      case 'session': {
        const t = ordered(m.tokens, mine, seen)
        // Nothing beyond what its sender has seen, nor a jump of more than STEP refreshes.
        if (!t || (!legacy && t.order[0] > m.seen) || (mine && t.order[0] === mine.order[0] && t.order[1] > mine.order[1] + STEP)) return null
        m.tokens = t
        // Protocol 1 times are the sender's clock, taken as they are (as protocol 1 did).
        m.age = legacy ? clock.now() - t.receivedAt : duration(m.age)
        m.took = duration(m.took)
        m.user ??= null
        break
      }
      case 'end':
        // Protocol 1 names the session by its token; protocol 2 by its epoch, never one from the future.
        m.epoch = legacy ? (mine && m.session?.accessToken === mine.accessToken ? mine.order[0] : -1) : isCount(m.epoch) && m.epoch <= seen ? m.epoch : -1
        if (m.epoch < 0 || typeof m.expired !== 'boolean') return null
        break
      case 'cooldown':
        m.ms = Math.min(Math.max(+(legacy ? m.until - clock.now() : m.ms) || 0, 0), MAX_COOLDOWN)
        m.code = m.code === 'TIMEOUT' ? 'TIMEOUT' : 'NETWORK_ERROR'
        if (!Number.isInteger(m.status)) delete m.status
        break
      case 'claim':
        if (!Number.isFinite(m.id)) return null
        break
      case 'hello':
      case 'here':
      case 'refreshing':
        break
      default:
        return null
    }
    return m as TabMessage<User>
  }

  const stop =
    channel?.subscribe((raw) => {
      const m = read(raw)
      if (!m) return
      see(m.seen)
      if (m.type === 'refreshing') hold(true)
      else if (m.type === 'claim') {
        if (holding) post({ type: 'refreshing' }) // the lock is taken: the claimant waits for us
        else rivals?.push(m.id)
        if (!rivals && !holding) hold(true) // someone else is about to hold it
      } else {
        if (m.type !== 'hello' && m.type !== 'here') hold(false) // an outcome: whoever held the lock is done
        o.onMessage(m)
      }
    }) ?? (() => {})

  /** Resolves at the next heartbeat, outcome or holder time-out; rejects when `signal` aborts. */
  const change = (signal: AbortSignal) =>
    new Promise<void>((resolve, reject) => {
      const done = () => (waiting.delete(done), signal.removeEventListener('abort', abort), resolve())
      const abort = () => (waiting.delete(done), reject(signal.reason))
      if (signal.aborted) return abort()
      waiting.add(done)
      signal.addEventListener('abort', abort, { once: true })
    })

  /** Web Locks, waited for no longer than the holder keeps sending heartbeats. Unset when given up. */
  async function webLock(signal: AbortSignal): Promise<(() => void) | undefined> {
    const ctrl = new AbortController()
    const abort = () => ctrl.abort()
    let timer: unknown
    const rearm = () => {
      clock.clearTimeout(timer)
      timer = clock.setTimeout(abort, patience)
    }
    // Only a sign of life (a heartbeat) buys the holder more time; its mark running out does not.
    const alive = () => {
      if (held) rearm()
    }
    signal.addEventListener('abort', abort)
    waiting.add(alive)
    rearm()
    try {
      return await lock!.acquire(o.name, ctrl.signal)
    } catch {
      if (signal.aborted) throw signal.reason
      return undefined // gave up waiting: go ahead (P9)
    } finally {
      clock.clearTimeout(timer)
      waiting.delete(alive)
      signal.removeEventListener('abort', abort)
    }
  }

  /**
   * Without Web Locks: wait while another tab holds the lock, then claim it, listen one round for
   * rival claims, and hold it only if ours is the lowest (I1). A claim that loses waits for the
   * winner's heartbeats, bounded like any wait (P9).
   */
  async function claim(signal: AbortSignal) {
    for (;;) {
      while (held) await change(signal)
      const id = o.random() + self / 2 ** 32
      rivals = []
      post({ type: 'claim', id })
      try {
        await sleep(o.settle, clock, signal)
      } finally {
        const lost = rivals.some((r) => r <= id)
        rivals = null
        if (lost && !held) hold(true) // the winner has `patience` to show itself
      }
      if (!held) return
    }
  }

  /** One holder in this tab too (the session's refresh, an audience's): each waits for the ones before it. */
  function withLock<T>(task: (exclusive: boolean) => Promise<T>, signal: AbortSignal): Promise<T> {
    const turn = queue.then(() => (signal.throwIfAborted(), locked(task, signal)))
    queue = turn.catch(() => {})
    return turn
  }

  async function locked<T>(task: (exclusive: boolean) => Promise<T>, signal: AbortSignal): Promise<T> {
    const release = lock ? await webLock(signal) : channel ? await claim(signal) : undefined
    holding = true
    let beat: unknown
    const heartbeat = () => {
      post({ type: 'refreshing' })
      beat = clock.setTimeout(heartbeat, patience / 3)
    }
    try {
      // Another tab was refreshing and its outcome has not reached us: it was posted before that
      // tab let go, but a channel does not promise to deliver before a lock is granted. Give it one
      // round; if it arrives, the engine adopts it and aborts `signal` (P10).
      if (lock && held) await sleep(o.settle, clock, signal)
      heartbeat()
      return await task(!!release)
    } finally {
      holding = false
      clock.clearTimeout(beat)
      release?.()
    }
  }

  return {
    post,
    withLock,
    seen: () => seen,
    see,
    stop() {
      stop()
      clock.clearTimeout(heldTimer)
    },
  }
}
