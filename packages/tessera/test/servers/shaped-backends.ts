import { randomBytes } from 'node:crypto'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { serve } from '@hono/node-server'
import { Hono, type Context } from 'hono'

/**
 * Hono token servers speaking the shapes our users' backends have (issue 15, `../shared/seeds/`),
 * on 127.0.0.1 port 0, with rotating single-use refresh tokens (a reused one is refused and kills
 * its family) and opaque access tokens the server can expire at will.
 *
 * - `directive`: the Directive seed. `POST /api/auth/login {email,password}` →
 *   `{ token, refreshToken, expiresIn }`; `POST /api/auth/refresh {refreshToken}`;
 *   `POST /api/auth/logout {refreshToken}` (bearer); `GET /api/auth/me` (bearer) → `{ id, role }`;
 *   errors `{ message }`.
 * - `nested`: `POST /auth/login {email,password}` → `{ data: { tokens: { access, refresh,
 *   expires_in }, user } }`; `POST /auth/refresh {refresh}` → `{ data: { tokens } }`;
 *   `POST /auth/logout {refresh}`; `GET /auth/me`; the token in `X-Access-Token: <t>` (no scheme);
 *   errors `{ error, error_description }`.
 *
 * Both: `GET /api/orders` needs a live access token.
 */
export type Shape = 'directive' | 'nested'

const USER = { email: 'ada@example.test', password: 'correct horse', id: 'u-1', name: 'Ada Lovelace', role: 'admin' }

export async function startShapedBackend(shape: Shape) {
  const nested = shape === 'nested'
  const base = nested ? '/auth' : '/api/auth'
  const access = new Set<string>()
  const refresh = new Map<string, { family: string; spent: boolean }>()
  const deadFamilies = new Set<string>()
  const stats = { login: 0, refresh: 0, refreshRefused: 0, logout: 0, me: 0, orders: 0, orders401: 0, lastLogoutBody: '' as string }
  const id = () => randomBytes(16).toString('base64url')

  const refuse = (c: Context, status: 400 | 401, error: string, text: string) =>
    c.json(nested ? { error, error_description: text } : { message: text }, status)

  function issue(c: Context, family: string, withUser: boolean) {
    const a = id()
    const r = id()
    access.add(a)
    refresh.set(r, { family, spent: false })
    const user = { id: USER.id, name: USER.name, role: USER.role }
    if (!nested) return c.json({ token: a, refreshToken: r, expiresIn: 900 })
    return c.json({ data: { tokens: { access: a, refresh: r, expires_in: 900 }, ...(withUser ? { user } : {}) } })
  }
  const accessToken = (c: Context) => (nested ? c.req.header('x-access-token') : /^Bearer (.+)$/.exec(c.req.header('authorization') ?? '')?.[1])
  const live = (c: Context) => {
    const t = accessToken(c)
    return t !== undefined && access.has(t)
  }
  const body = async (c: Context): Promise<Record<string, unknown>> => {
    try {
      const json: unknown = await c.req.json()
      return json && typeof json === 'object' ? (json as Record<string, unknown>) : {}
    } catch {
      return {}
    }
  }
  const refreshField = nested ? 'refresh' : 'refreshToken'

  const app = new Hono()
  app.post(`${base}/login`, async (c) => {
    stats.login++
    const { email, password } = await body(c)
    if (typeof email !== 'string' || typeof password !== 'string') return refuse(c, 400, 'invalid_request', 'email and password are required')
    if (email !== USER.email || password !== USER.password) return refuse(c, 401, 'invalid_credentials', 'Wrong email or password')
    return issue(c, id(), true)
  })
  app.post(`${base}/refresh`, async (c) => {
    stats.refresh++
    const token = (await body(c))[refreshField]
    if (typeof token !== 'string') return refuse(c, 400, 'invalid_request', `${refreshField} is required`)
    const entry = refresh.get(token)
    if (!entry || entry.spent || deadFamilies.has(entry.family)) {
      if (entry?.spent) deadFamilies.add(entry.family) // reuse: a copy is out there
      stats.refreshRefused++
      return refuse(c, 401, 'invalid_grant', 'Refresh token is no longer valid')
    }
    entry.spent = true
    return issue(c, entry.family, false)
  })
  app.post(`${base}/logout`, async (c) => {
    stats.logout++
    const json = await body(c)
    stats.lastLogoutBody = Object.keys(json).join(',')
    if (!live(c)) return refuse(c, 401, 'invalid_token', 'Not signed in')
    const entry = typeof json[refreshField] === 'string' ? refresh.get(json[refreshField] as string) : undefined
    if (!entry) return refuse(c, 400, 'invalid_request', `${refreshField} is required`)
    deadFamilies.add(entry.family)
    access.delete(accessToken(c)!)
    return c.body(null, 204)
  })
  app.get(`${base}/me`, (c) => {
    stats.me++
    return live(c) ? c.json(nested ? { id: USER.id, name: USER.name } : { id: USER.id, role: USER.role }) : refuse(c, 401, 'invalid_token', 'Not signed in')
  })
  app.get('/api/orders', (c) => {
    if (!live(c)) {
      stats.orders401++
      return refuse(c, 401, 'invalid_token', 'Access token expired')
    }
    stats.orders++
    return c.json([{ id: 1, total: 42 }])
  })

  const server = await new Promise<Server>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(s as Server))
    s.once('error', reject)
  })
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    url,
    base: url + base,
    user: USER,
    stats,
    /** Every access token issued so far stops working (it expired on the server's clock). */
    expireAccessTokens: () => access.clear(),
    /** Presents `token` to the refresh endpoint as anyone holding a copy could. */
    presentRefreshToken: (token: string) =>
      fetch(`${url}${base}/refresh`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ [refreshField]: token }) }),
    close: () => new Promise<void>((r) => server.close(() => r())),
  }
}
