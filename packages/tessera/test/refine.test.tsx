// @vitest-environment happy-dom
// @vitest-environment-options {"url":"http://127.0.0.1:5999/"}
import {
  Refine,
  useForgotPassword,
  useGetIdentity,
  useIsAuthenticated,
  useLogin,
  useLogout,
  useOnError,
  usePermissions,
  useRegister,
  useUpdatePassword,
  type AuthProvider,
} from '@refinedev/core'
import { act, cleanup, render, waitFor } from '@testing-library/react'
import { spawn, type ChildProcess } from 'node:child_process'
import { resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { httpAuthority } from '../src/authorities/http.js'
import { oidcAuthority, withProviders, type OidcUser } from '../src/authorities/oidc.js'
import { createRefineAuthProvider, safeRedirect, type AccountApi } from '../src/bindings/refine.js'
import { createAuth, TesseraError, type Auth } from '../src/index.js'
import { FakeStorage, setup } from './fakes.js'

type User = { id: string; name: string; roles?: string[] }
const creds = { user: 'ada', password: 'pw' }

afterEach(cleanup)

/** Renders the real <Refine> with `provider` and hands back every auth hook refine offers. */
function mount(provider: AuthProvider, reporters = 0) {
  const hooks = {} as {
    login: ReturnType<typeof useLogin<Record<string, unknown>>>
    logout: ReturnType<typeof useLogout>
    check: ReturnType<typeof useIsAuthenticated>
    identity: ReturnType<typeof useGetIdentity<User>>
    permissions: ReturnType<typeof usePermissions<string[]>>
    register: ReturnType<typeof useRegister<Record<string, unknown>>>
    forgot: ReturnType<typeof useForgotPassword<{ email: string }>>
    update: ReturnType<typeof useUpdatePassword<Record<string, unknown>>>
    onError: ReturnType<typeof useOnError>[]
  }
  hooks.onError = []
  function Harness() {
    hooks.login = useLogin<Record<string, unknown>>()
    hooks.logout = useLogout()
    hooks.check = useIsAuthenticated()
    hooks.identity = useGetIdentity<User>()
    hooks.permissions = usePermissions<string[]>({})
    hooks.register = useRegister<Record<string, unknown>>()
    hooks.forgot = useForgotPassword<{ email: string }>()
    hooks.update = useUpdatePassword<Record<string, unknown>>()
    return null
  }
  // Each reporter is a separate component with its own useOnError, like refine's data hooks.
  function Reporter({ i }: { i: number }) {
    hooks.onError[i] = useOnError()
    return null
  }
  render(
    <Refine authProvider={provider} options={{ disableTelemetry: true, reactQuery: { clientConfig: { defaultOptions: { queries: { retry: false } } } } }}>
      <Harness />
      {Array.from({ length: reporters }, (_, i) => (
        <Reporter key={i} i={i} />
      ))}
    </Refine>,
  )
  return hooks
}

const settle = () => act(() => new Promise((r) => setTimeout(r, 60)))
const http401 = () => Object.assign(new Error('Unauthorized'), { statusCode: 401 })

/** Account verbs that record their calls and succeed. */
const recordingAccount = () =>
  ({
    register: vi.fn(async () => ({})),
    forgotPassword: vi.fn(async () => {}),
    resetPassword: vi.fn(async () => {}),
    changePassword: vi.fn(async () => {}),
  }) satisfies AccountApi

async function loggedIn() {
  const t = setup()
  await t.auth.ready()
  await t.auth.login(creds)
  const provider = createRefineAuthProvider(t.auth)
  const logout = vi.spyOn(provider, 'logout')
  return { ...t, provider, logout }
}

describe('safeRedirect: open-redirect corpus', () => {
  const here = () => location.origin
  const corpus: [unknown, string][] = [
    ['/dashboard', '/dashboard'],
    ['/orders?page=2#top', '/orders?page=2#top'],
    ['/a/b%20c', '/a/b%20c'],
    ['/search?next=//evil.com', '/search?next=//evil.com'],
    ['https://evil.com', '/'],
    ['http://evil.com/login', '/'],
    ['//evil.com', '/'],
    ['///evil.com', '/'],
    ['\\\\evil.com', '/'],
    ['/\\evil.com', '/'],
    ['\\/evil.com', '/'],
    ['javascript:alert(1)', '/'],
    ['JaVaScRiPt:alert(1)', '/'],
    ['data:text/html,<script>alert(1)</script>', '/'],
    ['%2F%2Fevil.com', '/'],
    ['/%2F%2Fevil.com', '/'],
    ['/%2f%2fevil.com', '/'],
    ['/%5Cevil.com', '/'],
    ['/%5cevil.com', '/'],
    ['/%252F%252Fevil.com', '/'],
    ['/%25255C%25255Cevil.com', '/'],
    ['/\t/evil.com', '/'],
    ['/\n/evil.com', '/'],
    ['/%09/evil.com', '/'],
    ['/ok\u0000', '/'],
    [' //evil.com', '/'],
    ['evil.com', '/'],
    ['', '/'],
    [undefined, '/'],
    [null, '/'],
    [42, '/'],
    ['/%E0%A4%A', '/'],
    ['https://localhost:3000.evil.com/', '/'],
    ['https://user@evil.com/', '/'],
  ]
  it.each(corpus)('safeRedirect(%j) → %j', (input, expected) => {
    expect(safeRedirect(input, '/')).toBe(expected)
  })

  it('reduces an absolute URL on the page origin to its path, and uses the fallback given', () => {
    expect(safeRedirect(`${here()}/orders?x=1#h`)).toBe('/orders?x=1#h')
    expect(safeRedirect(`${here()}//evil.com`)).toBe('/')
    expect(safeRedirect('//evil.com', '/home')).toBe('/home')
    expect(safeRedirect('/next', '/home')).toBe('/next')
  })

  it('sanitises the configured paths too', async () => {
    const { auth } = setup()
    const provider = createRefineAuthProvider(auth, { loginPath: '//evil.com/login', homePath: 'https://evil.com' })
    await expect(provider.check()).resolves.toMatchObject({ authenticated: false, redirectTo: '/' })
    await expect(provider.login(creds)).resolves.toEqual({ success: true, redirectTo: '/' })
    await expect(provider.logout({ redirectPath: 'javascript:alert(1)' })).resolves.toEqual({ success: true, redirectTo: '/' })
  })
})

describe('refine <Refine> with the fake authority', () => {
  it('useLogin → useIsAuthenticated → useGetIdentity → usePermissions → useLogout', async () => {
    const { auth } = setup()
    auth.on('user', () => {})
    const provider = createRefineAuthProvider(auth, { permissions: (u) => (u ? ['admin'] : []) })
    const hooks = mount(provider)
    await waitFor(() => expect(hooks.check.data).toMatchObject({ authenticated: false, redirectTo: '/login' }))
    expect(hooks.check.data?.logout).toBe(false)
    const result = await act(() => hooks.login.mutateAsync(creds))
    expect(result).toEqual({ success: true, redirectTo: '/' })
    await settle()
    await waitFor(() => expect(hooks.check.data).toEqual({ authenticated: true }))
    await waitFor(() => expect(hooks.identity.data).toEqual({ id: 'u1', name: 'Ada' }))
    await waitFor(() => expect(hooks.permissions.data).toEqual(['admin']))
    const out = await act(() => hooks.logout.mutateAsync())
    expect(out).toEqual({ success: true, redirectTo: '/login' })
    expect(auth.getSnapshot().status).toBe('unauthenticated')
    await settle()
    await waitFor(() => expect(hooks.check.data?.authenticated).toBe(false))
  })

  it('a refused login resolves { success: false } with the LOGIN_FAILED error, and no session', async () => {
    const { auth } = setup()
    await auth.ready()
    const hooks = mount(createRefineAuthProvider(auth))
    const result = await act(() => hooks.login.mutateAsync({ user: 'ada', password: 'nope' }))
    expect(result.success).toBe(false)
    expect(result.error).toMatchObject({ code: 'LOGIN_FAILED', message: 'Wrong email or password' })
    expect(auth.getSnapshot().status).toBe('unauthenticated')
  })

  it('getPermissions defaults to user.roles, and check waits for the restore', async () => {
    const { auth, server } = setup()
    server.authority.fetchUser = async () => ({ id: 'u1', name: 'Ada', roles: ['editor'] })
    const provider = createRefineAuthProvider(auth)
    const checking = provider.check()
    expect(auth.getSnapshot().status).toBe('initializing')
    await expect(checking).resolves.toMatchObject({ authenticated: false })
    await auth.login(creds)
    await expect(provider.getPermissions!()).resolves.toEqual(['editor'])
    await expect(provider.getIdentity!()).resolves.toMatchObject({ name: 'Ada' })
  })

  it('P19: 10 concurrent onError 401s with a dead refresh token → one refresh, one logout', async () => {
    const { server, provider, logout, auth } = await loggedIn()
    server.next = ['reject']
    const hooks = mount(provider, 10)
    const results = await act(() => Promise.all(hooks.onError.map((h) => h.mutateAsync(http401()))))
    await settle()
    expect(server.refreshCalls).toBe(1)
    expect(results.filter((r) => r.logout)).toHaveLength(1)
    expect(results.find((r) => r.logout)).toEqual({ logout: true, redirectTo: '/login' })
    await waitFor(() => expect(logout).toHaveBeenCalledTimes(1))
    expect(auth.getSnapshot().status).toBe('unauthenticated')
    // The login page's own queries keep failing: no loop, no further refresh or logout.
    await act(() => Promise.all(hooks.onError.map((h) => h.mutateAsync(http401()))))
    await settle()
    expect(server.refreshCalls).toBe(1)
    expect(logout).toHaveBeenCalledTimes(1)
  })

  it('P19: 10 concurrent onError 401s with a live refresh token → one refresh, no logout, session kept', async () => {
    const { server, provider, logout, auth } = await loggedIn()
    const hooks = mount(provider, 10)
    const results = await act(() => Promise.all(hooks.onError.map((h) => h.mutateAsync(http401()))))
    await settle()
    expect(server.refreshCalls).toBe(1)
    expect(results.every((r) => !r.logout && !r.redirectTo)).toBe(true)
    expect(logout).not.toHaveBeenCalled()
    expect(auth.getSnapshot()).toMatchObject({ status: 'authenticated', generation: 2 })
  })

  it('P19: onError while already logged out (the login page) asks for no refresh and no logout', async () => {
    const { auth, server } = setup()
    await auth.ready()
    const provider = createRefineAuthProvider(auth)
    const logout = vi.spyOn(provider, 'logout')
    const hooks = mount(provider, 5)
    for (let round = 0; round < 3; round++) {
      const results = await act(() => Promise.all(hooks.onError.map((h) => h.mutateAsync(http401()))))
      expect(results.every((r) => !r.logout)).toBe(true)
    }
    await settle()
    expect(server.refreshCalls).toBe(0)
    expect(logout).not.toHaveBeenCalled()
  })

  it('P19: a session that expired on its own is logged out once by many concurrent 401s', async () => {
    const { server, provider, logout, auth } = await loggedIn()
    server.next = ['reject']
    await auth.refresh().catch(() => {})
    expect(auth.getSnapshot().status).toBe('expired')
    const hooks = mount(provider, 10)
    const results = await act(() => Promise.all(hooks.onError.map((h) => h.mutateAsync(http401()))))
    expect(results.filter((r) => r.logout)).toHaveLength(1)
    await settle()
    await waitFor(() => expect(logout).toHaveBeenCalledTimes(1))
    expect(server.refreshCalls).toBe(1)
  })

  it('P19/I6: a refresh that fails for network reasons is not a logout', async () => {
    const { server, provider, logout, auth, clock } = await loggedIn()
    server.next = ['network', 'network', 'network', 'network']
    const decisions = Promise.all(Array.from({ length: 5 }, () => provider.onError(http401())))
    await clock.advance(120_000)
    const results = await decisions
    expect(results.every((r) => !r.logout)).toBe(true)
    expect(results[0]!.error).toMatchObject({ code: 'NETWORK_ERROR' })
    expect(server.refreshCalls).toBe(4) // one refresh, retried by the engine
    expect(logout).not.toHaveBeenCalled()
    expect(auth.getSnapshot().status).toBe('authenticated')
  })

  it('403 is never a logout, and other errors are left alone', async () => {
    const { server, provider, logout } = await loggedIn()
    const hooks = mount(provider, 3)
    const forbidden = Object.assign(new Error('Forbidden'), { statusCode: 403 })
    const results = await act(() => Promise.all(hooks.onError.map((h) => h.mutateAsync(forbidden))))
    expect(results.every((r) => !r.logout && r.error === forbidden)).toBe(true)
    await expect(provider.onError({ response: { status: 403 } })).resolves.not.toHaveProperty('logout')
    await expect(provider.onError(Object.assign(new Error('boom'), { statusCode: 500 }))).resolves.toEqual({})
    await settle()
    expect(server.refreshCalls).toBe(0)
    expect(logout).not.toHaveBeenCalled()
  })

  it('a Tessera SESSION_EXPIRED from a transport counts as a 401; an axios-shaped 401 too', async () => {
    const { provider, server } = await loggedIn()
    server.next = ['reject']
    await expect(provider.onError(new TesseraError('SESSION_EXPIRED', 'over'))).resolves.toEqual({ logout: true, redirectTo: '/login' })
    const fresh = await loggedIn()
    await expect(fresh.provider.onError({ response: { status: 401 } })).resolves.toEqual({})
    expect(fresh.server.refreshCalls).toBe(1)
  })

  it('account verbs: useRegister, useForgotPassword, useUpdatePassword call the authority and redirect safely', async () => {
    const { auth } = await loggedIn()
    const account = recordingAccount()
    const hooks = mount(createRefineAuthProvider(auth, { account }))
    await expect(act(() => hooks.register.mutateAsync({ email: 'b@x.test', password: 'long enough' }))).resolves.toEqual({ success: true, redirectTo: '/login' })
    expect(account.register).toHaveBeenCalledWith({ email: 'b@x.test', password: 'long enough' })
    await expect(act(() => hooks.forgot.mutateAsync({ email: 'b@x.test' }))).resolves.toEqual({ success: true, redirectTo: '/login' })
    expect(account.forgotPassword).toHaveBeenCalledWith('b@x.test')
    await expect(act(() => hooks.update.mutateAsync({ token: 'reset-1', password: 'new password', confirmPassword: 'new password' }))).resolves.toEqual({
      success: true,
      redirectTo: '/login',
    })
    expect(account.resetPassword).toHaveBeenCalledWith('reset-1', 'new password')
    await expect(act(() => hooks.update.mutateAsync({ currentPassword: 'pw', password: 'new password' }))).resolves.toEqual({ success: true })
    expect(account.changePassword).toHaveBeenCalledWith(expect.stringMatching(/^at-/), 'pw', 'new password')
    const mismatch = await act(() => hooks.update.mutateAsync({ password: 'a', confirmPassword: 'b' }))
    expect(mismatch).toMatchObject({ success: false, error: { message: 'The passwords do not match' } })
    account.register.mockRejectedValueOnce(new TesseraError('LOGIN_FAILED', 'taken', { status: 409 }))
    await expect(act(() => hooks.register.mutateAsync({ email: 'b@x.test' }))).resolves.toMatchObject({ success: false, error: { message: 'taken' } })
  })

  it('issue 15: every method that takes a redirect honours it (redirectPath or redirectTo) through safeRedirect, and keeps it away from the server', async () => {
    const { auth, server } = await loggedIn()
    const login = vi.spyOn(server.authority, 'login')
    const account = recordingAccount()
    const hooks = mount(createRefineAuthProvider(auth, { account }))
    await expect(act(() => hooks.login.mutateAsync({ ...creds, redirectPath: '/orders?page=2' }))).resolves.toEqual({ success: true, redirectTo: '/orders?page=2' })
    expect(login).toHaveBeenLastCalledWith(creds, expect.any(AbortSignal)) // refine's fields are not credentials
    await expect(act(() => hooks.login.mutateAsync({ ...creds, redirectTo: '/reports' }))).resolves.toEqual({ success: true, redirectTo: '/reports' })
    await expect(act(() => hooks.login.mutateAsync({ ...creds, redirectPath: '//evil.com/phish' }))).resolves.toEqual({ success: true, redirectTo: '/' })
    await expect(act(() => hooks.register.mutateAsync({ email: 'b@x.test', redirectPath: '/welcome' }))).resolves.toEqual({ success: true, redirectTo: '/welcome' })
    expect(account.register).toHaveBeenLastCalledWith({ email: 'b@x.test' })
    await expect(act(() => hooks.register.mutateAsync({ email: 'b@x.test', redirectPath: 'javascript:alert(1)' }))).resolves.toEqual({ success: true, redirectTo: '/login' })
    await expect(act(() => hooks.forgot.mutateAsync({ email: 'b@x.test', redirectPath: '/check-your-mail' } as { email: string }))).resolves.toEqual({
      success: true,
      redirectTo: '/check-your-mail',
    })
    await expect(act(() => hooks.forgot.mutateAsync({ email: 'b@x.test', redirectTo: 'https://evil.com/' } as { email: string }))).resolves.toEqual({ success: true, redirectTo: '/login' })
    await expect(act(() => hooks.update.mutateAsync({ token: 'reset-1', password: 'new password', redirectPath: '/signed-out' }))).resolves.toEqual({
      success: true,
      redirectTo: '/signed-out',
    })
    await expect(act(() => hooks.update.mutateAsync({ token: 'reset-1', password: 'new password', redirectPath: '/%2F%2Fevil.com' }))).resolves.toEqual({
      success: true,
      redirectTo: '/',
    })
    await expect(act(() => hooks.update.mutateAsync({ currentPassword: 'pw', password: 'new password', redirectTo: '/profile' }))).resolves.toEqual({
      success: true,
      redirectTo: '/profile',
    })
  })

  it('without account verbs, register/forgotPassword/updatePassword resolve { success: false }', async () => {
    const { auth } = setup()
    const provider = createRefineAuthProvider(auth)
    for (const result of [await provider.register!({}), await provider.forgotPassword!({ email: 'a@b.c' }), await provider.updatePassword!({ password: 'x' })])
      expect(result).toMatchObject({ success: false, error: { message: 'Not supported by this authority' } })
  })
})

// ── against the reference server ──
// The server runs in a child process: in this DOM environment the globals it relies on
// (Request, Response) are happy-dom's. It sends CORS headers for this page's origin, as for a real app.
const serverScript = `
import { startServer, silentLogger } from '@tessera/server'
const server = await startServer({ port: 0, host: '127.0.0.1', scryptCost: 1024, logger: silentLogger,
  corsOrigins: JSON.parse(process.env.TESSERA_TEST_ORIGINS),
  mailer: (m) => console.log(JSON.stringify({ mail: m.recipient, token: m.payload.token })) })
console.log(JSON.stringify({ url: server.url }))
process.stdin.resume()
process.stdin.on('end', async () => { await server.close(); process.exit(0) })
`

describe('refine against the reference server', () => {
  let child: ChildProcess
  let url = ''
  const mail = new Map<string, string>()
  const engines: Auth[] = []

  beforeAll(async () => {
    child = spawn(process.execPath, ['--conditions=@tessera/source', '--import', 'tsx', '--input-type=module', '-e', serverScript], {
      env: { ...process.env, TESSERA_TEST_ORIGINS: JSON.stringify([location.origin]) },
      stdio: ['pipe', 'pipe', 'inherit'],
    })
    const lines = createInterface({ input: child.stdout! })
    url = await new Promise<string>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`reference server exited with ${code}`)))
      lines.on('line', (line) => {
        const m = JSON.parse(line) as { url?: string; mail?: string; token?: string }
        if (m.url) resolve(m.url)
        if (m.mail) mail.set(m.mail, m.token!)
      })
    })
  })
  afterEach(() => {
    engines.splice(0).forEach((a) => a.dispose())
  })
  afterAll(async () => {
    if (!child || child.exitCode !== null) return
    const exited = new Promise((r) => child.once('exit', r))
    child.stdin!.end()
    await exited
  })

  function connect() {
    const authority = httpAuthority<{ id: string; email: string; roles: string[] }>({ baseUrl: url + '/auth' })
    // A key of its own: engines of earlier tests never meet this one over the BroadcastChannel.
    const auth = createAuth({ authority, allowedOrigins: [url], key: `refine-${engines.length}-${Date.now()}` })
    engines.push(auth as Auth)
    return { auth, authority, provider: createRefineAuthProvider(auth, { account: authority }) }
  }
  const email = (tag: string) => `${tag}-${Math.random().toString(36).slice(2, 8)}@example.test`

  it('useRegister → useLogin → useGetIdentity → usePermissions → useLogout with the real server', async () => {
    const { auth, provider } = connect()
    const hooks = mount(provider)
    const address = email('reg')
    await expect(act(() => hooks.register.mutateAsync({ email: address, password: 'correct horse', name: 'Reg' }))).resolves.toEqual({
      success: true,
      redirectTo: '/login',
    })
    const taken = await act(() => hooks.register.mutateAsync({ email: address, password: 'correct horse' }))
    expect(taken).toMatchObject({ success: false, error: { status: 409 } })
    await expect(act(() => hooks.login.mutateAsync({ email: address, password: 'correct horse' }))).resolves.toEqual({ success: true, redirectTo: '/' })
    await settle()
    await waitFor(() => expect(hooks.identity.data).toMatchObject({ email: address, name: 'Reg', roles: ['user'] }))
    await waitFor(() => expect(hooks.permissions.data).toEqual(['user']))
    await waitFor(() => expect(hooks.check.data).toEqual({ authenticated: true }))
    const res = await auth.fetch(url + '/auth/me')
    expect(res.status).toBe(200)
    await expect(act(() => hooks.logout.mutateAsync())).resolves.toEqual({ success: true, redirectTo: '/login' })
    expect(auth.getSnapshot().status).toBe('unauthenticated')
    await settle()
    await waitFor(() => expect(hooks.check.data?.authenticated).toBe(false))
  })

  it('a wrong password is { success: false } with the server message', async () => {
    const { provider, authority } = connect()
    const address = email('wrong')
    await authority.register({ email: address, password: 'correct horse' })
    const result = await provider.login({ email: address, password: 'not the password' })
    expect(result).toMatchObject({ success: false, error: { code: 'LOGIN_FAILED', status: 401 } })
  })

  it('forgot password → reset with the mailed token; the reset revokes the session, and onError then logs out once', async () => {
    const { auth, provider, authority } = connect()
    const address = email('reset')
    await authority.register({ email: address, password: 'correct horse' })
    await provider.login({ email: address, password: 'correct horse' })
    expect(auth.getSnapshot().status).toBe('authenticated')
    await expect(provider.forgotPassword!({ email: address })).resolves.toEqual({ success: true, redirectTo: '/login' })
    await vi.waitFor(() => expect(mail.get(address)).toBeTruthy())
    await expect(provider.updatePassword!({ token: mail.get(address), password: 'battery staple', confirmPassword: 'battery staple' })).resolves.toEqual({
      success: true,
      redirectTo: '/login',
    })
    // The reset revoked every refresh token: a 401 now ends the session, once.
    const decisions = await Promise.all(Array.from({ length: 5 }, () => provider.onError({ status: 401 })))
    expect(decisions.filter((d) => d.logout)).toEqual([{ logout: true, redirectTo: '/login' }])
    expect(auth.getSnapshot().status).toBe('expired')
    await provider.logout({})
    await expect(provider.login({ email: address, password: 'correct horse' })).resolves.toMatchObject({ success: false })
    await expect(provider.login({ email: address, password: 'battery staple' })).resolves.toMatchObject({ success: true })
  })

  it('useUpdatePassword while signed in changes the password with the access token', async () => {
    const { provider, authority } = connect()
    const address = email('change')
    await authority.register({ email: address, password: 'correct horse' })
    await provider.login({ email: address, password: 'correct horse' })
    const hooks = mount(provider)
    const wrong = await act(() => hooks.update.mutateAsync({ currentPassword: 'nope nope', password: 'battery staple' }))
    expect(wrong).toMatchObject({ success: false, error: { status: 401 } })
    await expect(act(() => hooks.update.mutateAsync({ currentPassword: 'correct horse', password: 'battery staple' }))).resolves.toEqual({ success: true })
    await provider.logout({})
    await expect(provider.login({ email: address, password: 'battery staple' })).resolves.toMatchObject({ success: true })
  })
})

// ── providerName: "Sign in with …" through a real OpenID provider ──
// oidc-provider runs in a child process (this DOM environment's fetch is happy-dom's, and so is the
// one the app uses); the child also walks the provider's pages as the user's browser would. The
// page's origin is the client's registered one, so the provider answers its CORS requests.
const providerScript = `
import { createInterface } from 'node:readline'
const { startOidcProvider, walkProviderPages, APP } = await import(process.env.TESSERA_OIDC_KIT)
const op = await startOidcProvider()
console.log(JSON.stringify({ issuer: op.issuer }))
createInterface({ input: process.stdin }).on('line', async (line) => {
  console.log(JSON.stringify({ callback: await walkProviderPages(JSON.parse(line).walk, APP) }))
})
process.stdin.on('end', async () => { await op.close(); process.exit(0) })
`

describe('refine providerName through a real OpenID provider (issue 15)', () => {
  let child: ChildProcess
  let issuer = ''
  const answers: ((callback: string) => void)[] = []
  const engines: Auth[] = []

  beforeAll(async () => {
    child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', providerScript], {
      env: { ...process.env, TESSERA_OIDC_KIT: resolve(__dirname, 'oidc-kit.ts') },
      stdio: ['pipe', 'pipe', 'inherit'],
    })
    issuer = await new Promise<string>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`the OpenID provider exited with ${code}`)))
      createInterface({ input: child.stdout! }).on('line', (line) => {
        if (!line.startsWith('{')) return // the provider's own warnings
        const m = JSON.parse(line) as { issuer?: string; callback?: string }
        if (m.issuer) resolve(m.issuer)
        if (m.callback) answers.shift()!(m.callback)
      })
    })
  })
  afterEach(() => engines.splice(0).forEach((a) => a.dispose()))
  afterAll(async () => {
    if (!child || child.exitCode !== null) return
    const exited = new Promise((r) => child.once('exit', r))
    child.stdin!.end()
    await exited
  })
  const walk = (authorizationUrl: string) => new Promise<string>((resolve) => (answers.push(resolve), child.stdin!.write(JSON.stringify({ walk: authorizationUrl }) + '\n')))

  /** One page load of the app: `withProviders` with one provider, `social`, and refine over it. */
  function page(tab: { session: FakeStorage; tx: FakeStorage; provider: FakeStorage }, url = `${location.origin}/`) {
    const navigations: string[] = []
    // The user is the ID token's claims: oauth4webapi's userinfo request checks `instanceof URL`,
    // which happy-dom's URL (a subclass) fails here; browsers and the Node tests use userinfo.
    const noUserinfo: typeof fetch = async (input, init) => {
      const res = await fetch(input, init)
      if (!String(input).endsWith('/.well-known/openid-configuration')) return res
      const { userinfo_endpoint: _, ...metadata } = await res.json()
      return Response.json(metadata)
    }
    const social = oidcAuthority({
      issuer,
      fetch: noUserinfo,
      clientId: 'web',
      redirectUri: `${location.origin}/callback`,
      postLogoutRedirectUri: `${location.origin}/`,
      storage: tab.tx,
      navigate: (u) => void navigations.push(u),
      currentUrl: () => url,
      replaceUrl: (u) => void (url = u),
      allowInsecureRequests: true,
    })
    const authority = withProviders<OidcUser, never>(null, { social }, { storage: tab.provider })
    const key = `refine-oidc-${engines.length}-${Date.now()}`
    const auth = createAuth({ authority, storage: tab.session, key })
    engines.push(auth as Auth)
    const refreshToken = () => JSON.parse(tab.session.map.get(key) ?? 'null')?.tokens.refreshToken as string | undefined
    return { auth, authority, navigations, refreshToken, provider: createRefineAuthProvider(auth) }
  }

  it('useLogin({ providerName }) leaves for that provider; back on the callback, refine is signed in with its user; useLogout revokes there', async () => {
    const tab = { session: new FakeStorage(), tx: new FakeStorage(), provider: new FakeStorage() }
    const first = page(tab)
    let hooks = mount(first.provider)
    act(() => hooks.login.mutate({ providerName: 'social', redirectPath: '/after' }))
    await waitFor(() => expect(first.navigations).toHaveLength(1))
    const authorization = new URL(first.navigations[0]!)
    expect(authorization.origin + authorization.pathname).toBe(`${issuer}/auth`)
    expect(authorization.searchParams.get('code_challenge_method')).toBe('S256')
    expect(hooks.login.isPending).toBe(true) // the page is leaving: no success, no error, no flash
    const callback = await walk(authorization.href)
    cleanup()

    const back = page(tab, callback)
    hooks = mount(back.provider)
    await waitFor(() => expect(hooks.check.data).toEqual({ authenticated: true }), { timeout: 20_000 })
    await waitFor(() => expect(hooks.identity.data).toMatchObject({ sub: 'ada', iss: issuer, aud: 'web' }), { timeout: 20_000 })
    const refreshToken = back.refreshToken()!
    expect(refreshToken).toMatch(/^social~/)
    await expect(act(() => hooks.logout.mutateAsync())).resolves.toEqual({ success: true, redirectTo: '/login' })
    expect(back.auth.getSnapshot().status).toBe('unauthenticated')
    expect(new URL(back.navigations.at(-1)!).pathname).toBe('/session/end')
    const revoked = await back.authority.refresh(refreshToken, new AbortController().signal).catch((e: TesseraError) => e)
    expect(revoked).toMatchObject({ code: 'INVALID_GRANT' })
  })

  it('a providerName nobody registered is { success: false } with LOGIN_FAILED, and nothing leaves the page', async () => {
    const p = page({ session: new FakeStorage(), tx: new FakeStorage(), provider: new FakeStorage() })
    await expect(p.provider.login({ providerName: 'github' })).resolves.toMatchObject({ success: false, error: { code: 'LOGIN_FAILED', field: 'provider' } })
    expect(p.navigations).toEqual([])
  })
})
