import { spawn, type ChildProcess } from 'node:child_process'
import { resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createAuth, isTesseraError, type Auth, type TesseraError, type TokenPlacement } from '../src/index.js'
import { httpAuthority, type HttpAuthorityOptions } from '../src/authorities/http.js'
import { FakeStorage, flush } from './fakes.js'
import { startShapedBackend } from './servers/shaped-backends.js'

/**
 * Issue 15: `httpAuthority` speaks the backends our users already have, with options only (0 lines
 * of glue), each a real server on 127.0.0.1: a FastAPI app (Debian's python3-fastapi, run by
 * /usr/bin/python3) with the OAuth2 password form and rotating refresh tokens, and Hono servers
 * with the Directive seed's `{ token, refreshToken, expiresIn }` and a nested `{ data: { tokens } }`.
 */
const engines: Auth<unknown, never>[] = []
afterEach(() => {
  for (const a of engines.splice(0)) a.dispose()
})

/** An engine over `options`, the way the README recipe writes it, with a storage we can read. */
function engine<User, Credentials>(options: HttpAuthorityOptions<User, Credentials>, placement?: TokenPlacement) {
  const storage = new FakeStorage()
  const auth = createAuth({ authority: httpAuthority(options), storage, placement, allowedOrigins: [new URL(options.baseUrl).origin], environment: { subscribe: () => () => {} }, retry: { attempts: 1 } })
  engines.push(auth as Auth<unknown, never>)
  const stored = () => JSON.parse(storage.map.get('tessera') ?? 'null')?.tokens as { accessToken: string; refreshToken: string } | undefined
  return { auth, stored }
}
const failure = (p: Promise<unknown>) => p.then(() => null, (e: TesseraError) => e)

describe('FastAPI: OAuth2 password form, JWT access tokens, rotating refresh tokens', () => {
  let child: ChildProcess
  let url: string
  beforeAll(async () => {
    child = spawn('/usr/bin/python3', [resolve(__dirname, 'servers/fastapi_app.py')], { stdio: ['ignore', 'pipe', 'inherit'] })
    const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`the FastAPI app exited (${code}): is python3-fastapi installed?`))))
    const port = new Promise<string>((ok) => createInterface({ input: child.stdout! }).on('line', (line) => line.startsWith('PORT ') && ok(line.slice(5))))
    url = `http://127.0.0.1:${await Promise.race([port, exited])}`
  })
  afterAll(() => void child?.kill())

  type FastApiUser = { username: string; full_name: string; email: string }
  /** The whole configuration a FastAPI user writes. */
  const fastapi = () => ({ baseUrl: url, endpoints: { login: '/token', me: '/users/me' }, login: { encoding: 'form' } }) as const
  const stats = async () => (await (await fetch(`${url}/__stats`)).json()) as Record<string, number>
  const presentRefreshToken = (refresh_token: string) =>
    fetch(`${url}/refresh`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ refresh_token }) })

  it('login as a form → /users/me → a request → a 401 refreshes once and replays → logout revokes the refresh token', async () => {
    const { auth, stored } = engine<FastApiUser, { username: string; password: string }>(fastapi())
    await auth.ready()
    await auth.login({ username: 'ada', password: 'correct horse' })
    expect(auth.getSnapshot()).toMatchObject({ status: 'authenticated', user: { username: 'ada', full_name: 'Ada Lovelace' } })
    const res = await auth.fetch(`${url}/items`, { auth: 'required' })
    expect(await res.json()).toEqual([{ id: 1, owner: 'ada' }])
    const first = stored()!
    const before = await stats()
    // The access token expires on the server's clock only: the server answers 401, the engine refreshes and replays.
    await fetch(`${url}/__advance`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"seconds": 901}' })
    const replayed = await auth.fetch(`${url}/items`)
    expect(replayed.status).toBe(200)
    const after = await stats()
    expect([after.items_401! - before.items_401!, after.refresh! - before.refresh!]).toEqual([1, 1])
    await flush()
    expect(stored()!.refreshToken).not.toBe(first.refreshToken)
    expect((await presentRefreshToken(first.refreshToken)).status).toBe(401) // spent: rotation
    const live = stored()!.refreshToken
    await auth.logout()
    expect(auth.getSnapshot().status).toBe('unauthenticated')
    const revoked = await presentRefreshToken(live)
    expect(revoked.status).toBe(401) // the refresh token is dead on the server
    expect(await revoked.json()).toEqual({ detail: 'Invalid refresh token' })
  })

  it('field names are configurable: `{ email, password }` sent as FastAPI\'s `username`/`password` form', async () => {
    const { auth } = engine({ ...fastapi(), login: { encoding: 'form', body: (c: { email: string; password: string }) => ({ username: c.email, password: c.password }) } })
    await auth.ready()
    await auth.login({ email: 'ada', password: 'correct horse' })
    expect(auth.getSnapshot().status).toBe('authenticated')
  })

  it('the server\'s words in the error: `detail` (a string) on 401, `detail` (a list of `{ loc, msg }`) on 422, both LOGIN_FAILED', async () => {
    const { auth } = engine<FastApiUser, Record<string, string>>(fastapi())
    await auth.ready()
    const wrong = await failure(auth.login({ username: 'ada', password: 'not it' }))
    expect(wrong).toMatchObject({ code: 'LOGIN_FAILED', status: 401, message: 'Incorrect username or password' })
    expect(wrong!.message + JSON.stringify(wrong!.cause)).not.toContain('not it')
    const missing = await failure(auth.login({ password: 'correct horse' }))
    expect(missing).toMatchObject({ code: 'LOGIN_FAILED', status: 422, message: 'username: field required' })
    expect(auth.getSnapshot()).toMatchObject({ status: 'unauthenticated', error: { code: 'LOGIN_FAILED' } })
  })

  it('a reused refresh token kills the family: the next refresh ends the session (SESSION_EXPIRED) with the server\'s words', async () => {
    const { auth, stored } = engine<FastApiUser, { username: string; password: string }>(fastapi())
    await auth.ready()
    await auth.login({ username: 'ada', password: 'correct horse' })
    const stolen = stored()!.refreshToken
    await auth.refresh()
    expect((await presentRefreshToken(stolen)).status).toBe(401)
    const error = await failure(auth.refresh())
    expect(error).toMatchObject({ code: 'SESSION_EXPIRED', status: 401, cause: { code: 'INVALID_GRANT', message: 'Invalid refresh token' } })
    expect(auth.getSnapshot().status).toBe('expired')
  })
})

describe('Hono, the Directive seed: `{ token, refreshToken, expiresIn }`', () => {
  let server: Awaited<ReturnType<typeof startShapedBackend>>
  beforeAll(async () => void (server = await startShapedBackend('directive')))
  afterAll(() => server?.close())
  /** The whole configuration a Directive user writes. */
  const directive = () => ({
    baseUrl: server.base,
    refresh: { body: (refreshToken?: string) => ({ refreshToken }) },
    logout: { body: (t: { refreshToken?: string }) => ({ refreshToken: t.refreshToken }) },
  })

  it('login → /me → a request → a 401 refreshes once and replays → logout revokes the refresh token', async () => {
    const { auth, stored } = engine<{ id: string; role: string }, { email: string; password: string }>(directive())
    await auth.ready()
    await auth.login({ email: server.user.email, password: server.user.password })
    expect(auth.getSnapshot()).toMatchObject({ status: 'authenticated', user: { id: 'u-1', role: 'admin' } })
    expect(auth.getSnapshot().expiresAt! - Date.now()).toBeGreaterThan(800_000) // expiresIn read
    expect((await auth.fetch(`${server.url}/api/orders`)).status).toBe(200)
    const first = stored()!
    server.expireAccessTokens()
    const before = { ...server.stats }
    expect(await (await auth.fetch(`${server.url}/api/orders`)).json()).toEqual([{ id: 1, total: 42 }])
    expect([server.stats.orders401 - before.orders401, server.stats.refresh - before.refresh]).toEqual([1, 1])
    await flush()
    expect(stored()!.refreshToken).not.toBe(first.refreshToken)
    const live = stored()!.refreshToken
    await auth.logout()
    expect(server.stats.lastLogoutBody).toBe('refreshToken')
    expect((await server.presentRefreshToken(live)).status).toBe(401)
  })

  it('a logout the server refuses is a logout-error event with the server\'s words, never silent (and the session ends here)', async () => {
    const { auth } = engine({ ...directive(), logout: undefined }) // the default body `{ refresh_token }` is not what this server reads
    await auth.ready()
    await auth.login({ email: server.user.email, password: server.user.password })
    const errors: TesseraError[] = []
    auth.on('logout-error', (n) => void errors.push(n.error!))
    await auth.logout()
    expect(auth.getSnapshot().status).toBe('unauthenticated')
    expect(errors).toHaveLength(1)
    expect(errors[0]).toMatchObject({ status: 400, message: 'refreshToken is required' })
  })

  it('wrong credentials: LOGIN_FAILED with the server\'s `message`', async () => {
    const { auth } = engine(directive())
    await auth.ready()
    expect(await failure(auth.login({ email: server.user.email, password: 'nope' }))).toMatchObject({ code: 'LOGIN_FAILED', status: 401, message: 'Wrong email or password' })
  })
})

describe('Hono, a nested shape `{ data: { tokens: { access, refresh, expires_in }, user } }`, the token in `X-Access-Token`', () => {
  let server: Awaited<ReturnType<typeof startShapedBackend>>
  beforeAll(async () => void (server = await startShapedBackend('nested')))
  afterAll(() => server?.close())
  type Answer = { data: { tokens: { access: string; refresh: string; expires_in: number }; user?: { id: string; name: string } } }
  const placement: TokenPlacement = { header: 'X-Access-Token', scheme: '' }
  /** The whole configuration a user of this backend writes. */
  const nested = () => ({
    baseUrl: `${server.url}/auth`,
    placement,
    mapTokens: ({ data }: Answer) => ({ access_token: data.tokens.access, refresh_token: data.tokens.refresh, expires_in: data.tokens.expires_in, user: data.user }),
    refresh: { body: (refresh?: string) => ({ refresh }) },
    logout: { body: (t: { refreshToken?: string }) => ({ refresh: t.refreshToken }) },
  })

  it('login takes the user from the answer (no /me call) → a request → a 401 refreshes once and replays → logout revokes', async () => {
    const { auth, stored } = engine(nested(), placement)
    await auth.ready()
    const me = server.stats.me
    await auth.login({ email: server.user.email, password: server.user.password })
    expect(auth.getSnapshot()).toMatchObject({ status: 'authenticated', user: { id: 'u-1', name: 'Ada Lovelace' }, actions: { user: { status: 'fulfilled' } } })
    expect(server.stats.me).toBe(me)
    expect((await auth.fetch(`${server.url}/api/orders`)).status).toBe(200)
    const first = stored()!
    server.expireAccessTokens()
    const before = { ...server.stats }
    expect((await auth.fetch(`${server.url}/api/orders`)).status).toBe(200)
    expect([server.stats.orders401 - before.orders401, server.stats.refresh - before.refresh]).toEqual([1, 1])
    expect(auth.getSnapshot().user).toMatchObject({ id: 'u-1' }) // a refresh answer without a user keeps it
    await flush()
    const live = stored()!.refreshToken
    expect(live).not.toBe(first.refreshToken)
    await auth.logout() // sent with X-Access-Token: the server accepts it and revokes
    expect(server.stats.lastLogoutBody).toBe('refresh')
    expect((await server.presentRefreshToken(live)).status).toBe(401)
  })

  it('mapUser shapes the user handed over with the login', async () => {
    const { auth } = engine({ ...nested(), mapUser: (u: { name: string }) => ({ displayName: u.name }) }, placement)
    await auth.ready()
    await auth.login({ email: server.user.email, password: server.user.password })
    expect(auth.getSnapshot().user).toEqual({ displayName: 'Ada Lovelace' })
  })

  it('a shape it cannot read is INVALID_TOKEN_RESPONSE naming the missing field and what the answer has (names only, no values)', async () => {
    const plain = engine({ baseUrl: `${server.url}/auth`, placement }, placement)
    await plain.auth.ready()
    const error = await failure(plain.auth.login({ email: server.user.email, password: server.user.password }))
    expect(isTesseraError(error, 'INVALID_TOKEN_RESPONSE')).toBe(true)
    expect(error).toMatchObject({ field: 'access_token' })
    expect(error!.message).toMatch(/`access_token` is missing.*\/login.*\bdata\b.*mapTokens/)
    const wrong = engine({ ...nested(), mapTokens: (a: { tokens: { access: string } }) => ({ access_token: a.tokens.access }) }, placement)
    await wrong.auth.ready()
    const thrown = await failure(wrong.auth.login({ email: server.user.email, password: server.user.password }))
    expect(thrown).toMatchObject({ code: 'INVALID_TOKEN_RESPONSE', field: '(body)' })
    expect(thrown!.message).toMatch(/mapTokens.*\/login.*\bdata\b/)
    const empty = engine({ ...nested(), mapTokens: ({ data }: Answer) => ({ access_token: data.tokens.refresh.slice(99) }) }, placement)
    await empty.auth.ready()
    expect(await failure(empty.auth.login({ email: server.user.email, password: server.user.password }))).toMatchObject({ code: 'INVALID_TOKEN_RESPONSE', field: 'access_token' })
  })

  it('the server\'s `error_description` in the error; a refused refresh ends the session with it', async () => {
    const { auth, stored } = engine(nested(), placement)
    await auth.ready()
    expect(await failure(auth.login({ email: server.user.email, password: 'nope' }))).toMatchObject({ code: 'LOGIN_FAILED', status: 401, message: 'Wrong email or password' })
    await auth.login({ email: server.user.email, password: server.user.password })
    await server.presentRefreshToken(stored()!.refreshToken) // someone else spends it
    expect(await failure(auth.refresh())).toMatchObject({ code: 'SESSION_EXPIRED', cause: { message: 'Refresh token is no longer valid' } })
  })
})
