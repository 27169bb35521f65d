import type { AuthActionResponse, AuthProvider, CheckResponse, OnErrorResponse } from '@refinedev/core'
import { isTesseraError, type Auth, type AuthSnapshot } from '../index.js'

/**
 * The account verbs of an authority (an `httpAuthority` has them all). Each is optional: a verb
 * that is missing makes the matching refine action resolve `{ success: false }`.
 * @example `createRefineAuthProvider(auth, { account: httpAuthority({ baseUrl: '/auth' }) })`
 */
export interface AccountApi {
  register?(input: Record<string, unknown>): Promise<unknown>
  forgotPassword?(email: string): Promise<void>
  resetPassword?(token: string, password: string): Promise<void>
  changePassword?(accessToken: string, currentPassword: string, newPassword: string): Promise<void>
}

/**
 * Options of {@link createRefineAuthProvider}.
 * @example `{ account: authority, loginPath: '/sign-in', permissions: (user) => user?.scopes ?? [] }`
 */
export interface RefineAuthOptions<User> {
  /** Account verbs for `register`, `forgotPassword`, `updatePassword` (e.g. the `httpAuthority`). */
  account?: AccountApi
  /** The login page. @defaultValue `'/login'` */
  loginPath?: string
  /** Where to go after a login. @defaultValue `'/'` */
  homePath?: string
  /** Permissions of a user. @defaultValue `user.roles`, or `null` */
  permissions?: (user: User | null) => unknown
  /** Identity of a user, as `useGetIdentity` returns it. @defaultValue the user as is */
  identity?: (user: User | null) => unknown
}

const DECODE = 4

/**
 * Turns a redirect target into a same-origin path, or `fallback`. Rejects other origins
 * (`https://evil.com`, `//evil.com`, `\\evil.com`, `/\evil.com`), non-HTTP schemes
 * (`javascript:`), control characters, and their percent-encoded forms (`%2F%2Fevil.com`,
 * `/%5Cevil.com`, double-encoded too). An absolute URL on the page's own origin is reduced to its
 * path.
 *
 * @example
 * ```ts
 * safeRedirect('/orders?page=2', '/')      // '/orders?page=2'
 * safeRedirect('//evil.com/login', '/')    // '/'
 * safeRedirect('javascript:alert(1)', '/') // '/'
 * ```
 */
export function safeRedirect(path: unknown, fallback = '/'): string {
  if (typeof path !== 'string') return fallback
  let p = path
  const here = globalThis.location?.origin
  if (/^[a-z][\w+.-]*:/i.test(p) && here && here !== 'null') {
    try {
      const u = new URL(p)
      if (u.origin !== here) return fallback
      p = u.pathname + u.search + u.hash
    } catch {
      return fallback
    }
  }
  let d = p
  for (let i = 0; i <= DECODE; i++) {
    // One leading slash, not `//` or `/\` (another host), and no control characters anywhere.
    if (!/^\/(?![/\\])/.test(d) || /[\x00-\x1f\x7f]/.test(d)) return fallback
    let next: string
    try {
      next = decodeURIComponent(d)
    } catch {
      return fallback
    }
    if (next === d) break
    if (i === DECODE) return fallback
    d = next
  }
  try {
    // Return the path as a router will see it once dot segments are resolved (`/a/../..//evil.com`
    // becomes `//evil.com`), and check that form again.
    const base = 'http://x.invalid'
    const u = new URL(p, base)
    const out = u.pathname + u.search + u.hash
    if (new URL(d, base).origin !== base || u.origin !== base) return fallback
    // A resolved form that differs (`/../%5C/` is `/%5C/`, which decodes to `/\/`) is checked again
    // from the start, decoding included; URL parsing is idempotent, so this ends at the next call.
    return out === p ? (/^\/(?![/\\])/.test(out) ? out : fallback) : safeRedirect(out, fallback)
  } catch {
    return fallback
  }
}

/**
 * What refine passes besides the form's fields: where to go next (`redirectPath` as in
 * `useLogout`, or `redirectTo`), and the provider of a "Sign in with …" button (`providerName`).
 */
export interface RefineParams {
  redirectPath?: string
  redirectTo?: string
  providerName?: string
}

const statusOf = (e: unknown): number | undefined => {
  const x = e as { status?: unknown; statusCode?: unknown; response?: { status?: unknown } } | null
  const s = x?.status ?? x?.statusCode ?? x?.response?.status
  return typeof s === 'number' ? s : undefined
}
const over = (e: unknown) => isTesseraError(e) && (e.code === 'SESSION_EXPIRED' || e.code === 'UNAUTHENTICATED' || e.code === 'LOGGED_OUT')
const asError = (e: unknown): Error => (e instanceof Error ? e : new Error(String(e)))

/** Resolves once the session is neither being restored nor logging in (and, for `user`, its profile is not loading). */
function settled<User>(auth: Auth<User, never>, user?: 'user'): Promise<AuthSnapshot<User>> {
  return auth.ready().then(
    () =>
      new Promise((resolve) => {
        const check = () => {
          const s = auth.getSnapshot()
          if (s.status !== 'authenticating' && !(user && s.actions.user.status === 'pending')) (stop?.(), resolve(s))
        }
        const stop: (() => void) | undefined = auth.subscribe(check)
        check()
      }),
  )
}

/**
 * A refine `AuthProvider` over a Tessera engine, following refine's result semantics: every method
 * resolves (`{ success, redirectTo, error }`), and every `redirectTo` passes {@link safeRedirect}.
 *
 * @remarks `onError` (P19, refine #6997): a 401 asks the engine to refresh (single flight) and
 * logs out only when the session is really over (`SESSION_EXPIRED`, `UNAUTHENTICATED`); a network
 * failure is not a logout, nor is a 403. Concurrent calls share one decision, and a 401 while
 * there is already no session asks for nothing, so failing queries on the login page cannot loop.
 *
 * `updatePassword` resets with `token` (refine passes the reset link's query string along) or,
 * signed in, changes the password with `currentPassword` and the access token.
 *
 * Every method honours the page refine's hooks ask for (`redirectPath`, or `redirectTo`), through
 * {@link safeRedirect}; these fields never reach the server. `login({ providerName })` (the
 * buttons of refine's `<AuthPage providers>`) signs in through the OpenID provider registered
 * under that name with `withProviders` from `tessera/oidc`: the page leaves for it, and the
 * engine takes the callback when the browser comes back.
 * @example
 * ```tsx
 * const authority = httpAuthority({ baseUrl: '/auth' })
 * const auth = createAuth({ authority })
 * <Refine authProvider={createRefineAuthProvider(auth, { account: authority })} ... />
 * ```
 */
export function createRefineAuthProvider<User = unknown, Credentials = unknown>(
  auth: Auth<User, Credentials>,
  options: RefineAuthOptions<User> = {},
): AuthProvider {
  const { account = {}, loginPath = '/login', homePath = '/' } = options
  const login = safeRedirect(loginPath)
  const home = safeRedirect(homePath)
  let deciding: Promise<OnErrorResponse> | null = null
  // The session end (its error, or its snapshot) a logout was already asked for: once per end.
  let told: unknown

  const act = async (run: () => Promise<unknown> | undefined, redirectTo?: string): Promise<AuthActionResponse> => {
    try {
      const done = run()
      if (!done) return { success: false, error: new Error('Not supported by this authority') }
      await done
      return { success: true, redirectTo }
    } catch (e) {
      return { success: false, error: asError(e) }
    }
  }
  const endOnce = (s: AuthSnapshot<User>): OnErrorResponse => {
    const end = s.error ?? s
    if (end === told) return {}
    told = end
    return { logout: true, redirectTo: login }
  }

  /** Refine's own fields apart from the form's, and where to go: the page asked for if it is safe, else `fallback`. */
  const split = <T>(params: (T & RefineParams) | undefined, fallback: string) => {
    const { redirectPath, redirectTo, providerName, ...fields } = params ?? ({} as T & RefineParams)
    return { fields, providerName, to: safeRedirect(redirectPath ?? redirectTo, fallback) }
  }
  // A "Sign in with …" button: the engine's authority (see `withProviders`) leaves for that provider.
  const viaProvider = (name: string) => auth.login({ provider: name } as Credentials)

  return {
    login(params: Credentials & RefineParams) {
      const { fields, providerName, to } = split(params, home)
      return act(() => (providerName ? viaProvider(providerName) : auth.login(fields as Credentials)), to)
    },
    async logout(params?: RefineParams) {
      await auth.logout().catch(() => {}) // the local session is over either way
      return { success: true, redirectTo: split(params, login).to }
    },
    async check(): Promise<CheckResponse> {
      const s = await settled(auth)
      return s.isAuthenticated ? { authenticated: true } : { authenticated: false, logout: s.status === 'expired', redirectTo: login, error: s.error ?? undefined }
    },
    onError(error: unknown): Promise<OnErrorResponse> {
      const status = statusOf(error)
      if (status === 403) return Promise.resolve({ error: asError(error) })
      if (status !== 401 && !over(error)) return Promise.resolve({})
      // Joiners share the decision but not the logout: refine runs one logout per caller.
      if (deciding) return deciding.then(({ logout, redirectTo, ...rest }) => rest)
      const s = auth.getSnapshot()
      if (s.status === 'expired') return Promise.resolve(endOnce(s))
      if (s.status !== 'authenticated') return Promise.resolve({}) // nothing to end (P19)
      return (deciding = auth.refresh().then(
        () => ({}),
        (e: unknown) => (over(e) ? endOnce(auth.getSnapshot()) : { error: asError(e) }),
      )).finally(() => (deciding = null))
    },
    async getIdentity() {
      const { user } = await settled(auth, 'user')
      return options.identity ? options.identity(user) : user
    },
    async getPermissions() {
      const { user } = await settled(auth, 'user')
      return options.permissions ? options.permissions(user) : ((user as { roles?: unknown } | null)?.roles ?? null)
    },
    register(params: Record<string, unknown> & RefineParams) {
      // Signing up through a provider is signing in there: then home, like a login.
      const { fields, providerName, to } = split(params, params?.providerName ? home : login)
      return act(() => (providerName ? viaProvider(providerName) : account.register?.(fields)), to)
    },
    forgotPassword: (params: { email: string } & RefineParams) => act(() => account.forgotPassword?.(params.email), split(params, login).to),
    updatePassword(params: { password: string; confirmPassword?: string; token?: string; currentPassword?: string } & RefineParams) {
      if (params.confirmPassword !== undefined && params.confirmPassword !== params.password)
        return Promise.resolve({ success: false, error: new Error('The passwords do not match') })
      // A reset ends on the login page; a change while signed in stays, unless a page is asked for.
      const to = params.redirectPath ?? params.redirectTo ? split(params, home).to : undefined
      return params.token
        ? act(() => account.resetPassword?.(params.token!, params.password), to ?? login)
        : act(() => account.changePassword && auth.getAccessToken().then((t) => account.changePassword!(t, params.currentPassword ?? '', params.password)), to)
    },
  }
}
