import type { AxiosError, AxiosInstance, AxiosRequestConfig, InternalAxiosRequestConfig } from 'axios'
import type { AuthTransportApi, Grant } from '../index.js'

declare module 'axios' {
  interface AxiosRequestConfig {
    /**
     * Tessera's per-request switch (named so it does not clash with axios' own `auth`).
     * - `'none'`: a visitor request, sent untouched: no token, no refresh, no replay.
     * - `'no-replay'`: carries the token but a 401 is returned as is (set by Tessera on replays).
     * @defaultValue a token on allowed URLs, one replay after a 401
     */
    tessera?: 'none' | 'no-replay'
  }
}

/**
 * Options of {@link attachAuth}.
 * @example
 * ```ts
 * // This API answers 419 when the token is stale.
 * attachAuth(api, auth, { isAuthError: (error) => error.response?.status === 419 })
 * ```
 */
export interface AxiosAuthOptions {
  /**
   * Whether a failed request is an auth error that deserves a refresh and one replay.
   * @defaultValue `error.response?.status === 401`
   */
  isAuthError?: (error: AxiosError) => boolean
}

const defaultIsAuthError = (error: AxiosError) => error.response?.status === 401

/** The generation of the token a request was sent with, stamped on axios' merged config (a number: nothing secret). */
const GENERATION = Symbol('tessera.generation')
type Sent = InternalAxiosRequestConfig & { [GENERATION]?: number; tesseraNonce?: true }

/**
 * Makes an axios instance send the session's token and survive expiry.
 *
 * - The request interceptor waits for a token valid now (holding the request while a refresh
 *   runs), attaches the token (`Authorization: Bearer …`, or the engine's `placement`) read at send time (P7) and stamps the request with
 *   the token's generation (P2). Visitor requests (`tessera: 'none'`) and URLs outside the
 *   allow-list (resolved with `baseURL` by `instance.getUri`) are sent untouched (I5).
 * - A 401 (or `options.isAuthError`) joins the one refresh of the session, or, when the token
 *   it carried was already replaced, replays at once without refreshing (P1, P2). The replay goes
 *   through the same instance, marked `tessera: 'no-replay'`, so it is replayed at most once (P5).
 * - Errors are never swallowed (P4): other errors, and a second 401, reject unchanged; a request
 *   held while the session ends rejects with the engine's {@link TesseraError}
 *   (`SESSION_EXPIRED`, `LOGGED_OUT`, …).
 * - The engine refreshes through its authority's own `fetch`, never through this instance (P6).
 * - With a proof port (DPoP), each attempt is proven for its method and URL; a server asking for
 *   its nonce gets the request once more, which is not a 401: no refresh, and the replay is kept.
 *
 * @remarks Interceptors of this instance run for the replay too; do not add a token yourself.
 * @returns `detach()`, which ejects both interceptors.
 * @example
 * ```ts
 * import axios from 'axios'
 * import { attachAuth } from 'tessera/axios'
 *
 * const api = axios.create({ baseURL: '/api' })
 * const detach = attachAuth(api, auth)
 * const { data } = await api.get('/items')
 * await api.get('/status', { tessera: 'none' }) // a visitor request
 * ```
 */
export function attachAuth(instance: AxiosInstance, auth: AuthTransportApi, options: AxiosAuthOptions = {}): () => void {
  const isAuthError = options.isAuthError ?? defaultIsAuthError
  // A request carries its generation on the config (it survives a later interceptor's copy). Only a
  // proven grant (DPoP), which keeps the server's nonce, is kept beside it, off the config where a
  // logger would print it: a WeakMap entry for every request cost a storm of 1 000 ~2 % of its CPU.
  const proven = new WeakMap<InternalAxiosRequestConfig, Grant>()
  const signalOf = (config: AxiosRequestConfig) =>
    typeof AbortSignal !== 'undefined' && config.signal instanceof AbortSignal ? config.signal : null

  const request = instance.interceptors.request.use(async (config) => {
    const url = uriOf(instance, config)
    // axios' merge copies symbol keys: a config sent before with a token comes back with its stamp.
    ;(config as Sent)[GENERATION] = undefined
    if (config.tessera === 'none' || url === null || !auth.isAllowedUrl(url)) return config
    const grant = await auth.getGrant({ signal: signalOf(config), method: config.method, url })
    for (const name in grant.headers) config.headers.set(name, grant.headers[name])
    ;(config as Sent)[GENERATION] = grant.generation
    if (grant.retry) proven.set(config, grant)
    return config
  })

  const response = instance.interceptors.response.use(
    (res) => (proven.get(res.config)?.retry?.(res), res), // a server's new DPoP nonce is kept
    async (error: unknown) => {
      const axiosError = error as AxiosError
      const config = (axiosError?.isAxiosError ? axiosError.config : undefined) as Sent | undefined
      const generation = config?.[GENERATION]
      if (!config || generation === undefined) throw error
      const grant = proven.get(config)
      // A server asking for its DPoP nonce gets the request once more: not a 401 (no refresh, the replay kept).
      if (axiosError.response && grant?.retry?.(axiosError.response)) {
        if (config.tesseraNonce) throw error // asked twice: the server's answer, not a reason to refresh
        config.tesseraNonce = true
        return instance.request(config)
      }
      if (config.tessera === 'no-replay' || !isAuthError(axiosError)) throw error
      // The request's URL: a token per audience is refreshed for the API that refused it.
      await auth.handleUnauthorized(generation, { signal: signalOf(config), method: config.method, url: uriOf(instance, config) ?? undefined })
      // The request interceptor attaches the token current at replay time (P7). The config is
      // axios' own merged copy (not the caller's object), and is merged anew for the replay.
      config.tessera = 'no-replay'
      return instance.request(config)
    },
  )

  return () => {
    instance.interceptors.request.eject(request)
    instance.interceptors.response.eject(response)
  }
}

/**
 * The URL the request goes to (`baseURL` applied), or `null` when axios cannot make one. The
 * interceptor's config is already merged with the instance's defaults, so without `params` the URL
 * is joined as axios joins it (`combineURLs`), without `getUri`'s second merge of the whole config.
 */
function uriOf(instance: AxiosInstance, config: InternalAxiosRequestConfig): string | null {
  const { baseURL, url = '', params } = config
  if (params === undefined && typeof url === 'string' && (baseURL === undefined || typeof baseURL === 'string')) {
    const absolute = /^([a-z][a-z\d+\-.]*:)?\/\//i.test(url) && (config as { allowAbsoluteUrls?: boolean }).allowAbsoluteUrls !== false
    return baseURL && !absolute ? (url ? baseURL.replace(/\/?\/$/, '') + '/' + url.replace(/^\/+/, '') : baseURL) : url
  }
  try {
    return instance.getUri(config)
  } catch {
    return null
  }
}
