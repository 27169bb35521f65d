import type { ActionName, ActionState, Auth, AuthSnapshot } from '../index.js'

/**
 * A store as Svelte reads it (`$store`, `derived`, `get`, Svelte 5's `fromStore`): the contract of
 * `svelte/store`'s `Readable`, without importing Svelte, so one build serves Svelte 4 and 5.
 * @example `const status: Readable<AuthStatus> = sessionStore(auth, (s) => s.status)`
 */
export interface Readable<T> {
  /**
   * Calls `run` at once, synchronously, with the current value, then after each change; returns
   * the function that stops it.
   */
  subscribe(run: (value: T) => void, invalidate?: () => void): () => void
}

/**
 * The session as a Svelte store: the whole snapshot, or the part `selector` picks. A subscriber is
 * told only when its value changes (by `isEqual`, `Object.is` by default), so `$name` in a template
 * updates only when the name does.
 *
 * @remarks Nothing listens to the engine until the first subscriber, and each unsubscribe removes its
 * listener. On a server the store shows the snapshot of the engine it is given: tokens live in the
 * browser, so render protected parts only there (a server engine is `initializing`, then
 * `unauthenticated`).
 * @example
 * ```svelte
 * <script>
 *   import { sessionStore } from 'tessera/svelte'
 *   import { auth } from './auth'
 *   const session = sessionStore(auth)
 *   const name = sessionStore(auth, (s) => s.user?.name ?? null)
 * </script>
 * {#if $session.isAuthenticated}<p>Hello {$name}</p>{/if}
 * ```
 */
export function sessionStore<User>(auth: Auth<User, never>): Readable<AuthSnapshot<User>>
/**
 * The part of the session `selector` picks, as a store told only when it changes (by `isEqual`).
 * @example `const name = sessionStore(auth, (s) => s.user?.name ?? null)`
 */
export function sessionStore<T, User = unknown>(
  auth: Auth<User, never>,
  selector: (snapshot: AuthSnapshot<User>) => T,
  isEqual?: (a: T, b: T) => boolean,
): Readable<T>
export function sessionStore<T, User>(
  auth: Auth<User, never>,
  selector: (snapshot: AuthSnapshot<User>) => T = (s) => s as T,
  isEqual: (a: T, b: T) => boolean = Object.is,
): Readable<T> {
  return {
    subscribe(run) {
      let value = selector(auth.getSnapshot())
      // Listen first: a subscriber that calls a verb from `run` still hears what the verb changes (P16).
      const stop = auth.subscribe(() => {
        const next = selector(auth.getSnapshot())
        if (!isEqual(value, next)) run((value = next))
      })
      run(value)
      return stop
    },
  }
}

/**
 * What an {@link actionStore} holds: the action's `status` and `error`, and `isPending`.
 * @example `{#if $login.isPending}Signing in…{/if}`
 */
export interface ActionStatus extends ActionState {
  readonly isPending: boolean
}

/**
 * Progress of one action of `snapshot.actions` (`login`, `logout`, `refresh`, …) as a store for
 * forms and buttons; it changes only when that action does. `reset()` sets the action back to `idle`.
 *
 * @example
 * ```svelte
 * <script>
 *   const login = actionStore(auth, 'login')
 * </script>
 * <button disabled={$login.isPending}>Sign in</button>
 * {#if $login.error}<p role="alert" on:click={login.reset}>{$login.error.message}</p>{/if}
 * ```
 */
export function actionStore(auth: Auth<unknown, never>, name: ActionName): Readable<ActionStatus> & { reset(): void } {
  let seen: ActionState | undefined
  let value: ActionStatus
  // The engine replaces an action's state only when it changes: one value per state.
  const select = (s: AuthSnapshot) => {
    const state = s.actions[name]
    if (state !== seen) {
      seen = state
      value = { ...state, isPending: state.status === 'pending' }
    }
    return value
  }
  return { subscribe: sessionStore(auth, select).subscribe, reset: () => auth.resetAction(name) }
}
