import {
  computed,
  defineComponent,
  getCurrentInstance,
  getCurrentScope,
  hasInjectionContext,
  inject,
  onMounted,
  onScopeDispose,
  shallowRef,
  ssrContextKey,
  toValue,
  watch,
  type InjectionKey,
  type MaybeRefOrGetter,
  type DefineSetupFnComponent,
  type Plugin,
  type Ref,
  type SlotsType,
  type VNode,
} from 'vue'
import type { ActionName, ActionState, Auth, AuthSnapshot, AuthStatus } from '../index.js'
import { serverSnapshot } from './server-snapshot.js'

/**
 * The key the engine is provided under: `provide(authKey, auth)` in a component gives its subtree
 * another session than the app's.
 * @example `provide(authKey, adminAuth)`
 */
export const authKey: InjectionKey<Auth<unknown, unknown>> = Symbol('tessera')

/**
 * A Vue plugin that provides the engine to every component of the app, as `app.use(createPinia())`
 * does for stores. The composables below also accept the engine directly instead.
 *
 * @example
 * ```ts
 * const auth = createAuth({ authority: httpAuthority({ baseUrl: '/auth' }) })
 * createApp(App).use(tesseraPlugin(auth)).mount('#app')
 * ```
 */
export function tesseraPlugin<User, Credentials>(auth: Auth<User, Credentials>): Plugin {
  return { install: (app) => void app.provide(authKey, auth as Auth<unknown, unknown>) }
}

function useEngine<User, Credentials>(auth?: Auth<User, Credentials>): Auth<User, Credentials> {
  const engine = auth ?? ((hasInjectionContext() && inject(authKey, null)) as Auth<User, Credentials> | null)
  if (!engine) throw new TypeError('Tessera: pass `auth` or install it with app.use(tesseraPlugin(auth))')
  return engine
}

// One ref per caller, replaced on every engine change. On the server nothing subscribes (no scope
// there is ever disposed); while hydrating (the component's vnode already holds the server's DOM
// node), the server's snapshot holds until mount so the markup matches, as React's
// `getServerSnapshot` does.
function useSnapshot<User>(engine: Auth<User, never>): Readonly<Ref<AuthSnapshot<User>>> {
  if (hasInjectionContext() && inject(ssrContextKey, null)) return shallowRef(serverSnapshot(engine.getSnapshot()))
  if (!getCurrentScope()) throw new TypeError('Tessera: call the composables inside setup() or an effectScope')
  let hydrating = !!getCurrentInstance()?.vnode.el
  const snap = shallowRef(hydrating ? serverSnapshot(engine.getSnapshot()) : engine.getSnapshot())
  const update = () => {
    if (!hydrating) snap.value = engine.getSnapshot()
  }
  onScopeDispose(engine.subscribe(update))
  if (hydrating)
    onMounted(() => {
      hydrating = false
      update()
    })
  return snap
}

/**
 * A read-only ref per field of `T`, as {@link useAuth} returns the snapshot.
 * @example `const { user }: Refs<AuthSnapshot<User>> = useAuth<User>()`
 */
export type Refs<T> = { readonly [K in keyof T]: Readonly<Ref<T[K]>> }

// A computed ref per field of `source`, each triggering only when its own value changes.
function refsOf<T extends object>(source: Readonly<Ref<T>>): Refs<T> {
  return Object.fromEntries(Object.keys(source.value).map((k) => [k, computed(() => source.value[k as keyof T])])) as unknown as Refs<T>
}

/**
 * Reads part of the session as a read-only ref that changes only when that part changes (by
 * `isEqual`, `Object.is` by default), so a component reading it re-renders only then. The selector
 * may read reactive state (props, refs) too. On the server, and while hydrating, the session reads
 * as `initializing`.
 *
 * @throws TypeError outside `setup()` or an `effectScope` (nothing would ever unsubscribe), or with
 * no engine passed or provided.
 * @remarks An equal selection keeps the previous value, so a selector that builds objects is fine
 * with a shallow `isEqual`.
 * @example
 * ```ts
 * const name = useSession((s) => s.user?.name ?? null)
 * ```
 */
export function useSession<T, User = unknown>(
  selector: (snapshot: AuthSnapshot<User>) => T,
  isEqual: (a: T, b: T) => boolean = Object.is,
  auth?: Auth<User, never>,
): Readonly<Ref<T>> {
  const snap = useSnapshot(useEngine(auth))
  return computed((previous?: T) => {
    const next = selector(snap.value)
    return previous !== undefined && isEqual(previous, next) ? previous : next
  })
}

/**
 * What {@link useAuth} returns: a read-only ref per snapshot field (destructure freely), plus the
 * engine's verbs.
 * @example `const { isAuthenticated, user, login }: UseAuthResult<User, Credentials> = useAuth()`
 */
export type UseAuthResult<User = unknown, Credentials = unknown> = Refs<AuthSnapshot<User>> &
  Pick<Auth<User, Credentials>, 'login' | 'logout' | 'refresh' | 'getAccessToken' | 'resetAction'> & {
    /** The engine itself. */
    auth: Auth<User, Credentials>
  }

/**
 * The whole session and its verbs. Each field is its own ref, so a template reading `user` updates
 * only when the user changes.
 *
 * @throws TypeError as {@link useSession} does.
 * @example
 * ```vue
 * <script setup lang="ts">
 * const { isAuthenticated, user, logout } = useAuth<User>()
 * </script>
 * <template><button v-if="isAuthenticated" @click="logout()">Sign out {{ user?.name }}</button></template>
 * ```
 */
export function useAuth<User = unknown, Credentials = unknown>(auth?: Auth<User, Credentials>): UseAuthResult<User, Credentials> {
  const engine = useEngine(auth)
  const { login, logout, refresh, getAccessToken, resetAction } = engine
  return { ...refsOf(useSnapshot(engine)), login, logout, refresh, getAccessToken, resetAction, auth: engine }
}

/**
 * What {@link useAuthAction} returns: refs of the action's `status`, `error` and `isPending`, and `reset`.
 * @example `const { isPending, error, reset }: UseAuthActionResult = useAuthAction('logout')`
 */
export interface UseAuthActionResult {
  readonly status: Readonly<Ref<ActionState['status']>>
  readonly error: Readonly<Ref<ActionState['error']>>
  readonly isPending: Readonly<Ref<boolean>>
  /** Sets the action back to `idle` (e.g. when a form is reopened). */
  reset(): void
}

/**
 * Progress of one action of `snapshot.actions` (`login`, `logout`, `refresh`, …) for forms and
 * buttons; `name` may be a ref or getter.
 *
 * @throws TypeError as {@link useSession} does.
 * @example
 * ```vue
 * <script setup lang="ts">
 * const { isPending, error } = useAuthAction('login')
 * </script>
 * <template><button :disabled="isPending">{{ error ? error.message : 'Sign in' }}</button></template>
 * ```
 */
export function useAuthAction(name: MaybeRefOrGetter<ActionName>, auth?: Auth<unknown, never>): UseAuthActionResult {
  const engine = useEngine(auth)
  const state = useSession((s) => s.actions[toValue(name)], undefined, engine)
  const { status, error } = refsOf(state)
  return { status, error, isPending: computed(() => status.value === 'pending'), reset: () => engine.resetAction(toValue(name)) }
}

/**
 * Props of {@link Authenticated}.
 * @example `<Authenticated redirect-to="/login" @unauthenticated="(to) => router.replace(to)">…</Authenticated>`
 */
export interface AuthenticatedProps {
  /** Where to send the visitor when there is no session (with `onUnauthenticated`, or `location.replace`). */
  redirectTo?: string
  /** Called when there is no session (`@unauthenticated` in a template), e.g. to navigate with your router. */
  onUnauthenticated?: (redirectTo: string | undefined, status: AuthStatus) => void
  /** The engine, instead of the one the plugin provides. */
  auth?: Auth<unknown, never>
}

/**
 * Slots of {@link Authenticated}: `default` (the protected content, only while `authenticated`),
 * `fallback` (no session — `unauthenticated`, `expired` — and while a login runs), `loading`
 * (while the session is restored, and on the server).
 * @example `<template #fallback><LoginForm /></template>`
 */
export type AuthenticatedSlots = SlotsType<{ default?: () => VNode[]; fallback?: () => VNode[]; loading?: () => VNode[] }>

/**
 * Renders its default slot only for an authenticated session: nothing protected is rendered while
 * the session is restored (slot `loading`), on the server, or while a login runs (slot `fallback`,
 * so a login form inside it stays mounted and shows its progress).
 *
 * @remarks Right after a login the status is `authenticated` while the profile may still be
 * loading (`user === null`); components that need the user should select it.
 * @example
 * ```vue
 * <Authenticated @unauthenticated="() => router.replace('/login')">
 *   <template #loading><Spinner /></template>
 *   <template #fallback><LoginForm /></template>
 *   <Dashboard />
 * </Authenticated>
 * ```
 */
export const Authenticated: DefineSetupFnComponent<AuthenticatedProps, {}, AuthenticatedSlots> = defineComponent(
  (props: AuthenticatedProps, { slots }) => {
    const status = useSession((s) => s.status, undefined, props.auth)
    const told = (s: AuthStatus) => {
      if (s !== 'unauthenticated' && s !== 'expired') return
      if (props.onUnauthenticated) props.onUnauthenticated(props.redirectTo, s)
      else if (props.redirectTo) location.replace(props.redirectTo)
    }
    // Once mounted, as React's effect: the page shows the fallback, and the server never gets here.
    onMounted(() => watch(status, told, { immediate: true }))
    return () => (status.value === 'authenticated' ? slots.default : status.value === 'initializing' ? slots.loading : slots.fallback)?.()
  },
  { name: 'Authenticated', props: ['redirectTo', 'onUnauthenticated', 'auth'], slots: Object as AuthenticatedSlots },
)
