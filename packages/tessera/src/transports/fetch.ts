import { fail } from '../core/errors.js'
import type { Auth, AuthRequestInit } from '../core/types.js'

const LOCAL = 'http://tessera.invalid'
/** "/x" where x is not "/", "\\", a tab or a newline (any of which could make it "//host"): a path on the page's own origin. */
const PATH = /^\/(?![/\\\t\n\r])/

/**
 * Whether a token may be sent to a URL: relative ones, the page's own origin, `origins` and `more` (I5).
 * Outside a page only `origins` (and relative URLs, resolved against a base no server has).
 * @internal
 */
export function allowList(origins: string[] = [], more: string[] = []): (url: string | URL) => boolean {
  const allowed = [...origins, ...more].map((o) => new URL(o).origin)
  return (url) => {
    const page = globalThis.location
    const s = String(url)
    try {
      const own = page ? (page.origin ?? new URL(page.href).origin) : LOCAL
      // No parse where the answer is plain: a PATH is the page's, and "<origin>/…" is <origin> ("/"
      // ends the authority). Not on a page with an opaque origin ("null"), where a parse says otherwise.
      const origin =
        own !== 'null' && (PATH.test(s) || s.startsWith(own + '/'))
          ? own
          : (allowed.find((o) => s.startsWith(o + '/')) ?? new URL(s, page?.href ?? LOCAL).origin)
      return origin === own || allowed.includes(origin)
    } catch {
      return false
    }
  }
}

/** The part of the engine a transport uses: nothing private. */
export type AuthTransportApi = Pick<Auth, 'getGrant' | 'handleUnauthorized' | 'isAllowedUrl'>

/**
 * Wraps a `fetch` so that requests to allowed origins carry the session's token.
 *
 * - The token is read at send time and each request remembers its generation (P2, P7).
 * - A 401 refreshes once (shared with every other request, P1) and replays once (I3, P5); a 401
 *   for an already-replaced token replays at once with the new one.
 * - `init.auth: 'none'` and other origins are sent untouched (I5).
 * - With a proof port (DPoP), every attempt is proven for its method and URL; a server asking for
 *   its nonce gets the request once more, which is not a 401: no refresh, and the replay is kept.
 * - A request waiting for a refresh honours its `AbortSignal`; when the session ends it rejects
 *   with `LOGGED_OUT` / `SESSION_EXPIRED` (I4).
 *
 * @throws {@link TesseraError} `BODY_NOT_REPLAYABLE` when a 401 answers a one-shot stream body.
 * @example
 * ```ts
 * const api = createAuthFetch(auth, myFetch)
 * const res = await api('/api/items', { method: 'POST', body: JSON.stringify(item) })
 * ```
 */
export function createAuthFetch(auth: AuthTransportApi, fetchImpl?: typeof fetch) {
  const send: typeof fetch = fetchImpl ?? ((input, init) => globalThis.fetch(input, init))
  return async function authFetch(input: RequestInfo | URL, init: AuthRequestInit = {}): Promise<Response> {
    const { auth: mode, ...rest } = init
    const request = typeof Request !== 'undefined' && input instanceof Request ? input : null
    const url = request ? request.url : String(input)
    if (mode === 'none' || !auth.isAllowedUrl(url)) return send(input, rest)
    // What a proof (DPoP) signs: the request's method and URL.
    const opts = { signal: rest.signal ?? request?.signal, method: rest.method ?? request?.method, url }
    const once = typeof ReadableStream !== 'undefined' && rest.body instanceof ReadableStream
    const own = rest.headers ?? request?.headers
    let grant = await auth.getGrant(opts)
    let challenged = 0 // DPoP nonce challenges seen
    let replayed = false
    for (;;) {
      // `rest` is this call's own copy of `init`. With no headers of its own, the grant's (a plain
      // object) go as they are: no Headers made per request.
      const headers = (rest.headers = own ? new Headers(own) : grant.headers)
      if (own) for (const name in grant.headers) (headers as Headers).set(name, grant.headers[name]!)
      // A Request is cloned per attempt so its body can be sent again; plain bodies are reusable.
      const response = await (request ? send(new Request(request.clone(), rest)) : send(input, rest))
      // A server asking for its DPoP nonce gets the request once more: not a 401 (no refresh, the replay kept).
      if (grant.retry?.(response) && !once && !challenged++) {
        void response.body?.cancel().catch(noop)
        grant = await auth.getGrant(opts)
        continue
      }
      if (response.status !== 401 || replayed || challenged > 1) return response // a second nonce challenge is the server's answer
      if (once) throw fail('BODY_NOT_REPLAYABLE', 'Got 401 for a request whose stream body cannot be sent twice', { status: 401, response })
      // The 401's body is not read: its connection is free for others while the refresh runs.
      void response.body?.cancel().catch(noop)
      grant = await auth.handleUnauthorized(grant.generation, opts)
      replayed = true
    }
  }
}
const noop = () => {}
