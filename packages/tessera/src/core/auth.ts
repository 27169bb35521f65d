import { fail, type TesseraError } from './errors.js'
import { transition, type AuthEvent, type SessionState } from './machine.js'
import { abortable, defaultRetry, isRejection, retry, sleep, timed, toTesseraError } from './retry.js'
import { createEmitter } from './events.js'
import { sessionStore } from './stored.js'
import { MAX_COOLDOWN, createTabs, newer, type Session, type TabMessage } from './tabs.js'
import { decodeJwt, parseTokenResponse, type TokenSet } from './tokens.js'
import type { ActionName, ActionState, Auth, AuthEventName, AuthNotice, AuthOptions, AuthSnapshot, Grant, GrantOptions, WaitOptions } from './types.js'
import { systemClock } from '../ports/clock.js'
import { browserEnvironment } from '../ports/environment.js'
import { memoryStorage } from '../ports/storage.js'
import { broadcastChannel } from '../ports/channel.js'
import { webLocks } from '../ports/lock.js'
import { createAuthFetch } from '../transports/fetch.js'

const noop = () => {}
const IDLE: ActionState = { status: 'idle', error: null }
const LOCAL = 'http://tessera.invalid'

interface Deferred<T> {
  ctrl: AbortController
  shared?: Promise<void>
  promise: Promise<T>
  resolve(value: T): void
  reject(error: unknown): void
}
function deferred<T>(): Deferred<T> {
  const d = { ctrl: new AbortController() } as Deferred<T>
  d.promise = new Promise<T>((res, rej) => ((d.resolve = res), (d.reject = rej)))
  d.promise.catch(noop) // a refresh nobody awaits must not be an unhandled rejection
  return d
}

/**
 * Creates the session engine: one per session, shared by every transport and component.
 *
 * @remarks All refreshes go through one in-flight slot claimed synchronously (I1, P17); every
 * waiter settles on success, failure, logout or dispose (I2); events are delivered after the state
 * changed, outside any critical section, so handlers may call any verb (P16). Across tabs, the
 * protocol in `tabs.ts` orders sessions by no wall clock and keeps one refresh per key (I7).
 *
 * @example
 * ```ts
 * const auth = createAuth({ authority: httpAuthority({ baseUrl: '/auth' }) })
 * await auth.login({ email, password })
 * const res = await auth.fetch('/api/me')
 * ```
 */
export function createAuth<User = unknown, Credentials = unknown>(
  options: AuthOptions<User, Credentials>,
): Auth<User, Credentials> {
  const { authority, key = 'tessera', leeway = 60_000, clock = systemClock, random = Math.random, proof } = options
  const policy = { ...defaultRetry, ...options.retry }
  const { joinTimeout = 150, lockPatience = policy.timeout } = options
  const allowed = (options.allowedOrigins ?? []).map((o) => new URL(o).origin)
  const { header = 'Authorization', scheme = 'Bearer' } = options.placement ?? {}
  new Headers({ [header]: scheme }) // a header name or scheme no request could carry fails here, not at the first request

  // ── the engine's state, all of it ──
  /** The session as the state machine sees it: changed only by `dispatch`. Its tokens are a `Session`. */
  let state: SessionState<User> = { status: 'initializing', refreshing: false, tokens: null, generation: 0, user: null, error: null }
  /** Progress of each verb for the snapshot, and the promise each progress belongs to. */
  let actions: AuthSnapshot<User>['actions'] = { login: IDLE, logout: IDLE, refresh: IDLE, user: IDLE }
  const latest: Partial<Record<ActionName, Promise<unknown>>> = {}
  /** The public snapshot, made again after a change, on first read. */
  let snapshot: AuthSnapshot<User> | null = null
  /** The one refresh in flight (I1). */
  let inflight: Deferred<TokenSet> | null = null
  /** The login in flight: a newer login or a logout aborts it. */
  let loginCtrl: AbortController | null = null
  /** A request with this generation got 401: its token is refreshed even if it is not expiring. */
  let rejectedGeneration = -1
  /** The grant of the current generation, made once. */
  let granted: Grant | null = null
  /** While set, automatic refreshes pause after a failure (P12): a timer, so no clock step stretches it. */
  let cooling: unknown = null
  /** The proactive refresh: a timer that is only a hint to look at the clock again (P14). */
  let timer: unknown
  /** Resolved at every status change or session end: requests waiting for a session look again. */
  let changed = deferred<void>()
  /** The newest epoch whose session this tab saw end: news of it, or older, is stale. */
  let endedEpoch = -1
  /** The last refresh durations: the proactive lead covers the slowest (a loaded machine, a slow server). */
  const durations: number[] = []
  /** The change being dispatched came from another tab: it is not told back. */
  let remote = false
  let disposed = false

  const mine = () => state.tokens as Session | null
  const events = createEmitter<AuthNotice<User>>()
  const emit = (type: AuthEventName | 'change', extra?: Partial<AuthNotice<User>>) =>
    events.emit(type, () => ({ type, snapshot: getSnapshot(), ...extra }) as AuthNotice<User>)
  const store = sessionStore<User>(options.storage ?? memoryStorage(), key, (error) => emit('storage-error', { error }))
  const changedSnapshot = () => {
    snapshot = null
    emit('change')
  }

  // ── time left ──
  /** How long before expiry to refresh: the leeway (at most a quarter of the token's life), or twice the slowest recent refresh (at most half its life). */
  function lead(t: TokenSet) {
    const life = t.expiresAt! - t.receivedAt
    return Math.min(life / 2, Math.max(Math.min(leeway, life / 4), 2 * Math.max(0, ...durations)))
  }
  const left = (t: TokenSet, early?: 1) => (t.expiresAt === null ? Infinity : t.expiresAt - clock.now() - (early ? lead(t) : 0))
  const expiring = (t: TokenSet) => left(t, 1) <= 0
  const valid = (t: TokenSet) => left(t) > 0
  /** Never refresh within a second of a token's arrival: a server handing out dead tokens gets one refresh a second, not a loop. */
  const settling = (t: TokenSet) => Math.min(1_000, Math.max(0, t.receivedAt + 1_000 - clock.now()))
  const sample = (ms: number) => ms > 0 && durations.push(Math.min(ms, policy.timeout)) > 8 && durations.shift()

  function getSnapshot(): AuthSnapshot<User> {
    const { status, refreshing, user, error, generation, tokens } = state
    return (snapshot ??= Object.freeze({
      status,
      refreshing,
      user,
      error,
      generation,
      expiresAt: tokens?.expiresAt ?? null,
      actions,
      isAuthenticated: status === 'authenticated',
      get isExpiringSoon() {
        return !!tokens && expiring(tokens)
      },
    }))
  }

  // ── the one place state changes ──
  function dispatch(event: AuthEvent<User>) {
    const prev = state
    const [next, notices] = transition(prev, event)
    if (next === prev) return
    state = next
    const tokens = mine()
    if (tokens !== prev.tokens || next.user !== prev.user) store.write(tokens, next.user, tabs.seen())
    if (tokens !== prev.tokens) {
      if (tokens) tabs.see(tokens.order[0])
      cool(0) // new tokens: whatever outage there was is over
      arm()
    }
    if (next.status !== prev.status || !tokens) {
      if (!tokens && inflight) settleRefresh(next.error ?? fail('LOGGED_OUT', 'Logged out'))
      changed.resolve()
      changed = deferred()
    }
    const ended = prev.tokens as Session | null
    if (ended && !tokens) endedEpoch = Math.max(endedEpoch, ended.order[0])
    // Refresh outcomes are told to the other tabs from inside the lock (see `refreshLocked`).
    if (!remote && tokens && (event.type === 'login.succeeded' || event.type === 'user.loaded')) tell(tokens)
    if (!remote && ended && event.type === 'logout') tabs.post({ type: 'end', epoch: ended.order[0], expired: false, session: ended })
    changedSnapshot()
    if (next.status !== prev.status) emit('transition', { from: prev.status, event: event.type })
    for (const n of notices) emit(n, { error: next.error ?? undefined })
  }

  function setAction(name: ActionName, s: ActionState) {
    actions = { ...actions, [name]: s }
    changedSnapshot()
  }
  function track(name: ActionName, promise: Promise<unknown>) {
    latest[name] = promise
    const set = (s: ActionState) => latest[name] === promise && setAction(name, s)
    set({ status: 'pending', error: null })
    promise.then(
      () => set({ status: 'fulfilled', error: null }),
      (e) => set({ status: 'rejected', error: toTesseraError(e, 'LOGIN_FAILED') }),
    )
  }

  // ── proactive refresh ──
  function arm() {
    clock.clearTimeout(timer)
    const t = state.tokens
    if (disposed || state.status !== 'authenticated' || !t || t.expiresAt === null || inflight || cooling) return
    timer = clock.setTimeout(check, Math.max(left(t, 1), settling(t), 0))
  }
  function check() {
    const t = state.tokens
    if (state.status === 'authenticated' && t && expiring(t) && !cooling && !settling(t)) startRefresh().catch(noop)
    else arm()
  }
  /** Pauses automatic refreshes for `ms` (0: resumes them). */
  function cool(ms: number) {
    clock.clearTimeout(cooling)
    cooling = ms > 0 ? clock.setTimeout(() => ((cooling = null), check()), ms) : null
  }
  const cooldownFor = (error: TesseraError) => Math.min(MAX_COOLDOWN, Math.max(policy.cooldown, error.retryAfter ?? 0))

  // ── refresh: single flight, claimed before the first await (I1, P17) ──
  function startRefresh(): Promise<TokenSet> {
    if (inflight) return inflight.promise
    if (disposed || state.status !== 'authenticated') return Promise.reject(ended())
    const d = (inflight = deferred<TokenSet>())
    const before = mine()!
    clock.clearTimeout(timer)
    dispatch({ type: 'refresh.started' })
    track('refresh', d.promise)
    tabs.withLock((exclusive) => refreshLocked(before, d.ctrl.signal, exclusive), d.ctrl.signal).then(
      (tokens) => {
        if (inflight !== d) {
          // Another tab's session was adopted meanwhile; ours went to the other tabs, so keep
          // whichever is newer, as they do (I7). If the session ended instead, never revive it (P10).
          if (state.tokens && newer(tokens, mine())) adopt(tokens, state.user)
          return
        }
        inflight = null
        dispatch({ type: 'refresh.succeeded', tokens })
        d.resolve(tokens)
        if (subject(tokens) !== subject(before)) loadUser().catch(noop)
      },
      (error: TesseraError) => {
        if (inflight !== d) return
        if (!isRejection(error)) return failRefresh(cooldownFor(error), error) // keep the session and its still-valid token (I6, P11)
        inflight = null
        const expired = fail('SESSION_EXPIRED', 'Session expired', { cause: error, status: error.status })
        dispatch({ type: 'refresh.rejected', error: expired })
        d.reject(expired)
      },
    )
    return d.promise
  }

  /** The refresh itself, holding the lock of the key. Its outcome is told before the lock is let go (I1 across tabs, P12). */
  async function refreshLocked(before: Session, signal: AbortSignal, exclusive: boolean): Promise<Session> {
    // Another tab may have refreshed while this one waited: take its session, spend nothing (P10).
    const shared = await newerStored(before)
    if (shared) return shared
    let took = 0
    try {
      const fresh = await retry(
        async (s) => {
          const start = clock.now()
          const body = await authority.refresh(before.refreshToken, s)
          took = clock.now() - start
          return parseTokenResponse(body, clock.now())
        },
        policy,
        clock,
        signal,
        random,
      )
      sample(took)
      // A server that does not rotate (or sends no new ID token) keeps the ones we had.
      const tokens: Session = { ...fresh, refreshToken: fresh.refreshToken ?? before.refreshToken, idToken: fresh.idToken ?? before.idToken, order: [before.order[0], before.order[1] + 1] }
      tell(tokens, took)
      return tokens
    } catch (e) {
      const error = e as TesseraError
      if (signal.aborted) throw error
      if (isRejection(error)) {
        // Lost a race to an engine that shares the storage or the channel but no lock: the winner's
        // session is the one to keep (P10). On a channel it may take a round to come; when it does,
        // it is adopted and `signal` aborts.
        if (!exclusive && channel) await sleep(joinTimeout, clock, signal)
        const won = await newerStored(before)
        if (won) return won
        tabs.post({ type: 'end', epoch: before.order[0], expired: true, session: before })
      } else {
        tabs.post({ type: 'cooldown', ms: cooldownFor(error), code: error.code === 'TIMEOUT' ? 'TIMEOUT' : 'NETWORK_ERROR', status: error.status })
      }
      throw error
    }
  }
  /** The stored session, if another engine wrote one newer than `than` and not ended here. */
  async function newerStored(than: Session) {
    const stored = await store.read(mine(), tabs.seen()).catch(noop)
    return stored && stored.tokens.order[0] > endedEpoch && newer(stored.tokens, than) ? stored.tokens : null
  }

  function failRefresh(ms: number, error: TesseraError) {
    const d = inflight
    inflight = null
    cool(ms)
    dispatch({ type: 'refresh.failed', error })
    arm()
    d?.ctrl.abort(error)
    d?.reject(error)
  }
  function settleRefresh(error: TesseraError) {
    inflight!.ctrl.abort(error)
    inflight!.reject(error)
    inflight = null
  }
  const subject = (t: TokenSet) => decodeJwt(t.idToken ?? t.accessToken)?.sub
  const ended = (): TesseraError =>
    disposed ? fail('DISPOSED', 'Disposed') : state.status === 'expired' ? state.error! : fail('UNAUTHENTICATED', 'No session')

  // ── tokens for requests ──
  const grant = (token: string, generation: number): Grant =>
    granted?.generation === generation
      ? granted
      : (granted = { token, generation, headers: Object.freeze({ [header]: scheme ? `${scheme} ${token}` : token }) })

  async function tokenGrant(opts: WaitOptions): Promise<Grant> {
    // One refresh per call at most: a token the server has just issued is used even if it is
    // already "expiring" (a server handing out dead-on-arrival tokens must not loop us).
    let refreshed = false
    for (;;) {
      const { status, tokens: t, generation } = state
      if (disposed) throw ended()
      if (status === 'initializing' || status === 'authenticating') {
        await abortable(changed.promise, opts.signal)
        continue
      }
      if (status !== 'authenticated' || !t) throw ended()
      const rejected = generation === rejectedGeneration
      if (!rejected && (!expiring(t) || refreshed)) return grant(t.accessToken, generation)
      try {
        if (!inflight && cooling) throw state.error ?? fail('NETWORK_ERROR', 'Refresh paused after a failure')
        await abortable(startRefresh(), opts.signal)
        refreshed = true
      } catch (e) {
        // A failed proactive refresh keeps a token that is still valid (P11).
        if (!rejected && valid(t) && state.generation === generation && !isRejection(e) && state.status === 'authenticated')
          return grant(t.accessToken, generation)
        throw e
      }
    }
  }

  /** With a proof port (DPoP), a request's grant proves that request; without one, the token's grant as is. */
  const getGrant = (opts: GrantOptions = {}) => (prove ? tokenGrant(opts).then((g) => prove(g, opts)) : tokenGrant(opts))

  function handleUnauthorized(generation: number, opts?: GrantOptions): Promise<Grant> {
    emit('unauthorized', { generation })
    if (generation === state.generation) rejectedGeneration = generation
    return getGrant(opts)
  }

  // ── the user ──
  /** Loads the profile for the session in hand; tracked as `actions.user`. Rejects on failure. */
  function loadUser(): Promise<void> {
    const session = state.tokens
    if (!authority.fetchUser || !session) return Promise.resolve()
    const run = call((signal) => authority.fetchUser!(session.accessToken, signal)).then(
      (user) => {
        if (state.status === 'authenticated' && subject(state.tokens!) === subject(session)) dispatch({ type: 'user.loaded', user })
      },
      (e) => {
        const error = toTesseraError(e, 'NETWORK_ERROR')
        emit('user-error', { error })
        throw error
      },
    )
    track('user', run)
    return run
  }
  /** Takes the user an authority handed over with a token response, if it did (no profile call then). */
  function userIn(body: unknown): boolean {
    const user = (body as { user?: User | null } | null)?.user
    if (user === undefined) return false
    delete latest.user
    setAction('user', { status: 'fulfilled', error: null })
    dispatch({ type: 'user.loaded', user })
    return true
  }

  // ── verbs ──
  /** A session of a new epoch, after every one any tab has seen. */
  function stamp(t: TokenSet): Session {
    const epoch = tabs.seen() + 1
    tabs.see(epoch)
    return { ...t, order: [epoch, 0] }
  }

  function login(credentials: Credentials): Promise<void> {
    loginCtrl?.abort()
    const ctrl = (loginCtrl = new AbortController())
    dispatch({ type: 'login.started' })
    const run = call((signal) => authority.login(credentials, signal), ctrl.signal)
      .then(async (body) => {
        // Superseded by a newer login or a logout: this result is not the session's any more.
        if (ctrl.signal.aborted) throw ctrl.signal.reason
        const tokens = stamp(parseTokenResponse(body, clock.now()))
        loginCtrl = null
        dispatch({ type: 'login.succeeded', tokens })
        if (!userIn(body)) await loadUser().catch(noop)
      })
      .catch((e) => {
        const error = ctrl.signal.aborted ? fail('ABORTED', 'Login superseded') : toTesseraError(e, 'LOGIN_FAILED')
        if (loginCtrl === ctrl) {
          loginCtrl = null
          dispatch({ type: 'login.failed', error })
        }
        throw error
      })
    track('login', run)
    return run
  }

  function logout(): Promise<void> {
    const tokens = state.tokens
    loginCtrl?.abort()
    loginCtrl = null
    dispatch({ type: 'logout' })
    // The server is told within the timeout; a refusal is an event, never a rejection: the local session is over (I4).
    const run = (tokens && authority.logout ? call((signal) => authority.logout!(tokens, signal)) : Promise.resolve()).catch((e) =>
      emit('logout-error', { error: toTesseraError(e, 'NETWORK_ERROR') }),
    )
    track('logout', run)
    return run
  }

  // Concurrent callers get the very same promise; a cached token is never an answer here (P18).
  function refresh(): Promise<void> {
    if (!inflight) cool(0) // an explicit call is not an automatic retry: it may go now
    const p = startRefresh()
    return inflight ? (inflight.shared ??= p.then(noop)) : p.then(noop)
  }

  /** Calls the authority with a timeout: nothing it does may keep the engine waiting forever (I2). */
  const call = <T>(fn: (signal: AbortSignal) => Promise<T>, outer?: AbortSignal) => timed(fn, policy.timeout, clock, outer)

  async function restore() {
    // A callback in the URL (OIDC) is this page's own login: it comes before anything stored or shared.
    const callback = authority.hasCallback?.()
    let restored: { tokens: Session; user: User | null } | null = null
    if (!callback)
      try {
        const stored = await store.read(null, tabs.seen())
        if (stored) tabs.see(stored.seen)
        if (stored && (stored.tokens.refreshToken || valid(stored.tokens))) restored = stored
      } catch (error) {
        emit('storage-error', { error: error as TesseraError })
      }
    if (!restored && !callback && channel) {
      // Memory-only tokens across tabs: ask the peers for the live session, within one round (I7).
      tabs.post({ type: 'hello' })
      await new Promise<void>((r) => (clock.setTimeout(r, joinTimeout), changed.promise.then(r)))
      if (state.status !== 'initializing') return
    }
    const body = restored || !authority.restore ? null : await call((signal) => authority.restore!(signal))
    if (body != null) restored = { tokens: stamp(parseTokenResponse(body, clock.now())), user: null }
    dispatch(restored ? { type: 'restore.succeeded', ...restored } : { type: 'restore.failed', error: null })
    if (body != null) tell(mine()!)
    if (restored && !restored.user && !userIn(body)) await loadUser().catch(noop)
  }

  // ── across tabs: one truth per session key (I7) ──
  function tell(tokens: Session, took = 0) {
    tabs.post({ type: 'session', tokens, user: state.user, age: clock.now() - tokens.receivedAt, took })
  }
  function adopt(tokens: Session, user: User | null) {
    const d = inflight
    inflight = null
    const was = remote
    remote = true
    dispatch({ type: 'session.adopted', tokens, user })
    remote = was
    d?.ctrl.abort()
    d?.resolve(tokens)
  }
  function onMessage(m: TabMessage<User>) {
    const current = mine()
    remote = true
    // Every peer answers: with the session, or with what it has seen, so a login here opens a newer epoch.
    if (m.type === 'hello') state.status === 'authenticated' ? tell(current!) : tabs.post({ type: 'here' })
    if (m.type === 'session' && m.tokens.order[0] > endedEpoch) {
      // Times are the sender's: counted again from its age on this tab's clock.
      const receivedAt = clock.now() - m.age
      const { expiresAt, receivedAt: then } = m.tokens
      const tokens = { ...m.tokens, receivedAt, expiresAt: expiresAt === null ? null : receivedAt + expiresAt - then }
      if (newer(tokens, current)) {
        sample(m.took)
        adopt(tokens, m.user)
      } else if (tokens.accessToken === current?.accessToken) dispatch({ type: 'user.loaded', user: m.user })
    }
    if (m.type === 'end') {
      endedEpoch = Math.max(endedEpoch, m.epoch)
      if (current && current.order[0] <= m.epoch)
        dispatch(m.expired ? { type: 'refresh.rejected', error: fail('SESSION_EXPIRED', 'Session expired') } : { type: 'logout' })
    }
    if (m.type === 'cooldown') failRefresh(m.ms, fail(m.code, 'Refreshing failed in another tab', { status: m.status }))
    remote = false
  }
  const channel = options.channel === undefined ? broadcastChannel(`tessera:${key}`) : options.channel
  const tabs = createTabs<User>({
    channel,
    lock: options.lock === undefined ? webLocks() : options.lock,
    name: `tessera:${key}`,
    clock,
    patience: lockPatience,
    settle: joinTimeout,
    random,
    mine,
    onMessage,
  })

  const restoring = restore().catch((e) => void dispatch({ type: 'restore.failed', error: toTesseraError(e, 'NETWORK_ERROR') }))

  const stopEnvironment = (options.environment ?? browserEnvironment).subscribe((signal) => {
    if (signal === 'online') cool(0)
    check()
  })

  const auth: Auth<User, Credentials> = {
    getSnapshot,
    subscribe: (listener) => events.on('change', listener),
    on: events.on,
    login,
    logout,
    refresh,
    getGrant,
    getAccessToken: (opts) => getGrant(opts).then((g) => g.token),
    handleUnauthorized,
    isAllowedUrl(url) {
      const page = globalThis.location?.href
      try {
        const { origin } = new URL(url, page ?? LOCAL)
        return origin === new URL(page ?? LOCAL).origin || allowed.includes(origin)
      } catch {
        return false
      }
    },
    fetch: (input, init) => fetcher(input, init),
    ready: () => restoring.then(noop),
    reloadUser: () => (state.status === 'authenticated' ? loadUser() : Promise.reject(ended())),
    resetAction(name) {
      actions = { ...actions, [name]: IDLE }
      delete latest[name]
      changedSnapshot()
    },
    dispose() {
      if (disposed) return
      disposed = true
      clock.clearTimeout(timer)
      cool(0)
      stopEnvironment()
      tabs.stop()
      loginCtrl?.abort()
      if (inflight) settleRefresh(fail('DISPOSED', 'Disposed'))
      changed.resolve()
    },
  }
  const fetcher = createAuthFetch(auth, options.fetch)
  const prove = proof?.attach(auth)
  return auth
}
