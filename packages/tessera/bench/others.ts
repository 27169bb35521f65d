/**
 * The libraries users leave, in the refresh storm (installed by bench/install.mjs, checked by
 * bench/tsconfig.json). Each is set up as its README shows. On the "expiry known" path,
 * @urql/exchange-auth checks expiry before sending (`willAuthError`); axios-auth-refresh has no
 * such hook, and a hand-written interceptor without dedup neither: they take the 401 path.
 */
import { authExchange as urqlAuthExchange } from '@urql/exchange-auth'
import { Client, fetchExchange } from '@urql/core'
import axios, { type AxiosError, type InternalAxiosRequestConfig } from 'axios'
import createAuthRefresh from 'axios-auth-refresh'
import type { Clock } from '../src/ports/clock.js'
import { urqlSend } from './contestants.js'
import { login, type Contender, type Contestant, type Tokens } from './storm-kit.js'

async function refreshWith(url: string, tokens: Tokens, clock: Clock) {
  const { data } = await axios.post<{ access_token: string; refresh_token: string; expires_in: number }>(`${url}/auth/refresh`, { refresh_token: tokens.refresh })
  Object.assign(tokens, { access: data.access_token, refresh: data.refresh_token, expiresAt: clock.now() + data.expires_in * 1000 })
}

async function axiosAuthRefresh(url: string, clock: Clock, options: { deduplicateRefresh?: boolean }): Promise<Contender> {
  const tokens = await login(url, clock)
  const api = axios.create({ baseURL: url })
  api.interceptors.request.use((config) => {
    config.headers.Authorization = `Bearer ${tokens.access}`
    return config
  })
  // As the README shows: refresh with plain axios, then patch the failed request's header.
  createAuthRefresh(
    api,
    async (failed: AxiosError) => {
      await refreshWith(url, tokens, clock)
      if (failed.response) failed.response.config.headers.Authorization = `Bearer ${tokens.access}`
    },
    options,
  )
  return { send: (i) => api.get(`/api/data?i=${i}`), dispose() {} }
}

/** The contestants that are not Tessera nor a reference, by name. */
export const others: Record<string, Contestant> = {
  'axios, hand-written interceptor (no dedup)': async (url, clock) => {
    const tokens = await login(url, clock)
    const api = axios.create({ baseURL: url })
    api.interceptors.request.use((config) => {
      config.headers.Authorization = `Bearer ${tokens.access}`
      return config
    })
    api.interceptors.response.use(undefined, async (error: AxiosError) => {
      const config = error.config as (InternalAxiosRequestConfig & { _retry?: boolean }) | undefined
      if (!config || error.response?.status !== 401 || config._retry) throw error
      config._retry = true
      await refreshWith(url, tokens, clock)
      return api(config)
    })
    return { send: (i) => api.get(`/api/data?i=${i}`), dispose() {} }
  },
  // With deduplicateRefresh (5.0.2), the first 401 marks the instance as refreshing, and every other
  // 401 is then rejected as is ("skipInstances"): only requests *sent* during the refresh wait for it.
  // A storm's requests are all in flight already, so all but the first fail (999 of 1 000).
  'axios-auth-refresh 5 (default: deduplicateRefresh, pauses the instance)': (url, clock) => axiosAuthRefresh(url, clock, {}),
  'axios-auth-refresh 5 (deduplicateRefresh: false)': (url, clock) => axiosAuthRefresh(url, clock, { deduplicateRefresh: false }),
  '@urql/exchange-auth 3': async (url, clock) => {
    const tokens = await login(url, clock)
    const exchange = urqlAuthExchange(async (utils) => ({
      addAuthToOperation: (operation) => utils.appendHeaders(operation, { Authorization: `Bearer ${tokens.access}` }),
      willAuthError: () => clock.now() >= tokens.expiresAt - 60_000,
      didAuthError: (error) => error.response?.status === 401,
      refreshAuth: () => refreshWith(url, tokens, clock),
    }))
    const client = new Client({ url: `${url}/graphql`, exchanges: [exchange, fetchExchange] })
    return { send: urqlSend(client), dispose() {} }
  },
}
