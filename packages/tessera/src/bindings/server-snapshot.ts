import type { ActionState, AuthSnapshot } from '../index.js'

const IDLE: ActionState = Object.freeze({ status: 'idle', error: null })

/**
 * What a binding renders on the server, whatever the engine there knows: `initializing`, nothing
 * from any session, every action the engine tracks idle. A hydrating client renders it too until
 * mounted, so the markup matches, and only then shows the live session.
 * @internal
 */
export function serverSnapshot<User>(live: AuthSnapshot<User>): AuthSnapshot<User> {
  return Object.freeze({
    status: 'initializing',
    refreshing: false,
    user: null,
    error: null,
    expiresAt: null,
    generation: 0,
    actions: Object.fromEntries(Object.keys(live.actions).map((name) => [name, IDLE])) as AuthSnapshot['actions'],
    isAuthenticated: false,
    isExpiringSoon: false,
  })
}
