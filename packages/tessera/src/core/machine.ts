import type { TesseraError } from './errors.js'
import type { TokenSet } from './tokens.js'

/**
 * Where a session is.
 *
 * | status | meaning |
 * |---|---|
 * | `initializing` | restoring from storage (or another tab, or an OIDC callback); requests wait |
 * | `unauthenticated` | no session; `error` says why, if there was a reason |
 * | `authenticating` | a login is in flight |
 * | `authenticated` | a session with an access token; a refresh may run (`refreshing`) |
 * | `expired` | the refresh token was definitely rejected; the session is over until the next login |
 */
export type AuthStatus = 'initializing' | 'unauthenticated' | 'authenticating' | 'authenticated' | 'expired'

/** Everything that can happen to a session, as the engine tells the state machine. */
export type AuthEvent<User = unknown> =
  | { type: 'restore.succeeded'; tokens: TokenSet; user: User | null }
  | { type: 'restore.failed'; error: TesseraError | null }
  | { type: 'login.started' }
  | { type: 'login.succeeded'; tokens: TokenSet }
  | { type: 'login.failed'; error: TesseraError }
  | { type: 'refresh.started' }
  | { type: 'refresh.succeeded'; tokens: TokenSet }
  | { type: 'refresh.failed'; error: TesseraError }
  | { type: 'refresh.rejected'; error: TesseraError }
  | { type: 'session.adopted'; tokens: TokenSet; user: User | null }
  | { type: 'user.loaded'; user: User | null }
  | { type: 'logout' }

/** The name of an {@link AuthEvent}. */
export type AuthEventType = AuthEvent['type']

/**
 * Every allowed transition, in one table: `transitions[status][event] = next status`. An event
 * missing from a status's row is ignored (no change, no notification: P15). The demo draws its
 * state diagram from this table.
 */
export const transitions: { readonly [S in AuthStatus]: Readonly<Partial<Record<AuthEventType, AuthStatus>>> } = {
  initializing: {
    'restore.succeeded': 'authenticated',
    'restore.failed': 'unauthenticated',
    'login.started': 'authenticating',
    'session.adopted': 'authenticated',
    logout: 'unauthenticated',
  },
  unauthenticated: {
    'login.started': 'authenticating',
    'session.adopted': 'authenticated',
  },
  authenticating: {
    'login.started': 'authenticating',
    'login.succeeded': 'authenticated',
    'login.failed': 'unauthenticated',
    'session.adopted': 'authenticated',
    logout: 'unauthenticated',
  },
  authenticated: {
    'login.started': 'authenticating',
    'refresh.started': 'authenticated',
    'refresh.succeeded': 'authenticated',
    'refresh.failed': 'authenticated',
    'refresh.rejected': 'expired',
    'session.adopted': 'authenticated',
    'user.loaded': 'authenticated',
    logout: 'unauthenticated',
  },
  expired: {
    'login.started': 'authenticating',
    'session.adopted': 'authenticated',
    logout: 'unauthenticated',
  },
}

/** The session as the state machine sees it. Tokens live here but never in the public snapshot. */
export interface SessionState<User = unknown> {
  status: AuthStatus
  /** A refresh is in flight (orthogonal to `status`). */
  refreshing: boolean
  tokens: TokenSet | null
  /** Increments every time the access token changes; requests are stamped with it (P2). */
  generation: number
  user: User | null
  /** Why the session is not authenticated, or the last refresh failure. */
  error: TesseraError | null
}

/** The public events a transition announces, in order. */
export type Notice = 'login' | 'logout' | 'refresh' | 'refresh-error' | 'expired' | 'user'

const NOTICES: Partial<Record<AuthEventType, Notice[]>> = {
  'login.succeeded': ['login'],
  'refresh.succeeded': ['refresh'],
  'refresh.failed': ['refresh-error'],
  'refresh.rejected': ['refresh-error', 'expired'],
  'user.loaded': ['user'],
  logout: ['logout'],
}
/** Events that end the session in hand: its tokens and user are dropped. */
const ENDS: AuthEventType[] = ['login.started', 'logout', 'refresh.rejected']

/**
 * The pure transition function: `(state, event) → [next, notices]`. Returns the same `state`
 * object when the event does not apply, so callers can skip notifying (P15).
 */
export function transition<User>(state: SessionState<User>, event: AuthEvent<User>): [SessionState<User>, Notice[]] {
  const { type } = event
  const status = transitions[state.status][type]
  const repeated = type === 'refresh.started' ? state.refreshing : type === 'user.loaded' && state.user === event.user
  if (!status || repeated) return [state, []]
  const next: SessionState<User> = { ...state, status, refreshing: type === 'refresh.started' || (state.refreshing && type === 'user.loaded') }
  if ('tokens' in event) Object.assign(next, { tokens: event.tokens, generation: state.generation + 1, error: null })
  if ('user' in event) next.user = event.user
  if ('error' in event) next.error = event.error
  if (ENDS.includes(type)) Object.assign(next, { tokens: null, user: null, error: 'error' in event ? event.error : null })
  // A logout during start-up ends nothing anybody saw: no `logout` notice.
  return [next, state.status === 'initializing' ? [] : (NOTICES[type] ?? [])]
}

/**
 * The transition table as Mermaid `stateDiagram-v2` text, for docs and the demo page.
 * @example `console.log(toMermaid())`
 */
export function toMermaid(): string {
  const lines = ['stateDiagram-v2', '  [*] --> initializing']
  for (const [from, row] of Object.entries(transitions))
    for (const [event, to] of Object.entries(row)) lines.push(`  ${from} --> ${to}: ${event}`)
  return lines.join('\n')
}
