import { fail } from './errors.js'
import { abortable, deferred, isRejection, retry, type Deferred } from './retry.js'
import type { RefreshHost } from './refresh.js'
import type { Session } from './tabs.js'
import { parseTokenResponse, type TokenSet } from './tokens.js'
import type { Auth, Grant, GrantOptions, TokenRequest, WaitOptions } from './types.js'

/** The token of one audience and scope. */
interface Entry {
  /** The epoch of the session it came from: a token of another session is never sent. */
  epoch: number
  tokens: TokenSet | null
  grant: Grant | null
  /** Counts this entry's tokens, as the session's generation counts its own (P2). */
  generation: number
  /** A request sent with this generation got 401: refreshed even if not expiring. */
  rejected: number
  /** The one refresh of this audience and scope in flight. */
  flight: Deferred<void> | null
}

/** What {@link createAuth} calls on the audiences port. @internal */
export interface AudienceTokens {
  /** The grant of the request's audience; `undefined` for a request that is not an audience's (the session's own token then). */
  grant(request: GrantOptions, rejected?: number): Promise<Grant> | undefined
}

/**
 * Tokens per audience, for {@link AuthOptions.audiences}: made by {@link createAudiences}.
 * The engine attaches it; nothing here is called by apps.
 */
export interface AudiencePort {
  /** The origins it maps: they may receive a token (their audience's). */
  readonly origins: string[]
  /** @internal */
  attach<User>(host: RefreshHost<User>, auth: Pick<Auth, 'subscribe'>): AudienceTokens
}

/**
 * Tokens per audience (auth0-spa-js' `getTokenSilently({ audience, scope })`): pass it to
 * `createAuth({ audiences })`. Each origin of `origins` is mapped to an audience (or an audience and
 * scope): transports send requests to that origin with that audience's token, never the session's,
 * and the origins are allowed (I5); other origins get no token. `auth.getAccessToken({ audience,
 * scope })` asks for any audience.
 *
 * @remarks One token is cached per audience and scope and refreshed single-flight (concurrent
 * callers share one request) from the session's refresh token, with the authority's
 * `refresh(refreshToken, signal, { audience, scope })`, under the session's refresh lock: no refresh
 * token is presented twice (I1, P8). When the server rotates the refresh token on that request, the
 * new one becomes the session's (a new order, told to the other tabs before the lock is let go). A
 * refusal of an audience's token (`INVALID_GRANT`: an audience or scope the server does not grant)
 * rejects its callers and leaves the session alone. Every audience token is dropped when the session
 * ends (logout, expiry) or another takes its place (a login here or in another tab); a refresh of
 * the session keeps them. Tokens per audience stay in this tab's memory (never stored or shared),
 * and are refreshed when asked for inside their leeway or after a 401 from their API (no
 * `unauthorized` event then: the generation a grant of an audience carries counts that audience's
 * tokens, not the session's).
 *
 * @param origins - origin → audience (or `{ audience, scope }`), e.g. `{ 'https://api.example': 'https://api.example/' }`
 * @throws TypeError when a key is not a URL.
 * @example
 * ```ts
 * const auth = createAuth({
 *   authority: oidcAuthority({ issuer, clientId, redirectUri }),
 *   audiences: createAudiences({ 'https://billing.example': { audience: 'https://billing.example/', scope: 'invoices' } }),
 * })
 * await auth.fetch('https://billing.example/invoices') // with the billing API's token
 * const token = await auth.getAccessToken({ audience: 'https://reports.example/' })
 * ```
 */
export function createAudiences(origins: Record<string, string | TokenRequest> = {}): AudiencePort {
  const byOrigin = new Map(Object.entries(origins).map(([o, r]) => [new URL(o).origin, typeof r === 'string' ? { audience: r } : r]))
  return { origins: [...byOrigin.keys()], attach: (host, auth) => perAudience(byOrigin, host, auth) }
}

function perAudience<User>(byOrigin: Map<string, TokenRequest>, host: RefreshHost<User>, auth: Pick<Auth, 'subscribe'>): AudienceTokens {
  const cache = new Map<string, Entry>()
  const [header, scheme] = host.placement
  const mine = () => host.state().tokens as Session | null
  /** Why a token of the session in hand's audience can no longer be given. */
  const ended = () => (mine() ? fail('ABORTED', 'Another session took over') : (host.state().error ?? fail('LOGGED_OUT', 'Logged out')))

  // Every token of a session that ended, or gave way to another, is dropped; waiters reject (I4).
  auth.subscribe(() => {
    const epoch = mine()?.order[0]
    for (const [key, e] of cache)
      if (e.epoch !== epoch) {
        cache.delete(key)
        const error = ended()
        e.flight?.ctrl.abort(error)
        e.flight?.reject(error)
      }
  })

  /** The session, once there is one (waiting while it restores or logs in). */
  async function live(signal?: AbortSignal | null): Promise<Session> {
    for (;;) {
      const { status, tokens } = host.state()
      if (status === 'authenticated') return tokens as Session
      if (status !== 'initializing' && status !== 'authenticating') throw host.ended()
      const change = host.changed()
      await abortable(change, signal)
      if (change === host.changed()) throw host.ended() // disposed: nothing will change any more
    }
  }

  /** Which token a request wants: named, or its origin's; `undefined` for the session's own. */
  function wanted(o: GrantOptions): TokenRequest | undefined {
    if (o.audience || o.scope) return o
    if (!o.url || !byOrigin.size) return
    try {
      return byOrigin.get(new URL(o.url, globalThis.location?.href).origin)
    } catch {}
  }

  async function tokenFor({ audience, scope }: TokenRequest, opts: WaitOptions, rejected?: number): Promise<Grant> {
    const key = JSON.stringify([audience, scope])
    let refreshed = false
    for (;;) {
      const { order } = await live(opts.signal)
      let e = cache.get(key)
      if (e?.epoch !== order[0]) cache.set(key, (e = { epoch: order[0], tokens: null, grant: null, generation: 0, rejected: -1, flight: null }))
      if (rejected === e.generation) e.rejected = rejected
      rejected = undefined
      const { tokens: t, generation } = e
      const usable = t && e.rejected !== generation
      // One refresh per call at most: a token just issued is used even if already "expiring".
      if (usable && (refreshed || !host.timing.expiring(t))) return e.grant!
      try {
        await abortable(fly(e, { audience, scope }), opts.signal)
        refreshed = true
      } catch (error) {
        const now = mine()
        if (now && now.order[0] !== order[0]) continue // another session took over: ask again with its refresh token
        // A failed refresh keeps a token that is still valid (P11).
        if (usable && e.generation === generation && host.timing.valid(t) && !isRejection(error)) return e.grant!
        throw error
      }
    }
  }

  /** The one refresh of `e` in flight, claimed before any await (I1, P17). */
  function fly(e: Entry, request: TokenRequest): Promise<void> {
    if (e.flight) return e.flight.promise
    const d = (e.flight = deferred<void>())
    host.tabs.withLock(() => locked(e, request, d.ctrl.signal), d.ctrl.signal).then(
      ({ accessToken, expiresAt, receivedAt }) => {
        if (e.flight !== d) return
        e.flight = null
        e.tokens = { accessToken, expiresAt, receivedAt }
        const generation = ++e.generation
        e.grant = { token: accessToken, generation, headers: Object.freeze({ [header]: scheme ? `${scheme} ${accessToken}` : accessToken }) }
        d.resolve()
      },
      (error) => {
        if (e.flight !== d) return
        e.flight = null
        d.reject(error)
      },
    )
    return d.promise
  }

  /** The audience's refresh, holding the session's lock: the refresh token is the session's latest, and a rotated one becomes it. */
  async function locked(e: Entry, request: TokenRequest, signal: AbortSignal): Promise<TokenSet> {
    let s = mine()
    // Another tab may have rotated the refresh token while this one waited: take its session first (P10).
    const shared = s && (await host.newerStored(s))
    if (shared) host.adopt((s = shared))
    if (!s || s !== mine() || s.order[0] !== e.epoch) throw ended()
    const { clock } = host
    const body = await retry((sig) => host.authority.refresh(s.refreshToken, sig, request), host.policy, clock, signal, host.random)
    const fresh = parseTokenResponse(body, clock.now())
    const rotated = fresh.refreshToken
    // A rotating server: the new refresh token is the session's now, told to the other tabs before
    // the lock is let go, so that none presents the old one again (I1). Not rotated, the session is
    // told as it is: the outcome that lets tabs waiting without Web Locks go on at once.
    const next: Session = rotated && rotated !== s.refreshToken && s === mine() ? { ...s, refreshToken: rotated, order: [s.order[0], s.order[1] + 1] } : s
    host.tell(next, 0)
    if (next !== s) host.dispatch({ type: 'session.adopted', tokens: next, user: host.state().user })
    return fresh
  }

  return {
    grant(request, rejected) {
      const wants = wanted(request)
      return wants && tokenFor(wants, request, rejected)
    },
  }
}
