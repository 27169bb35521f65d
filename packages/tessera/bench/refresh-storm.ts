/**
 * Refresh storm: N requests leave at once with an access token the server has already expired.
 * Every contestant meets the same small rotating-token server on 127.0.0.1 (single-use refresh
 * tokens; a reused one is rejected and counted). Prints a Markdown table, then the per-request
 * overhead of `auth.fetch` against bare `fetch` on loopback.
 *
 *   npm run bench -w tessera            (or: npx tsx bench/refresh-storm.ts in packages/tessera)
 *   BENCH_SIZES=10,100 BENCH_RUNS=1 …   to shorten
 *
 * Bounded: each request counts as hung after 10 s; every loop has a fixed count.
 */
import { authExchange as urqlAuthExchange } from '@urql/exchange-auth'
import { Client, fetchExchange, gql } from '@urql/core'
import { createAlova } from 'alova'
import adapterFetch from 'alova/fetch'
import axios, { type AxiosError, type InternalAxiosRequestConfig } from 'axios'
import createAuthRefresh from 'axios-auth-refresh'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createAuth, type Auth } from '../src/index.js'
import { httpAuthority } from '../src/authorities/http.js'
import { createTesseraAuth } from '../src/transports/alova.js'
import { attachAuth } from '../src/transports/axios.js'
import { authExchange } from '../src/transports/urql.js'

const SIZES = (process.env.BENCH_SIZES ?? '10,100,1000').split(',').map(Number)
const RUNS = Number(process.env.BENCH_RUNS ?? 3)
const HANG_MS = 10_000
const REFRESH_LATENCY_MS = 20 // a token endpoint does a database round trip or two
const OVERHEAD_REQUESTS = 2_000

// ---------------------------------------------------------------------------------------------
// The server: rotating single-use refresh tokens; access tokens valid until `expireAll()`.

function startStormServer() {
  let n = 0
  const access = new Set<string>()
  const refresh = new Map<string, 'fresh' | 'used'>()
  const counters = { refresh: 0, reuse: 0, unauthorized: 0, api: 0 }
  const issue = () => {
    const id = ++n
    access.add(`at-${id}`)
    refresh.set(`rt-${id}`, 'fresh')
    return { access_token: `at-${id}`, refresh_token: `rt-${id}`, expires_in: 3600, token_type: 'Bearer' }
  }
  const send = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' })
    res.end(JSON.stringify(body))
  }
  async function handle(req: IncomingMessage, res: ServerResponse) {
    const chunks: Buffer[] = []
    for await (const c of req) chunks.push(c as Buffer)
    const path = (req.url ?? '/').split('?')[0]
    if (path === '/auth/login') return send(res, 200, issue())
    if (path === '/auth/refresh') {
      counters.refresh++
      const rt = (JSON.parse(Buffer.concat(chunks).toString() || '{}') as { refresh_token?: string }).refresh_token ?? ''
      await new Promise((r) => setTimeout(r, REFRESH_LATENCY_MS))
      const state = refresh.get(rt)
      if (state !== 'fresh') {
        if (state === 'used') counters.reuse++
        return send(res, 400, { error: 'invalid_grant' })
      }
      refresh.set(rt, 'used')
      return send(res, 200, issue())
    }
    counters.api++
    const token = (req.headers.authorization ?? '').replace(/^Bearer /, '')
    if (!access.has(token)) {
      counters.unauthorized++
      return send(res, 401, { error: 'invalid_token', errors: [{ message: 'invalid token' }] })
    }
    return send(res, 200, path === '/graphql' ? { data: { ok: true } } : { ok: true })
  }
  const server = createServer((req, res) => void handle(req, res).catch(() => res.destroy()))
  return new Promise<{ url: string; counters: typeof counters; reset(): void; expireAll(): void; close(): Promise<void> }>((resolve) =>
    server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () =>
      resolve({
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        counters,
        reset() {
          Object.assign(counters, { refresh: 0, reuse: 0, unauthorized: 0, api: 0 })
        },
        expireAll: () => access.clear(),
        close: () =>
          new Promise<void>((r) => {
            server.closeAllConnections()
            server.close(() => r())
          }),
      }),
    ),
  )
}
type StormServer = Awaited<ReturnType<typeof startStormServer>>

// ---------------------------------------------------------------------------------------------
// Contestants: each gets a fresh login and returns `send(i)` (rejects on failure) and `dispose()`.

interface Tokens {
  access: string
  refresh: string
}
interface Contender {
  send(i: number): Promise<unknown>
  dispose(): void
}
type Contestant = (url: string) => Promise<Contender>

async function login(url: string): Promise<Tokens> {
  const res = await fetch(`${url}/auth/login`, { method: 'POST', body: '{}' })
  const body = (await res.json()) as { access_token: string; refresh_token: string }
  return { access: body.access_token, refresh: body.refresh_token }
}
async function refreshWith(url: string, tokens: Tokens) {
  const { data } = await axios.post<{ access_token: string; refresh_token: string }>(`${url}/auth/refresh`, { refresh_token: tokens.refresh })
  tokens.access = data.access_token
  tokens.refresh = data.refresh_token
}
async function tesseraSession(url: string): Promise<Auth> {
  const auth = createAuth({ authority: httpAuthority({ baseUrl: `${url}/auth`, endpoints: { me: null } }), allowedOrigins: [url] })
  await auth.ready()
  await auth.login({ email: 'a@b.c', password: 'pw' })
  return auth
}
const okOrThrow = async (res: Response) => {
  if (!res.ok) throw new Error(`HTTP ${res.status}`)
  return res.json()
}
const Ping = gql`
  query Ping($i: Int) {
    ok
  }
`
function urqlSend(client: Client) {
  return async (i: number) => {
    const result = await client.query(Ping, { i }, { requestPolicy: 'network-only' }).toPromise()
    if (result.error) throw result.error
    return result.data
  }
}

const contestants: Record<string, Contestant> = {
  'tessera · fetch': async (url) => {
    const auth = await tesseraSession(url)
    return { send: (i) => auth.fetch(`${url}/api/data?i=${i}`).then(okOrThrow), dispose: () => auth.dispose() }
  },
  'tessera · axios': async (url) => {
    const auth = await tesseraSession(url)
    const api = axios.create({ baseURL: url })
    attachAuth(api, auth)
    return { send: (i) => api.get(`/api/data?i=${i}`), dispose: () => auth.dispose() }
  },
  'tessera · urql': async (url) => {
    const auth = await tesseraSession(url)
    const client = new Client({ url: `${url}/graphql`, exchanges: [authExchange(auth), fetchExchange] })
    return { send: urqlSend(client), dispose: () => auth.dispose() }
  },
  'tessera · alova': async (url) => {
    const auth = await tesseraSession(url)
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
  'axios, hand-written interceptor (no dedup)': async (url) => {
    const tokens = await login(url)
    const api = axios.create({ baseURL: url })
    api.interceptors.request.use((config) => {
      config.headers.Authorization = `Bearer ${tokens.access}`
      return config
    })
    api.interceptors.response.use(undefined, async (error: AxiosError) => {
      const config = error.config as (InternalAxiosRequestConfig & { _retry?: boolean }) | undefined
      if (!config || error.response?.status !== 401 || config._retry) throw error
      config._retry = true
      await refreshWith(url, tokens)
      return api(config)
    })
    return { send: (i) => api.get(`/api/data?i=${i}`), dispose() {} }
  },
  'axios-auth-refresh 5 (default: deduplicateRefresh, pauses the instance)': async (url) => axiosAuthRefresh(url, {}),
  'axios-auth-refresh 5 (deduplicateRefresh: false)': async (url) => axiosAuthRefresh(url, { deduplicateRefresh: false }),
  '@urql/exchange-auth 3': async (url) => {
    const tokens = await login(url)
    const exchange = urqlAuthExchange(async (utils) => ({
      addAuthToOperation: (operation) => utils.appendHeaders(operation, { Authorization: `Bearer ${tokens.access}` }),
      didAuthError: (error) => error.response?.status === 401,
      refreshAuth: () => refreshWith(url, tokens),
    }))
    const client = new Client({ url: `${url}/graphql`, exchanges: [exchange, fetchExchange] })
    return { send: urqlSend(client), dispose() {} }
  },
}

async function axiosAuthRefresh(url: string, options: { deduplicateRefresh?: boolean }): Promise<Contender> {
  const tokens = await login(url)
  const api = axios.create({ baseURL: url })
  api.interceptors.request.use((config) => {
    config.headers.Authorization = `Bearer ${tokens.access}`
    return config
  })
  // As the README shows: refresh with plain axios, then patch the failed request's header.
  createAuthRefresh(
    api,
    async (failed: AxiosError) => {
      await refreshWith(url, tokens)
      if (failed.response) failed.response.config.headers.Authorization = `Bearer ${tokens.access}`
    },
    options,
  )
  return { send: (i) => api.get(`/api/data?i=${i}`), dispose() {} }
}

// ---------------------------------------------------------------------------------------------
// The storm.

interface Outcome {
  refresh: number
  reuse: number
  unauthorized: number
  failed: number
  hung: number
  ms: number
}

async function storm(server: StormServer, make: Contestant, n: number): Promise<Outcome> {
  const contender = await make(server.url)
  server.expireAll()
  server.reset()
  let failed = 0
  let hung = 0
  const start = performance.now()
  await Promise.all(
    Array.from({ length: n }, (_, i) => {
      let timer: NodeJS.Timeout | undefined
      const hang = new Promise<'hung'>((r) => (timer = setTimeout(() => r('hung'), HANG_MS)))
      const sent = contender.send(i).then(
        () => 'ok' as const,
        () => 'failed' as const,
      )
      return Promise.race([sent, hang]).then((r) => {
        clearTimeout(timer)
        if (r === 'failed') failed++
        if (r === 'hung') hung++
      })
    }),
  )
  const ms = performance.now() - start
  contender.dispose()
  const { refresh, reuse, unauthorized } = server.counters
  return { refresh, reuse, unauthorized, failed, hung, ms }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

async function overhead(server: StormServer) {
  const auth = await tesseraSession(server.url)
  const token = await auth.getAccessToken() // valid: no refresh during the measurement
  const url = `${server.url}/api/data`
  const bare = () => fetch(url, { headers: { Authorization: `Bearer ${token}` } }).then((r) => r.arrayBuffer())
  const wrapped = () => auth.fetch(url).then((r) => r.arrayBuffer())
  // 10 requests in flight at a time, a fixed count each; the order alternates to share any drift.
  const measure = async (send: () => Promise<unknown>) => {
    const start = performance.now()
    let next = 0
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        while (next < OVERHEAD_REQUESTS) {
          next++
          await send()
        }
      }),
    )
    return OVERHEAD_REQUESTS / ((performance.now() - start) / 1000)
  }
  await measure(bare)
  await measure(wrapped) // warm-up
  const rounds: { bare: number; wrapped: number }[] = []
  for (let r = 0; r < 3; r++) rounds.push({ bare: await measure(bare), wrapped: await measure(wrapped) })
  auth.dispose()
  const b = median(rounds.map((x) => x.bare))
  const w = median(rounds.map((x) => x.wrapped))
  return { bare: b, wrapped: w, ratio: w / b, overheadUs: 1e6 / w - 1e6 / b } // event-loop time per request
}

async function main() {
  const server = await startStormServer()
  console.log(`# Refresh storm — ${new Date().toISOString()}, Node ${process.version}, ${RUNS} run(s) per cell`)
  console.log(`Access token already expired on the server; single-use refresh tokens (reuse rejected); refresh takes ${REFRESH_LATENCY_MS} ms; a request is hung after ${HANG_MS / 1000} s.`)
  console.log('Counts are medians over the runs; wall time is the median time until every request settled (or was declared hung).\n')
  // Warm-up (not reported): JIT, sockets and module caches for every contestant.
  for (const make of Object.values(contestants)) await storm(server, make, 10)
  console.log('| N | contestant | refresh calls | reuse rejected | 401s served | failed | hung | median wall (ms) |')
  console.log('|---:|---|---:|---:|---:|---:|---:|---:|')
  for (const n of SIZES)
    for (const [name, make] of Object.entries(contestants)) {
      const runs: Outcome[] = []
      for (let r = 0; r < RUNS; r++) runs.push(await storm(server, make, n))
      const m = (k: keyof Outcome) => median(runs.map((x) => x[k]))
      console.log(`| ${n} | ${name} | ${m('refresh')} | ${m('reuse')} | ${m('unauthorized')} | ${m('failed')} | ${m('hung')} | ${m('ms').toFixed(0)} |`)
    }
  const o = await overhead(server)
  console.log(`\n## Per-request overhead (loopback, ${OVERHEAD_REQUESTS} requests × 3 rounds each, 10 in flight, valid token)\n`)
  console.log('| client | requests/s |')
  console.log('|---|---:|')
  console.log(`| bare fetch (header set by hand) | ${o.bare.toFixed(0)} |`)
  console.log(`| auth.fetch | ${o.wrapped.toFixed(0)} |`)
  console.log(`\nauth.fetch / bare fetch throughput ratio: ${o.ratio.toFixed(3)} (≈ ${o.overheadUs.toFixed(0)} µs of event-loop time per request)`)
  await server.close()
}

await main()
process.exit(0)
