import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll } from 'vitest'
import { createAuth, isTesseraError, type AuthOptions } from '../src/index.js'
import { httpAuthority } from '../src/authorities/http.js'
import { FakeClock, FakeEnvironment, FakeServer, creds } from './fakes.js'

/** One request the resource server received. */
export interface Hit {
  method: string
  path: string
  /** Path and query string. */
  url: string
  auth: string | null
  body: string
  headers: IncomingMessage['headers']
}

/**
 * A real HTTP resource server on 127.0.0.1 (port 0) over a {@link FakeServer}'s token state (set per test with `use`):
 * protected routes answer 401 unless the bearer token (or `X-Access-Token: Token <t>`) is live when the answer is written.
 *
 * - `GET|POST /api/*` → `{ ok, token, path, body }`; `/api/error` → 500; `/api/always-401` and `/graphql-401` → 401.
 * - `GET /public` → 200 with no token needed.
 * - `GET|POST /graphql` → `{ data: { me: { token, n } } }`, or HTTP 401; `POST /graphql-ext` answers
 *   200 with a GraphQL error `extensions.code: 'UNAUTHENTICATED'` instead.
 * - `POST /auth/login|refresh|logout` → the fake authority over HTTP, for `httpAuthority`.
 * - `gate(path)` holds answers to `path` until the returned function is called.
 */
export async function startResourceServer() {
  let fake = new FakeServer(new FakeClock())
  const hits: Hit[] = []
  const gates = new Map<string, Promise<void>>()
  const server = createServer((req, res) => void handle(req, res).catch(() => res.destroy()))

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const chunks: Buffer[] = []
    for await (const c of req) chunks.push(c as Buffer)
    const body = Buffer.concat(chunks).toString()
    const { pathname: path, searchParams } = new URL(req.url ?? '/', 'http://127.0.0.1')
    // `X-Access-Token: Token <t>` too, for engines with another token placement.
    const auth = req.headers.authorization ?? (req.headers['x-access-token'] as string | undefined) ?? null
    hits.push({ method: req.method ?? 'GET', path, url: req.url ?? '/', auth, body, headers: req.headers })
    await gates.get(path)
    const send = (status: number, json: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' })
      res.end(JSON.stringify(json))
    }
    const token = auth?.replace(/^(Bearer|Token) /, '') ?? ''
    const live = fake.live.has(token)
    if (path === '/auth/login') return send(200, await fake.authority.login(JSON.parse(body)))
    if (path === '/auth/logout') return send(204, null)
    if (path === '/auth/refresh') {
      try {
        return send(200, await fake.authority.refresh(JSON.parse(body).refresh_token, new AbortController().signal))
      } catch (e) {
        if (isTesseraError(e) && e.status) return send(e.status, { error: e.message })
        return res.destroy() // a network failure, as the client sees it
      }
    }
    if (path === '/public') return send(200, { public: true })
    if (path === '/api/error') return send(500, { error: 'boom' })
    if (path === '/api/always-401' || path === '/graphql-401') return send(401, { error: 'insufficient_scope' })
    if (path === '/graphql' || path === '/graphql-ext') {
      // urql sends queries as GET with `variables` in the query string, mutations as POST.
      const variables = body ? JSON.parse(body).variables : JSON.parse(searchParams.get('variables') ?? '{}')
      if (live) return send(200, { data: { me: { token, n: variables?.n ?? null } } })
      if (path === '/graphql') return send(401, { errors: [{ message: 'invalid token' }] })
      return send(200, { data: null, errors: [{ message: 'invalid token', extensions: { code: 'UNAUTHENTICATED' } }] })
    }
    if (!live) return send(401, { error: 'invalid_token' })
    return send(200, { ok: true, token, path, body })
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    url,
    hits,
    /** Serves `next`'s token state from now on and forgets the hits so far. */
    use(next: FakeServer) {
      fake = next
      hits.length = 0
    },
    /** Requests to `path` received so far. */
    count: (path: string) => hits.filter((h) => h.path === path).length,
    /** Holds answers to `path` (they are checked when released); returns the release. */
    gate(path: string) {
      let release!: () => void
      gates.set(path, new Promise<void>((r) => (release = r)))
      return () => {
        gates.delete(path)
        release()
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

export type ResourceServer = Awaited<ReturnType<typeof startResourceServer>>

/**
 * A resource server for the tests of the calling file: started before them, closed after them.
 * The returned object is filled in by `beforeAll`, so use it inside tests and hooks only.
 */
export function useResourceServer(): ResourceServer {
  const server = {} as ResourceServer
  beforeAll(async () => void Object.assign(server, await startResourceServer()))
  afterAll(async () => server.close?.())
  return server
}

/**
 * A logged-in engine over a scripted {@link FakeServer} authority, allowed to send tokens to
 * `origin`. The fake clock never advances by itself: `clock.jump(301_000)` expires the token.
 */
export async function loggedInEngine(fake: FakeServer, clock: FakeClock, origin: string, extra: Partial<AuthOptions> = {}) {
  const auth = createAuth({
    authority: fake.authority,
    clock,
    environment: new FakeEnvironment(),
    allowedOrigins: [origin],
    random: () => 0.5,
    ...extra,
  })
  await auth.ready()
  await auth.login(creds)
  return auth
}

/** A fresh token state, clock and logged-in engine for one test, served by `server`. */
export async function fresh(server: ResourceServer, extra: Partial<AuthOptions> = {}) {
  const clock = new FakeClock()
  const fake = new FakeServer(clock)
  server.use(fake)
  const auth = await loggedInEngine(fake, clock, server.url, extra)
  return { clock, fake, auth }
}

/** Waits (real time, bounded) until `condition` holds: for requests to reach the server. */
export async function until(condition: () => boolean, ms = 2_000) {
  const end = Date.now() + ms
  while (!condition()) {
    if (Date.now() > end) throw new Error('condition not met in time')
    await new Promise((r) => setTimeout(r, 2))
  }
}

/**
 * A fresh token state served by `server` and a logged-in engine whose authority is `httpAuthority`
 * on that same origin (`/auth/*`): the refresh is a real HTTP call a transport could see.
 */
export async function freshOverHttp(server: ResourceServer) {
  const fake = new FakeServer(new FakeClock())
  server.use(fake)
  const auth = createAuth({
    authority: httpAuthority<unknown, { user: string; password: string }>({ baseUrl: `${server.url}/auth`, endpoints: { me: null } }),
    allowedOrigins: [server.url],
    environment: new FakeEnvironment(),
  })
  await auth.ready()
  await auth.login(creds)
  return { fake, auth }
}
