/**
 * The contestants of the refresh storm that ship with the workspace: each Tessera transport, and
 * beside it the reference it must match, a minimal correct single flight written for the same client.
 */
import { Client, fetchExchange, gql, makeOperation, type Exchange, type Operation } from '@urql/core'
import { createAlova, type Method } from 'alova'
import adapterFetch from 'alova/fetch'
import axios, { type AxiosError, type InternalAxiosRequestConfig } from 'axios'
import { filter, fromPromise, fromValue, makeSubject, merge, mergeMap, pipe } from 'wonka'
import { createAuth, type Auth } from '../src/index.js'
import { httpAuthority } from '../src/authorities/http.js'
import type { Clock } from '../src/ports/clock.js'
import { createTesseraAuth } from '../src/transports/alova.js'
import { attachAuth } from '../src/transports/axios.js'
import { authExchange } from '../src/transports/urql.js'
import { login, singleFlight, type Contestant, type SingleFlight } from './storm-kit.js'

export async function tesseraSession(url: string, clock?: Clock): Promise<Auth> {
  const auth = createAuth({ authority: httpAuthority({ baseUrl: `${url}/auth`, endpoints: { me: null } }), allowedOrigins: [url], ...(clock && { clock }) })
  await auth.ready()
  await auth.login({ email: 'a@b.c', password: 'pw' })
  return auth
}
export const okOrThrow = async (res: Response) => {
  if (!res.ok) throw new Error(`HTTP ${res.status}`)
  return res.json()
}
const Ping = gql`
  query Ping($i: Int) {
    ok
  }
`
export function urqlSend(client: Client) {
  return async (i: number) => {
    const result = await client.query(Ping, { i }, { requestPolicy: 'network-only' }).toPromise()
    if (result.error) throw result.error
    return result.data
  }
}

/** Tessera's transports, by client. */
export const tessera: Record<string, Contestant> = {
  fetch: async (url, clock) => {
    const auth = await tesseraSession(url, clock)
    return { send: (i) => auth.fetch(`${url}/api/data?i=${i}`).then(okOrThrow), dispose: () => auth.dispose() }
  },
  axios: async (url, clock) => {
    const auth = await tesseraSession(url, clock)
    const api = axios.create({ baseURL: url })
    attachAuth(api, auth)
    return { send: (i) => api.get(`/api/data?i=${i}`), dispose: () => auth.dispose() }
  },
  urql: async (url, clock) => {
    const auth = await tesseraSession(url, clock)
    const client = new Client({ url: `${url}/graphql`, exchanges: [authExchange(auth), fetchExchange] })
    return { send: urqlSend(client), dispose: () => auth.dispose() }
  },
  alova: async (url, clock) => {
    const auth = await tesseraSession(url, clock)
    const { onAuthRequired, onResponseRefreshToken } = createTesseraAuth(auth)
    const alova = createAlova({
      baseURL: url,
      requestAdapter: adapterFetch(),
      cacheFor: null,
      shareRequest: false,
      beforeRequest: onAuthRequired(),
      responded: onResponseRefreshToken(okOrThrow),
    })
    return { send: (i) => alova.Get(`/api/data?i=${i}`).send(), dispose: () => auth.dispose() }
  },
}

const bearer = (sf: SingleFlight) => `Bearer ${sf.tokens.access}`
/** Waits for the refresh when the token is known to be expired; resolves to the generation the request goes with. */
const fresh = async (sf: SingleFlight) => {
  if (sf.expired()) await sf.refresh(sf.generation)
  return sf.generation
}

/** The references: a minimal correct single flight on each client (check expiry, send, one replay after a 401). */
export const reference: Record<string, Contestant> = {
  fetch: async (url, clock) => {
    const sf = singleFlight(url, clock, await login(url, clock))
    const get = (u: string) => fetch(u, { headers: { Authorization: bearer(sf) } })
    return {
      async send(i) {
        const u = `${url}/api/data?i=${i}`
        const generation = await fresh(sf)
        let res = await get(u)
        if (res.status === 401) {
          await res.body?.cancel()
          await sf.refresh(generation)
          res = await get(u)
        }
        return okOrThrow(res)
      },
      dispose() {},
    }
  },
  axios: async (url, clock) => {
    const sf = singleFlight(url, clock, await login(url, clock))
    type Config = InternalAxiosRequestConfig & { generation?: number; replayed?: true }
    const api = axios.create({ baseURL: url })
    api.interceptors.request.use(async (config: Config) => {
      config.generation = await fresh(sf)
      config.headers.Authorization = bearer(sf)
      return config
    })
    api.interceptors.response.use(undefined, async (error: AxiosError) => {
      const config = error.config as Config | undefined
      if (!config || error.response?.status !== 401 || config.replayed) throw error
      await sf.refresh(config.generation!)
      config.replayed = true
      return api(config)
    })
    return { send: (i) => api.get(`/api/data?i=${i}`), dispose() {} }
  },
  urql: async (url, clock) => {
    const sf = singleFlight(url, clock, await login(url, clock))
    const exchange: Exchange =
      ({ forward }) =>
      (operations$) => {
        const replays = makeSubject<Operation>()
        const stamp = (op: Operation, generation: number) =>
          makeOperation(op.kind, op, { ...op.context, fetchOptions: { headers: { Authorization: bearer(sf) } }, generation })
        const ready$ = pipe(
          merge([operations$, replays.source]),
          mergeMap((op) => {
            if (op.kind === 'teardown') return fromValue(op)
            return sf.expired() ? fromPromise(fresh(sf).then((g) => stamp(op, g))) : fromValue(stamp(op, sf.generation))
          }),
        )
        return pipe(
          forward(ready$),
          filter((result) => {
            const { operation } = result
            if (result.error?.response?.status !== 401 || operation.context.replayed) return true
            void sf.refresh(operation.context.generation as number).then(() => replays.next(makeOperation(operation.kind, operation, { ...operation.context, replayed: true })))
            return false
          }),
        )
      }
    const client = new Client({ url: `${url}/graphql`, exchanges: [exchange, fetchExchange] })
    return { send: urqlSend(client), dispose() {} }
  },
  alova: async (url, clock) => {
    const sf = singleFlight(url, clock, await login(url, clock))
    // alova sends a clone of the method, and a replay clones that clone: the mark travels as a property.
    type Marked = Method & { generation?: number; replayed?: true }
    const alova = createAlova({
      baseURL: url,
      requestAdapter: adapterFetch(),
      cacheFor: null,
      shareRequest: false,
      async beforeRequest(method: Marked) {
        method.generation = await fresh(sf)
        ;(method.config.headers as Record<string, string>).Authorization = bearer(sf)
      },
      responded: {
        async onSuccess(response: Response, method: Marked) {
          if (response.status === 401 && !method.replayed) {
            void response.body?.cancel()
            await sf.refresh(method.generation!)
            method.replayed = true
            return method.send(true)
          }
          return okOrThrow(response)
        },
      },
    })
    return { send: (i) => alova.Get(`/api/data?i=${i}`).send(), dispose() {} }
  },
}
