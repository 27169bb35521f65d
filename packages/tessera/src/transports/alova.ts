import type { AlovaGenerics, Method, RespondedHandler, RespondedHandlerRecord } from 'alova'
import type { AuthTransportApi, Grant } from '../index.js'

/**
 * Options of {@link createTesseraAuth}.
 * @example
 * ```ts
 * // A backend that flags a stale token with a header instead of a 401.
 * createTesseraAuth(auth, { isAuthError: (r) => r instanceof Response && r.headers.get('x-token-expired') === '1' })
 * ```
 */
export interface AlovaAuthOptions {
  /**
   * Whether a response (or, for adapters that throw on 4xx, an error) is an auth error that
   * deserves a refresh and one replay.
   * @defaultValue `status === 401` on the response, or on `error.response`
   */
  isAuthError?: (responseOrError: unknown, method: Method) => boolean
}

/**
 * What {@link createTesseraAuth} returns: the two hooks of alova's own token authentication.
 * @example
 * ```ts
 * const { onAuthRequired, onResponseRefreshToken } = createTesseraAuth(auth)
 * createAlova({ requestAdapter: adapterFetch(), beforeRequest: onAuthRequired(), responded: onResponseRefreshToken() })
 * ```
 */
export interface TesseraAlovaAuth {
  /** Wraps your `beforeRequest` (run after the token is attached). */
  onAuthRequired<AG extends AlovaGenerics>(beforeRequest?: (method: Method<AG>) => void | Promise<void>): (method: Method<AG>) => Promise<void>
  /** Wraps your `responded` (a function or `{ onSuccess, onError, onComplete }`). */
  onResponseRefreshToken<AG extends AlovaGenerics>(responded?: RespondedHandler<AG> | RespondedHandlerRecord<AG>): RespondedHandlerRecord<AG>
}

type Meta = { authRole?: unknown; tessera?: unknown } | undefined
const REPLAY = Symbol('tessera.replay')
const NONCE = Symbol('tessera.nonce')
type Marked = Method & { [REPLAY]?: true; [NONCE]?: true }

const statusOf = (x: unknown) => (x as { status?: unknown; response?: { status?: unknown } } | null)?.status ?? (x as { response?: { status?: unknown } } | null)?.response?.status
const defaultIsAuthError = (x: unknown) => statusOf(x) === 401

/**
 * Token authentication for alova, shaped like alova's own `createClientTokenAuthentication`, with
 * the session engine doing the refreshing.
 *
 * - `onAuthRequired` waits for a token valid now (held while a refresh runs, P1), attaches
 *   the token (`Authorization: Bearer …`, or the engine's `placement`) read at send time (P7) and stamps the request with the token's
 *   generation (P2). Visitor requests (`meta: { authRole: 'visitor' | null | 'login' |
 *   'refreshToken' }` as in alova, or `meta: { tessera: 'none' }`) and URLs outside the allow-list
 *   are sent untouched (I5). When the session ends, a held request rejects with the engine's
 *   {@link TesseraError} (P3).
 * - `onResponseRefreshToken` replays a 401 once, through alova (`method.send(true)`, so your
 *   hooks run for the replay), after the one refresh of the session, or at once when the token
 *   was already replaced (P2, P5). A second 401 reaches your handlers as is.
 * - With a proof port (DPoP), each send is proven for its method and URL; a server asking for its
 *   nonce gets the request once more, which is not a 401: no refresh, and the replay is kept.
 * - Errors are never swallowed (P4, alova #772): without your `onError`, adapter errors reject.
 *
 * @example
 * ```ts
 * import { createAlova } from 'alova'
 * import adapterFetch from 'alova/fetch'
 * import { createTesseraAuth } from 'tessera/alova'
 *
 * const { onAuthRequired, onResponseRefreshToken } = createTesseraAuth(auth)
 * const alova = createAlova({
 *   requestAdapter: adapterFetch(),
 *   beforeRequest: onAuthRequired(),
 *   responded: onResponseRefreshToken((response) => {
 *     if (!response.ok) throw new Error(`HTTP ${response.status}`)
 *     return response.json()
 *   }),
 * })
 * const items = await alova.Get('/api/items')
 * await alova.Get('/api/status', { meta: { authRole: 'visitor' } }) // a visitor request
 * ```
 */
export function createTesseraAuth(auth: AuthTransportApi, options: AlovaAuthOptions = {}): TesseraAlovaAuth {
  const isAuthError = options.isAuthError ?? defaultIsAuthError
  // alova hands the same clone of the method to beforeRequest and to responded.
  const sent = new WeakMap<object, Grant>()

  /** Sends `method` again through alova, marked with `mark`; for a replay, after the session's one refresh (or at once when the token was replaced). */
  async function resend(method: Marked, mark: typeof REPLAY | typeof NONCE, responseOrError: unknown, generation?: number) {
    void (responseOrError as Partial<Response> | null)?.body?.cancel().catch(() => {})
    // The request's URL: a token per audience is refreshed for the API that refused it.
    if (generation !== undefined) await auth.handleUnauthorized(generation, { method: method.type, url: urlOf(method) })
    // The transform runs once, for the outer request (as alova does); the marks travel with
    // alova's clone of this method into the next send: one replay, one nonce retry (P5).
    method.config.transform = undefined
    method[mark] = true
    return method.send(true)
  }
  /** Sends again what deserves it: a DPoP nonce challenge once (not a 401: no refresh, the replay kept), an auth error once; `undefined` otherwise. */
  function again(method: Marked, x: unknown) {
    const grant = sent.get(method)
    if (!grant) return
    // Asked twice, it is the server's answer: delivered, no refresh.
    if (grant.retry?.((x as { response?: Response } | null)?.response ?? (x as Response))) return method[NONCE] ? undefined : resend(method, NONCE, x)
    if (!method[REPLAY] && isAuthError(x, method)) return resend(method, REPLAY, x, grant.generation)
  }

  return {
    onAuthRequired: (beforeRequest) => async (method) => {
      const meta = method.meta as Meta
      const role = meta?.authRole
      const visitor = meta?.tessera === 'none' || role === null || role === 'visitor' || role === 'login' || role === 'refreshToken'
      const url = urlOf(method)
      if (!visitor && auth.isAllowedUrl(url)) {
        const grant = await auth.getGrant({ method: method.type, url })
        // alova gave us its own copy of the headers: setting one does not touch the user's object.
        ;Object.assign(method.config.headers as Record<string, string>, grant.headers)
        sent.set(method, grant)
      }
      await beforeRequest?.(method)
    },
    onResponseRefreshToken: (responded) => {
      const { onSuccess, onError, onComplete } = typeof responded === 'function' ? { onSuccess: responded, onError: undefined, onComplete: undefined } : (responded ?? {})
      return {
        onSuccess(response, method) {
          return again(method, response) ?? (onSuccess ? onSuccess(response, method) : response)
        },
        async onError(error, method) {
          const sending = again(method, error)
          if (sending) return sending as Promise<never>
          if (!onError) throw error
          return onError(error, method)
        },
        onComplete,
      }
    },
  }
}

/** The URL alova will request, built as alova builds it (`baseURL` + `url`, unless absolute). */
function urlOf({ baseURL, url }: Method): string {
  if (/^https?:\/\//i.test(url)) return url
  return baseURL.replace(/\/$/, '') + (url && !url.startsWith('/') ? '/' : '') + url
}
