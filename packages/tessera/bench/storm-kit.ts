/**
 * What the refresh-storm benchmark is made of: the rotating-token server every contestant meets,
 * the clock that tells a client its token is expired, and a minimal correct single flight (the
 * reference each Tessera transport is compared with, written for the same client).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { Clock } from '../src/ports/clock.js'

/** How long the token endpoint takes: a database round trip or two. */
export const REFRESH_LATENCY_MS = 20

/** What the server counted since the last `reset()`. */
export interface StormCounters {
  refresh: number
  reuse: number
  unauthorized: number
  api: number
}

/**
 * The server: rotating single-use refresh tokens (a reused one is rejected and counted, as the
 * reference server does); access tokens valid until `expireAll()`. It is the body of
 * bench/storm-server.ts, which runs it in a process of its own.
 */
export function serveStorm() {
  let n = 0
  const access = new Set<string>()
  const refresh = new Map<string, 'fresh' | 'used'>()
  const counters: StormCounters = { refresh: 0, reuse: 0, unauthorized: 0, api: 0 }
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
  // Longer than any pause between storms: a client reusing a socket the server just closed would see ECONNRESET.
  server.keepAliveTimeout = 120_000
  return new Promise<{ port: number; counters: StormCounters; reset(): void; expireAll(): void; close(): Promise<void> }>((resolve) =>
    server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () =>
      resolve({
        port: (server.address() as AddressInfo).port,
        counters,
        reset: () => void Object.assign(counters, { refresh: 0, reuse: 0, unauthorized: 0, api: 0 }),
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

/** A request to the server process and its answer (bench/storm-server.ts). */
export type StormCommand = 'reset' | 'expireAll' | 'counters' | 'close'

/**
 * Starts the server in a child process, so that its event loop and garbage collector run beside
 * the contestants' (on the other core) instead of between them: the client process's wall and CPU
 * time are then the client's own. Each call below waits for the server's answer.
 */
export async function startStormServer() {
  const child = fork(fileURLToPath(new URL('./storm-server.ts', import.meta.url)), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const answers: ((value: unknown) => void)[] = []
  child.on('message', (m) => answers.shift()?.(m))
  child.on('exit', (code) => {
    for (const a of answers.splice(0)) a(undefined)
    if (code) console.error(`storm server exited with ${code}`)
  })
  const ask = <T>(command?: StormCommand) =>
    new Promise<T>((resolve, reject) => {
      answers.push((m) => (m === undefined ? reject(new Error('storm server exited')) : resolve(m as T)))
      if (command) child.send(command)
    })
  const { port } = await ask<{ port: number }>()
  return {
    url: `http://127.0.0.1:${port}`,
    counters: () => ask<StormCounters>('counters'),
    reset: () => ask<void>('reset'),
    expireAll: () => ask<void>('expireAll'),
    close: () => ask<void>('close'),
  }
}
export type StormServer = Awaited<ReturnType<typeof startStormServer>>

/** A clock the bench can move forward: `skip()` makes every token issued so far expired, as the client sees it. */
export function skewedClock(): Clock & { skip(): void } {
  let skew = 0
  return {
    now: () => Date.now() + skew,
    setTimeout: (fn, ms) => setTimeout(fn, Math.min(Math.max(ms, 0), 2 ** 31 - 1)),
    clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
    skip: () => void (skew += 2 * 3600_000),
  }
}

/** One contestant, logged in: `send(i)` rejects on failure. */
export interface Contender {
  send(i: number): Promise<unknown>
  dispose(): void
}
/** Makes a logged-in contender against `url`; `clock.skip()` then tells it its token expired. */
export type Contestant = (url: string, clock: Clock) => Promise<Contender>

/** The tokens of a hand-written client. */
export interface Tokens {
  access: string
  refresh: string
  /** Local-clock expiry, ms. */
  expiresAt: number
}

async function grant(url: string, path: string, body: unknown, clock: Clock): Promise<Tokens> {
  const res = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  if (!res.ok) throw new Error(`HTTP ${res.status}`)
  const t = (await res.json()) as { access_token: string; refresh_token: string; expires_in: number }
  return { access: t.access_token, refresh: t.refresh_token, expiresAt: clock.now() + t.expires_in * 1000 }
}
/** Logs in a hand-written client. */
export const login = (url: string, clock: Clock) => grant(url, '/auth/login', {}, clock)

/**
 * A minimal correct single flight: one refresh at a time, and a 401 for a token already
 * replaced replays without refreshing (`generation`, P2). A hand-written client checks
 * `expired()` before sending, calls `refresh(generationItWasSentWith)` after a 401, and replays once.
 */
export function singleFlight(url: string, clock: Clock, tokens: Tokens) {
  let inflight: Promise<void> | null = null
  const sf = {
    tokens,
    generation: 0,
    expired: () => clock.now() >= tokens.expiresAt - 60_000,
    refresh(seen: number): Promise<void> {
      if (seen !== sf.generation) return Promise.resolve()
      return (inflight ??= grant(url, '/auth/refresh', { refresh_token: tokens.refresh }, clock).then(
        (t) => {
          Object.assign(tokens, t)
          sf.generation++
          inflight = null
        },
        (e: unknown) => {
          inflight = null
          throw e
        },
      ))
    },
  }
  return sf
}
export type SingleFlight = ReturnType<typeof singleFlight>
