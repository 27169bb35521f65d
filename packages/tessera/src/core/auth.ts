import { fail, type TesseraError } from './errors.js'
import { transition, type AuthEvent, type SessionState } from './machine.js'
import { abortable, defaultRetry, isRejection, retry, timed, toTesseraError } from './retry.js'
import { createEmitter } from './events.js'
import { sessionStore } from './stored.js'
import { createTabs, idOf, newer, type SessionId, type TabMessage } from './tabs.js'
import { decodeJwt, parseTokenResponse, type TokenSet } from './tokens.js'
import type { ActionName, ActionState, Auth, AuthEventName, AuthNotice, AuthOptions, AuthSnapshot, Grant, WaitOptions } from './types.js'
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
 * changed, outside any critical section, so handlers may call any verb (P16).
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
  const { authority, key = 'tessera', leeway = 60_000, clock = systemClock, random = Math.random } = options
  const policy = { ...defaultRetry, ...options.retry }
  const allowed = (options.allowedOrigins ?? []).map((o) => new URL(o).origin)
  const { header = 'Authorization', scheme = 'Bearer' } = options.placement ?? {}
  new Headers({ [header]: scheme }) // a header name or scheme no request could carry fails here, not at the first request

  let state: SessionState<User> = { status: 'initializing', refreshing: false, tokens: null, generation: 0, user: null, error: null }
  let actions: AuthSnapshot<User>['actions'] = { login: IDLE, logout: IDLE, refresh: IDLE, user: IDLE }
  const latest: Partial<Record<ActionName, Promise<unknown>>> = {}
  let snapshot: AuthSnapshot<User> | null = null
  let inflight: Deferred<TokenSet> | null = null
  let loginCtrl: AbortController | null = null
  let rejectedGeneration = -1
  let granted: Grant | null = null // the grant of the current generation, made once
  let cooldownUntil = 0
  let timer: unknown
  let disposed = false
  let changed = deferred<void>()
  let remote = false // the change being dispatched came from another tab: do not echo it
  let lastEnded: SessionId | null = null // the newest session this tab saw end: news of it or older is stale

  // ── notifications: queued, delivered after the state changed, never re-entered (P16) ──
  const events = createEmitter<AuthNotice<User>>()
  const emit = (type: AuthEventName | 'change', extra?: Partial<AuthNotice<User>>) =>
    events.emit(type, () => ({ type, snapshot: getSnapshot(), ...extra }) as AuthNotice<User>)
  const store = sessionStore<User>(options.storage ?? memoryStorage(), key, (error) => emit('storage-error', { error }))
  const changedSnapshot = () => {
    snapshot = null
    emit('change')
  }

  /** Milliseconds the token has left, minus `lead` (the leeway, capped at a quarter of its life). */
  const left = (t: TokenSet, lead?: 1) =>
    t.expiresAt === null ? Infinity : t.expiresAt - clock.now() - (lead ? Math.min(leeway, (t.expiresAt - t.receivedAt) / 4) : 0)
  const expiring = (t: TokenSet) => left(t, 1) <= 0
  const valid = (t: TokenSet) => left(t) > 0
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
    if (next === prev) return false
    state = next
    if (next.tokens !== prev.tokens || next.user !== prev.user) store.write(next.tokens, next.user)
    if (next.tokens !== prev.tokens) {
      cooldownUntil = 0 // new tokens: whatever outage there was is over
      arm()
    }
    if (next.status !== prev.status || !next.tokens) {
      if (!next.tokens && inflight) settleRefresh(next.error ?? fail('LOGGED_OUT', 'Logged out'))
      changed.resolve()
      changed = deferred()
    }
    // Refresh outcomes are told to the other tabs from inside the lock (see startRefresh).
    if (!remote && next.tokens && (event.type === 'login.succeeded' || event.type === 'user.loaded'))
      tabs.post({ type: 'session', tokens: next.tokens, user: next.user })
    if (prev.tokens && !next.tokens) sawEnd(prev.tokens)
    if (!remote && prev.tokens && event.type === 'logout') tabs.post({ type: 'end', expired: false, session: idOf(prev.tokens) })
    changedSnapshot()
    if (next.status !== prev.status) emit('transition', { from: prev.status, event: event.type })
    for (const n of notices) emit(n, { error: next.error ?? undefined })
    return true
  }

  function settleRefresh(error: TesseraError) {
    inflight!.ctrl.abort(error)
    inflight!.reject(error)
    inflight = null
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

  // ── proactive refresh: a timer is only a hint to look at the clock again (P14) ──
  function arm() {
    clock.clearTimeout(timer)
    const t = state.tokens
    if (disposed || state.status !== 'authenticated' || !t || t.expiresAt === null || inflight) return
    // Never sooner than a second after the token arrived: a server handing out tokens that are
    // (nearly) dead on arrival gets one refresh a second, not a loop.
    const now = clock.now()
    timer = clock.setTimeout(check, Math.max(left(t, 1), cooldownUntil - now, t.receivedAt + 1_000 - now, 0))
  }
  function check() {
    const t = state.tokens
    const now = clock.now()
    if (state.status === 'authenticated' && t && expiring(t) && now >= cooldownUntil && now >= t.receivedAt + 1_000) startRefresh().catch(noop)
    else arm()
  }

  // ── refresh: single flight, claimed before the first await (I1, P17) ──
  function startRefresh(): Promise<TokenSet> {
    if (inflight) return inflight.promise
    if (disposed || state.status !== 'authenticated') return Promise.reject(ended())
    const d = (inflight = deferred<TokenSet>())
    const before = state.tokens!
    clock.clearTimeout(timer)
    dispatch({ type: 'refresh.started' })
    track('refresh', d.promise)
    const signal = d.ctrl.signal
    tabs
      .withLock(async () => {
        // Another tab may have refreshed while this one waited: take its result, spend nothing (P10).
        const stored = await store.read().catch(noop)
        if (stored && stored.tokens.accessToken !== before.accessToken && valid(stored.tokens)) return stored.tokens
        const refreshToken = state.tokens?.refreshToken
        // The outcome is told to the other tabs before the lock is released, so a tab that gets
        // the lock next already knows (I1 across tabs, P12).
        try {
          const fresh = await retry(async (s) => parseTokenResponse(await authority.refresh(refreshToken, s), clock.now()), policy, clock, signal, random)
          // A server that does not rotate (or sends no new ID token) keeps the ones we had.
          const tokens = { ...fresh, refreshToken: fresh.refreshToken ?? refreshToken, idToken: fresh.idToken ?? before.idToken }
          tabs.post({ type: 'session', tokens, user: state.user })
          return tokens
        } catch (e) {
          const { code, message, status } = e as TesseraError
          if (!signal.aborted)
            tabs.post(
              isRejection(e)
                ? { type: 'end', expired: true, session: idOf(before) }
                : { type: 'cooldown', until: cooldownEnd(e as TesseraError), code, message, status },
            )
          throw e
        }
      }, signal)
      .then(
      (tokens) => {
        if (inflight !== d) {
          // Another tab's session was adopted meanwhile; ours went to the other tabs, so keep
          // whichever is newer, as they do (I7). If the session ended instead, never revive it (P10).
          if (state.tokens && newer(tokens, state.tokens)) adoptRemote(tokens, state.user)
          return
        }
        inflight = null
        dispatch({ type: 'refresh.succeeded', tokens })
        d.resolve(tokens)
        if (subject(tokens) !== subject(before)) loadUser().catch(noop)
      },
      (error: TesseraError) => {
        if (inflight !== d) return
        if (isRejection(error)) {
          inflight = null
          const expired = fail('SESSION_EXPIRED', 'Session expired', { cause: error, status: error.status })
          dispatch({ type: 'refresh.rejected', error: expired })
          return d.reject(expired)
        }
        // Transient or unexpected: keep the session and its still-valid token (I6, P11), cool down.
        failRefresh(cooldownEnd(error), error)
      },
    )
    return d.promise
  }
  const cooldownEnd = (error: TesseraError) => clock.now() + Math.max(policy.cooldown, error.retryAfter ?? 0)
  function failRefresh(until: number, error: TesseraError) {
    const d = inflight
    inflight = null
    cooldownUntil = Math.max(cooldownUntil, until)
    dispatch({ type: 'refresh.failed', error })
    arm()
    d?.ctrl.abort(error)
    d?.reject(error)
  }
  const subject = (t: TokenSet) => decodeJwt(t.idToken ?? t.accessToken)?.sub

  const ended = (): TesseraError =>
    disposed ? fail('DISPOSED', 'Disposed') : state.status === 'expired' ? state.error! : fail('UNAUTHENTICATED', 'No session')

  // ── tokens for requests ──
  const grant = (token: string, generation: number): Grant =>
    granted?.generation === generation
      ? granted
      : (granted = { token, generation, headers: Object.freeze({ [header]: scheme ? `${scheme} ${token}` : token }) })
  async function getGrant(opts: WaitOptions = {}): Promise<Grant> {
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
        if (!inflight && clock.now() < cooldownUntil) throw state.error ?? fail('NETWORK_ERROR', 'Refresh paused after a failure')
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

  function handleUnauthorized(generation: number, opts?: WaitOptions): Promise<Grant> {
    emit('unauthorized', { generation })
    if (generation === state.generation) rejectedGeneration = generation
    return getGrant(opts)
  }

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
  /** The user an authority handed over with the token response, if it did (no profile call then). */
  function userIn(body: unknown): boolean {
    const user = (body as { user?: User | null } | null)?.user
    if (user === undefined) return false
    delete latest.user
    setAction('user', { status: 'fulfilled', error: null })
    dispatch({ type: 'user.loaded', user })
    return true
  }

  // ── verbs ──
  function login(credentials: Credentials): Promise<void> {
    loginCtrl?.abort()
    const ctrl = (loginCtrl = new AbortController())
    dispatch({ type: 'login.started' })
    const run = (async () => {
      const body = await call((signal) => authority.login(credentials, signal), ctrl.signal)
      const tokens = parseTokenResponse(body, clock.now())
      if (loginCtrl !== ctrl) throw 0
      loginCtrl = null
      dispatch({ type: 'login.succeeded', tokens })
      if (!userIn(body)) await loadUser().catch(noop)
    })().catch((e) => {
      // Superseded by a newer login or a logout: this result is not the session's any more.
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
    if (!inflight) cooldownUntil = 0 // an explicit call is not an automatic retry: it may go now
    const p = startRefresh()
    return inflight ? (inflight.shared ??= p.then(noop)) : p.then(noop)
  }

  /** Calls the authority with a timeout: nothing it does may keep the engine waiting forever (I2). */
  const call = <T>(fn: (signal: AbortSignal) => Promise<T>, outer?: AbortSignal) => timed(fn, policy.timeout, clock, outer)

  async function restore() {
    // A callback in the URL (OIDC) is this page's own login: it comes before anything stored or shared.
    const callback = authority.hasCallback?.()
    let restored: { tokens: TokenSet; user: User | null } | null = null
    if (!callback)
      try {
        restored = await store.read()
        if (restored && !restored.tokens.refreshToken && !valid(restored.tokens)) restored = null
      } catch (error) {
        emit('storage-error', { error: error as TesseraError })
      }
    if (!restored && !callback && channel) {
      // Memory-only tokens across tabs: ask the peers for the live session, within one round (I7).
      tabs.post({ type: 'hello' })
      await new Promise<void>((r) => (clock.setTimeout(r, joinTimeout), changed.promise.then(r)))
      if (state.status !== 'initializing') return
    }
    if (!restored && authority.restore) {
      const body = await call((signal) => authority.restore!(signal))
      if (body != null) {
        restored = { tokens: parseTokenResponse(body, clock.now()), user: null }
        tabs.post({ type: 'session', ...restored })
      }
    }
    dispatch(restored ? { type: 'restore.succeeded', ...restored } : { type: 'restore.failed', error: null })
    if (restored && !restored.user) await loadUser().catch(noop)
  }

  // ── across tabs: one truth per session key (I7) ──
  function sawEnd(session: SessionId) {
    if (newer(session, lastEnded)) lastEnded = idOf(session)
  }
  function adoptRemote(tokens: TokenSet, user: User | null) {
    const d = inflight
    inflight = null
    const was = remote
    remote = true
    dispatch({ type: 'session.adopted', tokens, user })
    remote = was
    d?.ctrl.abort(fail('ABORTED', 'Another tab refreshed'))
    d?.resolve(tokens)
  }
  const channel = options.channel === undefined ? broadcastChannel(`tessera:${key}`) : options.channel
  const lock = options.lock === undefined ? webLocks() : options.lock
  const { joinTimeout = 150, lockPatience = policy.timeout } = options
  const tabs = createTabs<User>(channel, lock, `tessera:${key}`, clock, lockPatience, joinTimeout, (m: TabMessage<User>) => {
    const { tokens, user } = state
    remote = true
    if (m.type === 'hello' && state.status === 'authenticated') tabs.post({ type: 'session', tokens: tokens!, user })
    // Messages can cross: the newest session wins everywhere.
    const t = m.type === 'session' && m.tokens
    if (t && newer(t, tokens ?? lastEnded)) adoptRemote(t, m.user)
    else if (t && t.accessToken === tokens?.accessToken) dispatch({ type: 'user.loaded', user: m.user })
    if (m.type === 'end') sawEnd(m.session)
    if (m.type === 'end' && tokens && !newer(tokens, m.session))
      dispatch(m.expired ? { type: 'refresh.rejected', error: fail('SESSION_EXPIRED', 'Session expired') } : { type: 'logout' })
    if (m.type === 'cooldown') failRefresh(m.until, fail(m.code, m.message, { status: m.status }))
    remote = false
  })

  const restoring = restore().catch((e) => void dispatch({ type: 'restore.failed', error: toTesseraError(e, 'NETWORK_ERROR') }))

  const stopEnvironment = (options.environment ?? browserEnvironment).subscribe((signal) => {
    if (signal === 'online') cooldownUntil = 0
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
      stopEnvironment()
      tabs.stop()
      loginCtrl?.abort()
      if (inflight) settleRefresh(fail('DISPOSED', 'Disposed'))
      changed.resolve()
    },
  }
  const fetcher = createAuthFetch(auth, options.fetch)
  return auth
}
