import { Client, fetchExchange, gql } from '@urql/core'
import { createAlova } from 'alova'
import adapterFetch from 'alova/fetch'
import axios, { isAxiosError } from 'axios'
import type { Auth } from '../src/index.js'
import { createTesseraAuth } from '../src/transports/alova.js'
import { attachAuth } from '../src/transports/axios.js'
import { authExchange } from '../src/transports/urql.js'

/** What one request through a transport came back with, the same shape for all four. */
export interface Answer {
  status: number
  /** The parsed JSON body (for urql: what the REST endpoint answered), or `null`. */
  json: unknown
}

/** POSTs `body` as JSON to an absolute `url`. Resolves any HTTP answer; rejects only with what the transport throws. */
export type Send = (url: string, body: Record<string, unknown>) => Promise<Answer>

export const TRANSPORTS = ['fetch', 'axios', 'urql', 'alova'] as const
export type TransportName = (typeof TRANSPORTS)[number]

const Echo = gql`
  query Echo($i: Int) {
    echo
  }
`

/**
 * The four transports, each set up as its docs say and bound to `auth`:
 * fetch via `auth.fetch`, axios via `attachAuth`, urql via `authExchange`, alova via `createTesseraAuth`.
 * urql talks to REST endpoints through a custom `fetch` that wraps a 2xx JSON answer as `{ data: { echo } }`;
 * its operations carry the JSON body as `variables`, so servers see `{ query, variables: body, … }`.
 */
export function senders(auth: Auth): Record<TransportName, Send> {
  const api = axios.create()
  attachAuth(api, auth)
  const restAsGraphql: typeof fetch = async (input, init) => {
    const res = await fetch(input, init)
    if (!res.ok) return res
    const text = await res.text()
    let json: unknown = null
    try {
      json = JSON.parse(text)
    } catch {}
    return Response.json({ data: { echo: { status: res.status, json } } })
  }
  const urqlClients = new Map<string, Client>()
  const urql = (url: string) => {
    let client = urqlClients.get(url)
    if (!client)
      urqlClients.set(url, (client = new Client({ url, fetch: restAsGraphql, preferGetMethod: false, requestPolicy: 'network-only', exchanges: [authExchange(auth), fetchExchange] })))
    return client
  }
  const { onAuthRequired, onResponseRefreshToken } = createTesseraAuth(auth)
  const alova = createAlova({
    requestAdapter: adapterFetch(),
    cacheFor: null,
    shareRequest: false,
    beforeRequest: onAuthRequired(),
    responded: onResponseRefreshToken((res: Response) => res),
  })
  const read = async (res: Response): Promise<Answer> => {
    const text = await res.text().catch(() => '')
    let json: unknown = null
    try {
      json = JSON.parse(text)
    } catch {}
    return { status: res.status, json }
  }
  return {
    async fetch(url, body) {
      return read(await auth.fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }))
    },
    async axios(url, body) {
      try {
        const res = await api.post(url, body)
        return { status: res.status, json: res.data }
      } catch (e) {
        if (isAxiosError(e) && e.response) return { status: e.response.status, json: e.response.data ?? null }
        throw e
      }
    },
    async urql(url, body) {
      const result = await urql(url).query(Echo, body).toPromise()
      if (result.error?.networkError && !result.error.response) throw result.error.networkError
      if (result.error) return { status: (result.error.response as Response | undefined)?.status ?? 0, json: null }
      return (result.data as { echo: Answer }).echo
    },
    async alova(url, body) {
      return read((await alova.Post(url, body).send()) as Response)
    },
  }
}

/** The payload a reference-server `/api/echo` answer echoes (urql sends it as GraphQL `variables`). */
export function echoed(name: TransportName, json: unknown): unknown {
  const body = (json as { body?: { variables?: unknown } } | null)?.body
  return name === 'urql' ? body?.variables : body
}
