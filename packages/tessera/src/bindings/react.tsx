'use client'
import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useSyncExternalStore, type ReactNode } from 'react'
import type { ActionName, ActionState, Auth, AuthSnapshot, AuthStatus } from '../index.js'
import { serverSnapshot } from './server-snapshot.js'

// Internal: the engine the nearest <AuthProvider> hands down. No module-level session state.
const Ctx = createContext<Auth<unknown, unknown> | null>(null)

/**
 * Props of {@link AuthProvider}.
 * @example `<AuthProvider auth={auth}><App /></AuthProvider>`
 */
export interface AuthProviderProps<User = unknown, Credentials = unknown> {
  /** The engine from `createAuth`, created once (outside render). */
  auth: Auth<User, Credentials>
  children?: ReactNode
}

/**
 * Makes one session engine available to the hooks below it. Several providers (several sessions)
 * may coexist; every hook also accepts the engine directly instead.
 *
 * @example
 * ```tsx
 * const auth = createAuth({ authority: httpAuthority({ baseUrl: '/auth' }) })
 * createRoot(el).render(<AuthProvider auth={auth}><App /></AuthProvider>)
 * ```
 */
export function AuthProvider<User, Credentials>({ auth, children }: AuthProviderProps<User, Credentials>) {
  return <Ctx.Provider value={auth as Auth<unknown, unknown>}>{children}</Ctx.Provider>
}

function useEngine<User, Credentials>(auth?: Auth<User, Credentials>): Auth<User, Credentials> {
  const found = useContext(Ctx) as Auth<User, Credentials> | null
  const engine = auth ?? found
  if (!engine) throw new TypeError('Tessera: pass `auth` or render inside <AuthProvider auth={...}>')
  return engine
}

/**
 * Reads part of the session and re-renders only when that part changes (by `isEqual`,
 * `Object.is` by default). Built on `useSyncExternalStore`; the server snapshot is `initializing`.
 *
 * @remarks The selected value is memoised per snapshot, and an equal selection keeps the previous
 * value, so a selector that builds objects is fine with a shallow `isEqual`.
 * @example
 * ```tsx
 * const name = useSession((s) => s.user?.name ?? null)
 * ```
 */
export function useSession<T, User = unknown>(
  selector: (snapshot: AuthSnapshot<User>) => T,
  isEqual: (a: T, b: T) => boolean = Object.is,
  auth?: Auth<User, never>,
): T {
  const engine = useEngine(auth)
  const last = useRef<{ v: T } | null>(null)
  const [get, getServer] = useMemo(() => {
    const memo = (read: () => AuthSnapshot<User>) => {
      let seen: AuthSnapshot<User> | undefined
      let value: T
      return () => {
        const snap = read()
        if (snap === seen) return value
        seen = snap
        const next = selector(snap)
        return (value = last.current && isEqual(last.current.v, next) ? last.current.v : next)
      }
    }
    // What the server rendered, whatever the engine knows by hydration time: React renders this
    // first when hydrating and then switches to the live snapshot, so markup never mismatches.
    const server = serverSnapshot(engine.getSnapshot())
    return [memo(() => engine.getSnapshot()), memo(() => server)]
  }, [engine, selector, isEqual])
  const value = useSyncExternalStore(engine.subscribe, get, getServer)
  useEffect(() => {
    last.current = { v: value }
  }, [value])
  return value
}

/**
 * What {@link useAuth} returns: the snapshot's fields plus the engine's verbs.
 * @example `const { isAuthenticated, user, login }: UseAuthResult<User, Credentials> = useAuth()`
 */
export type UseAuthResult<User = unknown, Credentials = unknown> = AuthSnapshot<User> &
  Pick<Auth<User, Credentials>, 'login' | 'logout' | 'refresh' | 'getAccessToken' | 'resetAction'> & {
    /** The engine itself. */
    auth: Auth<User, Credentials>
  }

/**
 * The whole session and its verbs. Re-renders on every snapshot change; prefer
 * {@link useSession} with a selector in components that need one field.
 *
 * @example
 * ```tsx
 * const { status, user, logout } = useAuth<User>()
 * return status === 'authenticated' ? <button onClick={() => logout()}>Sign out {user?.name}</button> : null
 * ```
 */
export function useAuth<User = unknown, Credentials = unknown>(auth?: Auth<User, Credentials>): UseAuthResult<User, Credentials> {
  const engine = useEngine(auth)
  const s = useSession((x: AuthSnapshot<User>) => x, undefined, engine)
  return useMemo(
    () => ({
      ...s,
      isAuthenticated: s.isAuthenticated,
      isExpiringSoon: s.isExpiringSoon,
      login: engine.login,
      logout: engine.logout,
      refresh: engine.refresh,
      getAccessToken: engine.getAccessToken,
      resetAction: engine.resetAction,
      auth: engine,
    }),
    [s, engine],
  )
}

/**
 * What {@link useAuthAction} returns: the action's `status` and `error`, `isPending`, and `reset`.
 * @example `const { isPending, error, reset }: UseAuthActionResult = useAuthAction('logout')`
 */
export interface UseAuthActionResult extends ActionState {
  isPending: boolean
  /** Sets the action back to `idle` (e.g. when a form is reopened). */
  reset(): void
}

/**
 * Progress of one verb (`login`, `logout`, `refresh`) for forms and buttons: re-renders only when
 * that action's state changes.
 *
 * @example
 * ```tsx
 * const { isPending, error } = useAuthAction('login')
 * return <button disabled={isPending}>{error ? error.message : 'Sign in'}</button>
 * ```
 */
export function useAuthAction(name: ActionName, auth?: Auth<unknown, never>): UseAuthActionResult {
  const engine = useEngine(auth)
  const state = useSession(useCallback((s: AuthSnapshot) => s.actions[name], [name]), undefined, engine)
  const reset = useCallback(() => engine.resetAction(name), [engine, name])
  return { ...state, isPending: state.status === 'pending', reset }
}

/**
 * Props of {@link Authenticated}.
 * @example `<Authenticated redirectTo="/login" onUnauthenticated={(to) => navigate(to!)}>…</Authenticated>`
 */
export interface AuthenticatedProps {
  /** The protected content, rendered only while `authenticated`. */
  children?: ReactNode
  /** Shown when there is no session (`unauthenticated`, `expired`) and while a login runs. */
  fallback?: ReactNode
  /** Shown while the session is being restored (`initializing`), and on the server. */
  loading?: ReactNode
  /** Where to send the visitor when there is no session (with `onUnauthenticated`, or `location.replace`). */
  redirectTo?: string
  /** Called when there is no session, e.g. to navigate with your router. */
  onUnauthenticated?: (redirectTo: string | undefined, status: AuthStatus) => void
  /** The engine, instead of the nearest {@link AuthProvider}. */
  auth?: Auth<unknown, never>
}

/**
 * Renders its children only for an authenticated session: nothing protected is rendered while
 * the session is restored (`loading`), on the server, or while a login runs (`fallback`, so a
 * login form inside it stays mounted and shows its progress).
 *
 * @remarks Right after a login the status is `authenticated` while the profile may still be
 * loading (`user === null`); components that need the user should select it.
 *
 * @example
 * ```tsx
 * <Authenticated loading={<Spinner />} fallback={<LoginForm />}>
 *   <Dashboard />
 * </Authenticated>
 * ```
 */
export function Authenticated({ children, fallback = null, loading = null, redirectTo, onUnauthenticated, auth }: AuthenticatedProps) {
  const status = useSession((s) => s.status, undefined, auth)
  const out = status === 'unauthenticated' || status === 'expired'
  useEffect(() => {
    if (!out) return
    if (onUnauthenticated) onUnauthenticated(redirectTo, status)
    else if (redirectTo) location.replace(redirectTo)
  }, [out, status])
  return <>{status === 'authenticated' ? children : status === 'initializing' ? loading : fallback}</>
}
