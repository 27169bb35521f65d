import { toTesseraError } from './retry.js'
import type { ActionName, ActionState, AuthSnapshot } from './types.js'

const IDLE: ActionState = { status: 'idle', error: null }

/**
 * The progress of each verb for the snapshot (`actions.login.status === 'pending'` while a login
 * runs): the latest call of a verb owns its progress, an earlier one settling later changes nothing.
 * @internal
 */
export function createActions(changed: () => void) {
  let current: AuthSnapshot['actions'] = { login: IDLE, logout: IDLE, refresh: IDLE, user: IDLE }
  const latest: Partial<Record<ActionName, Promise<unknown>>> = {}
  function set(name: ActionName, s: ActionState, owner?: Promise<unknown>) {
    if (owner) latest[name] = owner
    else delete latest[name]
    current = { ...current, [name]: s }
    changed()
  }
  return {
    current: () => current,
    /** `promise` is the latest call of `name`: pending now, then fulfilled or rejected, unless a later call took over. */
    track(name: ActionName, promise: Promise<unknown>) {
      const mine = (s: ActionState) => latest[name] === promise && set(name, s, promise)
      set(name, { status: 'pending', error: null }, promise)
      promise.then(
        () => mine({ status: 'fulfilled', error: null }),
        (e) => mine({ status: 'rejected', error: toTesseraError(e, 'LOGIN_FAILED') }),
      )
    },
    /** `name` is done without a call of its own (a user handed over with a login), or back to idle. */
    settle: (name: ActionName, s: ActionState = IDLE) => set(name, s),
  }
}
