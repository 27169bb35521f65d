/**
 * A small token + resource server on 127.0.0.1 that checks DPoP (RFC 9449) the way a strict server
 * does, with jose: the proof's signature over its embedded public key, `typ`, `alg`, `htm`, `htu`,
 * the `iat` window, `jti` replay, `ath`, the key the token is bound to, and nonces when asked to.
 * Used by the Node tests (packages/tessera/test) and by the Chromium tests (e2e/), which serve the
 * test page from it (`staticDir`). The reference server (packages/server) checks DPoP too (`dpop` setting);
 * this one stays for what it counts per request and for its switchable nonce demands.
 *
 * - `POST /auth/register` → 201 (every account exists); `POST /auth/login` (any credentials) → `{ access_token, token_type: 'DPoP', expires_in, refresh_token, user }`, both tokens bound to the proof's key.
 * - `POST /auth/refresh` `{ refresh_token }` → a new pair; single use (a reused token is 400 and counted);
 *   a proof from another key than the one the token is bound to is 400 `invalid_grant`.
 * - `POST /auth/logout` `{ refresh_token }` with `Authorization: DPoP <token>` → 204; the key that proved it is recorded.
 * - `GET /auth/me`, `/api/*` (any method) with `Authorization: DPoP <token>`; `/api/*` answers `{ ok, jkt, method, path, body }`.
 * - `demand.token` / `demand.resource`: the server wants its nonce (400 `use_dpop_nonce` at the token
 *   endpoint, 401 `WWW-Authenticate: DPoP error="use_dpop_nonce"` elsewhere); `rotateNonce()` changes it;
 *   `'always'`: a new nonce for every proof, so every request is asked again.
 */
import { randomBytes, createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { extname, join, normalize } from 'node:path'
import { calculateJwkThumbprint, decodeProtectedHeader, importJWK, jwtVerify, type JWK } from 'jose'

export interface DpopServerOptions {
  /** Access token lifetime, in seconds. @default 60 */
  accessTokenTtl?: number
  /** How far a proof's `iat` may be from the server's clock, in seconds. @default 60 */
  iatWindow?: number
  /** Serves the files of this folder for other GET paths (`/` is `index.html`). */
  staticDir?: string
  /** Each refresh waits this long before answering, in ms. @default 0 */
  refreshLatencyMs?: number
}

/** One proof the server accepted. */
export interface SeenProof {
  path: string
  method: string
  jkt: string
  jti: string
  htu: string
  ath?: string
  nonce?: string
  /** The token the request carried (`Authorization: DPoP …`), if any. */
  token?: string
}

const b64sha256 = (text: string) => createHash('sha256').update(text).digest('base64url')
const token = () => randomBytes(18).toString('base64url')
const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.png': 'image/png' }

export async function startDpopServer(options: DpopServerOptions = {}) {
  const ttl = options.accessTokenTtl ?? 60
  const window = options.iatWindow ?? 60
  const access = new Map<string, { jkt: string; expiresAt: number; sub: string }>()
  const refresh = new Map<string, { jkt: string; used: boolean; sub: string }>()
  const jtis = new Map<string, number>()
  const keys = new Map<string, { key: CryptoKey; jkt: string }>()
  let pruned = 0
  let nonce = token()
  const demand: Record<'token' | 'resource', boolean | 'always'> = { token: false, resource: false }
  const fresh = () => ({
    login: 0,
    refresh: { calls: 0, succeeded: 0, reused: 0, wrongKey: 0 },
    logout: { calls: 0, jkts: [] as string[] },
    api: { calls: 0, ok: 0, unauthorized: 0 },
    /** Nonce challenges the server answered with, by place. */
    challenges: { token: 0, resource: 0 },
    /** Proofs refused, by reason. */
    refused: {} as Record<string, number>,
    /** Requests that came with `Authorization: Bearer`. */
    bearer: 0,
    proofs: [] as SeenProof[],
  })
  let stats = fresh()

  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers })
    res.end(body === null ? undefined : JSON.stringify(body))
  }
  const refuse = (reason: string) => {
    stats.refused[reason] = (stats.refused[reason] ?? 0) + 1
    return reason
  }

  /** Checks the request's proof; resolves the proof, or the reason it is refused. `'use_dpop_nonce'` when the server wants its nonce. */
  async function check(req: IncomingMessage, url: URL, bound?: string): Promise<SeenProof | string> {
    const proof = req.headers.dpop
    if (typeof proof !== 'string') return refuse('no proof')
    let payload: Record<string, unknown>
    let jkt: string
    try {
      // The proof's own public key (RFC 9449 §4.3), imported once per key as a busy server would.
      const jwk = decodeProtectedHeader(proof).jwk as JWK | undefined
      if (!jwk || jwk.kty !== 'EC' || jwk.crv !== 'P-256' || 'd' in jwk) throw new Error('not a public P-256 key')
      let known = keys.get(`${jwk.x}.${jwk.y}`)
      if (!known) keys.set(`${jwk.x}.${jwk.y}`, (known = { key: (await importJWK(jwk, 'ES256')) as CryptoKey, jkt: await calculateJwkThumbprint(jwk) }))
      payload = (await jwtVerify(proof, known.key, { typ: 'dpop+jwt', algorithms: ['ES256'] })).payload
      jkt = known.jkt
    } catch {
      return refuse('signature')
    }
    const now = Math.floor(Date.now() / 1000)
    if (payload.htm !== req.method) return refuse('htm')
    if (payload.htu !== url.origin + url.pathname) return refuse('htu')
    if (typeof payload.iat !== 'number' || Math.abs(now - payload.iat) > window) return refuse('iat')
    if (typeof payload.jti !== 'string' || payload.jti.length < 16) return refuse('jti')
    if (now > pruned) {
      pruned = now // at most once a second
      for (const [jti, until] of jtis) if (until < now) jtis.delete(jti)
    }
    if (jtis.has(payload.jti)) return refuse('jti replay')
    if (bound !== undefined && payload.ath !== b64sha256(bound)) return refuse('ath')
    if (bound === undefined && payload.ath !== undefined) return refuse('ath on a token request')
    const place = url.pathname.startsWith('/auth/') && url.pathname !== '/auth/me' ? 'token' : 'resource'
    if (demand[place] === 'always') nonce = token() // a server that never takes the nonce it gave
    if (demand[place] && payload.nonce !== nonce) {
      stats.challenges[place]++
      return 'use_dpop_nonce'
    }
    jtis.set(payload.jti, now + 2 * window)
    const seen: SeenProof = { path: url.pathname, method: req.method!, jkt, jti: payload.jti, htu: payload.htu as string, token: bound }
    if (typeof payload.ath === 'string') seen.ath = payload.ath
    if (typeof payload.nonce === 'string') seen.nonce = payload.nonce
    stats.proofs.push(seen)
    return seen
  }

  const issue = (jkt: string, sub: string) => {
    const at = token()
    const rt = token()
    access.set(at, { jkt, expiresAt: Date.now() + ttl * 1000, sub })
    refresh.set(rt, { jkt, used: false, sub })
    return { access_token: at, token_type: 'DPoP', expires_in: ttl, refresh_token: rt, user: { sub, name: sub } }
  }

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const chunks: Buffer[] = []
    for await (const c of req) chunks.push(c as Buffer)
    const text = Buffer.concat(chunks).toString()
    const url = new URL(req.url ?? '/', `http://${req.headers.host}`)
    const path = url.pathname
    const nonceHeader: Record<string, string> = demand.token || demand.resource ? { 'dpop-nonce': nonce } : {}
    const auth = req.headers.authorization ?? ''
    if (/^bearer /i.test(auth)) stats.bearer++
    const presented = /^DPoP (.+)$/.exec(auth)?.[1]

    if (req.method === 'POST' && path === '/auth/register') return send(res, 201, {}) // every account exists
    if (req.method === 'POST' && (path === '/auth/login' || path === '/auth/refresh')) {
      const body = (text ? JSON.parse(text) : {}) as { refresh_token?: string; email?: string }
      const proof = await check(req, url)
      if (proof === 'use_dpop_nonce') return send(res, 400, { error: 'use_dpop_nonce', error_description: 'Use the server-provided DPoP nonce' }, { 'dpop-nonce': nonce })
      if (typeof proof === 'string') return send(res, 400, { error: 'invalid_dpop_proof', error_description: proof })
      if (path === '/auth/login') {
        stats.login++
        return send(res, 200, issue(proof.jkt, body.email ?? 'ada'), nonceHeader)
      }
      stats.refresh.calls++
      await new Promise((r) => setTimeout(r, options.refreshLatencyMs ?? 0))
      const rt = refresh.get(body.refresh_token ?? '')
      if (!rt) return send(res, 400, { error: 'invalid_grant' })
      if (rt.jkt !== proof.jkt) {
        stats.refresh.wrongKey++
        return send(res, 400, { error: 'invalid_grant', error_description: 'bound to another key' })
      }
      if (rt.used) {
        stats.refresh.reused++
        return send(res, 400, { error: 'invalid_grant', error_description: 'reused' })
      }
      rt.used = true
      stats.refresh.succeeded++
      return send(res, 200, issue(rt.jkt, rt.sub), nonceHeader)
    }

    if (path === '/auth/logout' || path === '/auth/me' || path.startsWith('/api/')) {
      if (path.startsWith('/api/')) stats.api.calls++
      const at = presented ? access.get(presented) : undefined
      const proof = await check(req, url, presented ?? '')
      const challenge = (error: string) => ({ 'www-authenticate': `DPoP error="${error}", algs="ES256"` })
      if (proof === 'use_dpop_nonce') return send(res, 401, { error: 'use_dpop_nonce' }, { ...challenge('use_dpop_nonce'), 'dpop-nonce': nonce })
      const bad =
        typeof proof === 'string' ? 'invalid_dpop_proof'
        : !at || at.expiresAt <= Date.now() ? (refuse('unknown or expired token'), 'invalid_token')
        : at.jkt !== proof.jkt ? (refuse('token bound to another key'), 'invalid_token')
        : null
      if (bad || typeof proof === 'string') {
        if (path.startsWith('/api/')) stats.api.unauthorized++
        return send(res, 401, { error: bad }, { ...challenge(bad ?? 'invalid_dpop_proof'), ...nonceHeader })
      }
      if (path === '/auth/logout') {
        stats.logout.calls++
        stats.logout.jkts.push(proof.jkt)
        refresh.delete((JSON.parse(text || '{}') as { refresh_token?: string }).refresh_token ?? '')
        return send(res, 204, null, nonceHeader)
      }
      if (path === '/auth/me') return send(res, 200, { sub: at!.sub, name: at!.sub }, nonceHeader)
      stats.api.ok++
      let body: unknown = null
      try {
        body = text ? JSON.parse(text) : null
      } catch {}
      return send(res, 200, { ok: true, jkt: proof.jkt, method: req.method, path, body }, nonceHeader)
    }

    if (req.method === 'GET' && options.staticDir) {
      const file = normalize(join(options.staticDir, path === '/' ? 'index.html' : path))
      if (file.startsWith(options.staticDir)) {
        const data = await readFile(file).catch(() => null)
        if (data) {
          res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' })
          return res.end(data)
        }
      }
    }
    send(res, 404, { error: 'not_found' })
  }

  const server = createServer((req, res) => void handle(req, res).catch(() => res.destroy()))
  server.keepAliveTimeout = 65_000
  await new Promise<void>((r) => server.listen({ port: 0, host: '127.0.0.1', backlog: 2048 }, r))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    url,
    demand,
    get stats() {
      return stats
    },
    /** Zeroes the counters and the proofs seen. */
    reset() {
      stats = fresh()
    },
    /** Every access token issued so far is dead (as if it expired). */
    expireAll: () => access.clear(),
    /** A new nonce: proofs with the old one are asked again. */
    rotateNonce() {
      nonce = token()
    },
    /** The distinct key thumbprints that proved requests to `prefix` (default: all). */
    keys: (prefix = '/') => [...new Set(stats.proofs.filter((p) => p.path.startsWith(prefix)).map((p) => p.jkt))],
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections()
        server.close(() => r())
      }),
  }
}

export type DpopServer = Awaited<ReturnType<typeof startDpopServer>>
