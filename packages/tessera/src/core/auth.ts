import { fail, type TesseraError } from './errors.js'
import { transition, type AuthEvent, type SessionState } from './machine.js'
import { defaultRetry, deferred, timed, toTesseraError } from './retry.js'
import { createRefresher, type RefreshHost } from './refresh.js'
import { createActions } from './actions.js'
import { createTiming } from './timing.js'
import { createEmitter } from './events.js'
import { sessionStore } from './stored.js'
import { createTabs, newer, type Session, type TabMessage } from './tabs.js'
import { decodeJwt, parseTokenResponse, type TokenSet } from './tokens.js'
import type { Auth, AuthEventName, AuthNotice, AuthOptions, AuthSnapshot, Grant, GrantOptions } from './types.js'
import { systemClock } from '../ports/clock.js'
import { browserEnvironment } from '../ports/environment.js'
import { memoryStorage } from '../ports/storage.js'
import { broadcastChannel } from '../ports/channel.js'
import { webLocks } from '../ports/lock.js'
import { allowList, createAuthFetch } from '../transports/fetch.js'

const noop = () => {}

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
  const { header = 'Authorization', scheme = 'Bearer' } = options.placement ?? {}
  new Headers({ [header]: scheme }) // a header name or scheme no request could carry fails here, not at the first request

  // ── the engine's state, all of it (the refresh side keeps its own: see `refresh.ts`) ──
  /** The session as the state machine sees it: changed only by `dispatch`. Its tokens are a `Session`. */
  let state: SessionState<User> = { status: 'initializing', refreshing: false, tokens: null, generation: 0, user: null, error: null }
  /** The public snapshot, made again after a change, on first read. */
  let snapshot: AuthSnapshot<User> | null = null
  /** The login in flight: a newer login or a logout aborts it. */
  let loginCtrl: AbortController | null = null
  /** Resolved at every status change or session end: requests waiting for a session look again. */
  let changed = deferred<void>()
  /** The newest epoch whose session this tab saw end: news of it, or older, is stale. */
  let endedEpoch = -1
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
  const actions = createActions(changedSnapshot)
  const timing = createTiming(clock, leeway, policy.timeout)

  function getSnapshot(): AuthSnapshot<User> {
    const { status, refreshing, user, error, generation, tokens } = state
    return (snapshot ??= Object.freeze({
      status,
      refreshing,
      user,
      error,
      generation,
      expiresAt: tokens?.expiresAt ?? null,
      actions: actions.current(),
      isAuthenticated: status === 'authenticated',
      get isExpiringSoon() {
        return !!tokens && timing.expiring(tokens)
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
      renewed()
    }
    if (next.status !== prev.status || !tokens) {
      if (!tokens) drop(next.error ?? fail('LOGGED_OUT', 'Logged out'))
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

  /** The stored session, if another engine wrote one newer than `than` and not of an epoch that ended here. */
  async function newerStored(than: Session) {
    const stored = await store.read(mine(), tabs.seen()).catch(noop)
    return stored && stored.tokens.order[0] > endedEpoch && newer(stored.tokens, than) ? stored.tokens : null
  }
  const subject = (t: TokenSet) => decodeJwt(t.idToken ?? t.accessToken)?.sub
  const ended = (): TesseraError =>
    disposed ? fail('DISPOSED', 'Disposed') : state.status === 'expired' ? state.error! : fail('UNAUTHENTICATED', 'No session')

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
    actions.track('user', run)
    return run
  }
  /** Takes the user an authority handed over with a token response, if it did (no profile call then). */
  function userIn(body: unknown): boolean {
    const user = (body as { user?: User | null } | null)?.user
    if (user === undefined) return false
    actions.settle('user', { status: 'fulfilled', error: null })
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
    actions.track('login', run)
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
    actions.track('logout', run)
    return run
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
        if (stored && (stored.tokens.refreshToken || timing.valid(stored.tokens))) restored = stored
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
    const was = remote
    remote = true
    drop(undefined, tokens) // the refresh in flight here, if any, resolves with it
    dispatch({ type: 'session.adopted', tokens, user })
    remote = was
  }
  function onMessage(m: TabMessage<User>) {
    const current = mine()
    remote = true
    // Every peer answers: with the session, or with what it has seen, so a login here opens a newer epoch.
    if (m.type === 'hello') state.status === 'authenticated' ? tell(current!) : tabs.post({ type: 'here' })
    if (m.type === 'session' && m.tokens.order[0] > endedEpoch) {
      // Times are the sender's clock: counted again from the tokens' age on this one. Where the two
      // clocks agree (within a second) the sender's time stands, so the message's own delay does
      // not make the token look younger; a sender's clock ahead or far behind changes nothing.
      const { expiresAt, receivedAt: then } = m.tokens
      const aged = clock.now() - m.age
      const receivedAt = Math.min(aged, Math.max(then, aged - 1_000))
      const tokens = { ...m.tokens, receivedAt, expiresAt: expiresAt === null ? null : receivedAt + expiresAt - then }
      if (newer(tokens, current)) {
        timing.sample(m.took)
        adopt(tokens, m.user)
      } else if (tokens.accessToken === current?.accessToken) dispatch({ type: 'user.loaded', user: m.user })
    }
    if (m.type === 'end') {
      endedEpoch = Math.max(endedEpoch, m.epoch)
      if (current && current.order[0] <= m.epoch)
        dispatch(m.expired ? { type: 'refresh.rejected', error: fail('SESSION_EXPIRED', 'Session expired') } : { type: 'logout' })
    }
    if (m.type === 'cooldown') refresher.failed(m.ms, fail(m.code, 'Refreshing failed in another tab', { status: m.status }))
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

  /** What the refresh side (and tokens per audience) need of the engine. */
  const host: RefreshHost<User> = {
    clock,
    policy,
    random,
    settle: joinTimeout,
    shared: !!channel,
    authority,
    placement: [header, scheme],
    timing,
    tabs,
    state: () => state,
    dispatch,
    changed: () => changed.promise,
    ended,
    newerStored,
    tell,
    adopt: (tokens) => adopt(tokens, state.user),
    subjectChanged: (from, to) => subject(from) !== subject(to) && loadUser().catch(noop),
    track: (refresh) => actions.track('refresh', refresh),
    unauthorized: (generation) => emit('unauthorized', { generation }),
  }
  const refresher = createRefresher<User>(host)
  const { drop, renewed } = refresher
  /** With a proof port (DPoP), a request's grant proves that request; without one, the token's grant as is. */
  const proved = (grant: Promise<Grant>, opts: GrantOptions = {}) => (prove ? grant.then((g) => prove(g, opts)) : grant)
  /** The grant of the request's audience (`audiences`), else the session's own; `rejected`: the generation that got 401. */
  const grantFor = (opts: GrantOptions = {}, rejected?: number): Promise<Grant> =>
    audiences?.grant(opts, rejected) ??
    (opts.audience || opts.scope
      ? Promise.reject(new TypeError('createAuth: no audiences'))
      : rejected === undefined
        ? refresher.getGrant(opts)
        : refresher.handleUnauthorized(rejected, opts))
  const getGrant = (opts?: GrantOptions) => proved(grantFor(opts), opts)

  const restoring = restore().catch((e) => void dispatch({ type: 'restore.failed', error: toTesseraError(e, 'NETWORK_ERROR') }))

  const stopEnvironment = (options.environment ?? browserEnvironment).subscribe((signal) => {
    if (signal === 'online') refresher.cool(0)
    refresher.check()
  })

  const auth: Auth<User, Credentials> = {
    getSnapshot,
    subscribe: (listener) => events.on('change', listener),
    on: events.on,
    login,
    logout,
    refresh: refresher.refresh,
    getGrant,
    getAccessToken: (opts) => getGrant(opts).then((g) => g.token),
    handleUnauthorized: (generation, opts) => proved(grantFor(opts, generation), opts),
    isAllowedUrl: allowList(options.allowedOrigins, options.audiences?.origins),
    fetch: (input, init) => fetcher(input, init),
    ready: () => restoring.then(noop),
    reloadUser: () => (state.status === 'authenticated' ? loadUser() : Promise.reject(ended())),
    resetAction: (name) => actions.settle(name),
    dispose() {
      if (disposed) return
      disposed = true
      refresher.dispose()
      stopEnvironment()
      tabs.stop()
      loginCtrl?.abort()
      drop(fail('DISPOSED', 'Disposed'))
      changed.resolve()
    },
  }
  const fetcher = createAuthFetch(auth, options.fetch)
  const prove = proof?.attach(auth)
  const audiences = options.audiences?.attach(host, auth)
  return auth
}
