import { fail, type TesseraError } from './errors.js'
import type { AuthEvent, SessionState } from './machine.js'
import { abortable, deferred, isRejection, retry, sleep, type Deferred, type RetryPolicy } from './retry.js'
import { MAX_COOLDOWN, newer, type Session, type Tabs } from './tabs.js'
import type { createTiming } from './timing.js'
import { parseTokenResponse, type TokenSet } from './tokens.js'
import type { Authority, Grant, WaitOptions } from './types.js'
import type { Clock } from '../ports/clock.js'

/** What the refresh side needs of the engine (`auth.ts`). @internal */
export interface RefreshHost<User> {
  clock: Clock
  policy: RetryPolicy
  random: () => number
  /** One round of the channel: how long a race's winner may take to show its session. */
  settle: number
  /** Other tabs can tell this one things (a channel exists). */
  shared: boolean
  authority: Pick<Authority, 'refresh'>
  /** How the token goes on a request: header name and scheme. */
  placement: readonly [string, string]
  timing: ReturnType<typeof createTiming>
  tabs: Tabs<User>
  state(): SessionState<User>
  dispatch(event: AuthEvent<User>): void
  /** Resolves at the next status change. */
  changed(): Promise<void>
  /** Why there is no token to give. */
  ended(): TesseraError
  /** The stored session, if another engine wrote one newer than `than` (and not of an epoch that ended here). */
  newerStored(than: Session): Promise<Session | null>
  /** Tells the other tabs of a session made here. */
  tell(tokens: Session, took: number): void
  /** Takes a newer session than the one this refresh started from (another tab's). */
  adopt(tokens: Session): void
  /** A refresh brought another subject: load the profile again. */
  subjectChanged(from: TokenSet, to: TokenSet): void
  track(refresh: Promise<unknown>): void
  unauthorized(generation: number): void
}

/**
 * The refresh side of the engine: one refresh in flight, claimed before the first await (I1, P17),
 * run under the key's lock with retries; the proactive timer (P14) and the cooldown after failures
 * (P12); the grants requests are sent with, and what a 401 does (P1, P2).
 * @internal
 */
export function createRefresher<User>(h: RefreshHost<User>) {
  const { clock, policy, tabs, timing } = h
  /** The one refresh in flight (I1). */
  let inflight: Deferred<TokenSet> | null = null
  /** A request with this generation got 401: its token is refreshed even if it is not expiring. */
  let rejectedGeneration = -1
  /** The grant of the current generation, made once. */
  let granted: Grant | null = null
  /** While set, automatic refreshes pause after a failure (P12): a timer, so no clock step stretches it. */
  let cooling: unknown = null
  /** The proactive refresh: a timer that is only a hint to look at the clock again (P14). */
  let timer: unknown
  let disposed = false
  const mine = () => h.state().tokens as Session | null

  // ── proactive refresh ──
  function arm() {
    clock.clearTimeout(timer)
    const { status, tokens: t } = h.state()
    if (disposed || status !== 'authenticated' || !t || t.expiresAt === null || inflight || cooling) return
    timer = clock.setTimeout(check, Math.max(timing.left(t, 1), timing.settling(t), 0))
  }
  function check() {
    const { status, tokens: t } = h.state()
    if (status === 'authenticated' && t && timing.expiring(t) && !cooling && !timing.settling(t)) start().catch(() => {})
    else arm()
  }
  /** Pauses automatic refreshes for `ms` (0: resumes them). */
  function cool(ms: number) {
    clock.clearTimeout(cooling)
    cooling = ms > 0 ? clock.setTimeout(() => ((cooling = null), check()), ms) : null
  }
  const cooldownFor = (error: TesseraError) => Math.min(MAX_COOLDOWN, Math.max(policy.cooldown, error.retryAfter ?? 0))

  // ── the refresh ──
  function start(): Promise<TokenSet> {
    if (inflight) return inflight.promise
    if (disposed || h.state().status !== 'authenticated') return Promise.reject(h.ended())
    const d = (inflight = deferred<TokenSet>())
    const before = mine()!
    clock.clearTimeout(timer)
    h.dispatch({ type: 'refresh.started' })
    h.track(d.promise)
    // The session as it is once the lock is held: an audience's refresh may have rotated its refresh token meanwhile.
    tabs.withLock((exclusive) => locked(mine() ?? before, d.ctrl.signal, exclusive), d.ctrl.signal).then(
      (tokens) => {
        if (inflight !== d) {
          // Another tab's session was adopted meanwhile; ours went to the other tabs, so keep
          // whichever is newer, as they do (I7). If the session ended instead, never revive it (P10).
          if (h.state().tokens && newer(tokens, mine())) h.adopt(tokens)
          return
        }
        inflight = null
        h.dispatch({ type: 'refresh.succeeded', tokens })
        d.resolve(tokens)
        h.subjectChanged(before, tokens)
      },
      (error: TesseraError) => {
        if (inflight !== d) return
        if (!isRejection(error)) return failed(cooldownFor(error), error) // keep the session and its still-valid token (I6, P11)
        inflight = null
        const expired = fail('SESSION_EXPIRED', 'Session expired', { cause: error, status: error.status })
        h.dispatch({ type: 'refresh.rejected', error: expired })
        d.reject(expired)
      },
    )
    return d.promise
  }

  /** The refresh itself, holding the lock of the key. Its outcome is told before the lock is let go (I1 across tabs, P12). */
  async function locked(before: Session, signal: AbortSignal, exclusive: boolean): Promise<Session> {
    // Another tab may have refreshed while this one waited: take its session, spend nothing (P10).
    const shared = await h.newerStored(before)
    if (shared) return shared
    let took = 0
    try {
      const fresh = await retry(
        async (s) => {
          const start = clock.now()
          const body = await h.authority.refresh(before.refreshToken, s)
          took = clock.now() - start
          return parseTokenResponse(body, clock.now())
        },
        policy,
        clock,
        signal,
        h.random,
      )
      timing.sample(took)
      // A server that does not rotate (or sends no new ID token) keeps the ones we had.
      const tokens: Session = { ...fresh, refreshToken: fresh.refreshToken ?? before.refreshToken, idToken: fresh.idToken ?? before.idToken, order: [before.order[0], before.order[1] + 1] }
      h.tell(tokens, took)
      return tokens
    } catch (e) {
      const error = e as TesseraError
      if (signal.aborted) throw error
      if (isRejection(error)) {
        // Lost a race to an engine that shares the storage or the channel but no lock: the winner's
        // session is the one to keep (P10). On a channel it may take a round to come; when it does,
        // it is adopted and `signal` aborts.
        if (!exclusive && h.shared) await sleep(h.settle, clock, signal)
        const won = await h.newerStored(before)
        if (won) return won
        tabs.post({ type: 'end', epoch: before.order[0], expired: true, session: before })
      } else {
        tabs.post({ type: 'cooldown', ms: cooldownFor(error), code: error.code === 'TIMEOUT' ? 'TIMEOUT' : 'NETWORK_ERROR', status: error.status })
      }
      throw error
    }
  }

  /** Refreshing failed (here, or in the tab that holds the lock): cool down `ms`, keep the session. */
  function failed(ms: number, error: TesseraError) {
    const d = inflight
    inflight = null
    cool(ms)
    h.dispatch({ type: 'refresh.failed', error })
    arm()
    d?.ctrl.abort(error)
    d?.reject(error)
  }

  // ── tokens for requests ──
  const [header, scheme] = h.placement
  const grant = (token: string, generation: number): Grant =>
    granted?.generation === generation
      ? granted
      : (granted = { token, generation, headers: Object.freeze({ [header]: scheme ? `${scheme} ${token}` : token }) })

  async function getGrant(opts: WaitOptions = {}): Promise<Grant> {
    // One refresh per call at most: a token the server has just issued is used even if it is
    // already "expiring" (a server handing out dead-on-arrival tokens must not loop us).
    let refreshed = false
    for (;;) {
      const { status, tokens: t, generation } = h.state()
      if (disposed) throw h.ended()
      if (status === 'initializing' || status === 'authenticating') {
        await abortable(h.changed(), opts.signal)
        continue
      }
      if (status !== 'authenticated' || !t) throw h.ended()
      const rejected = generation === rejectedGeneration
      if (!rejected && (!timing.expiring(t) || refreshed)) return grant(t.accessToken, generation)
      try {
        if (!inflight && cooling) throw h.state().error ?? fail('NETWORK_ERROR', 'Refresh paused after a failure')
        await abortable(start(), opts.signal)
        refreshed = true
      } catch (e) {
        // A failed proactive refresh keeps a token that is still valid (P11).
        const now = h.state()
        if (!rejected && timing.valid(t) && now.generation === generation && !isRejection(e) && now.status === 'authenticated')
          return grant(t.accessToken, generation)
        throw e
      }
    }
  }

  return {
    start,
    check,
    cool,
    failed,
    getGrant,
    handleUnauthorized(generation: number, opts?: WaitOptions): Promise<Grant> {
      h.unauthorized(generation)
      if (generation === h.state().generation) rejectedGeneration = generation
      return getGrant(opts)
    },
    /** The session's tokens changed: whatever outage there was is over; the timer follows the new ones. */
    renewed() {
      cool(0)
      arm()
    },
    /** Settles the refresh in flight without an outcome: the session ended, another tab's was adopted, or the engine was disposed. */
    drop(error?: TesseraError, adopted?: TokenSet) {
      const d = inflight
      inflight = null
      d?.ctrl.abort(error)
      if (adopted) d?.resolve(adopted)
      else d?.reject(error)
    },
    /** `auth.refresh()`: concurrent callers get the very same promise; a cached token is never an answer here (P18). */
    refresh(): Promise<void> {
      if (!inflight) cool(0) // an explicit call is not an automatic retry: it may go now
      const p = start()
      return inflight ? (inflight.shared ??= p.then(() => {})) : p.then(() => {})
    },
    dispose() {
      disposed = true
      clock.clearTimeout(timer)
      cool(0)
    },
  }
}
