import { describe, expect, it } from 'vitest'
import { toMermaid, transition, transitions, type AuthEvent, type AuthStatus, type SessionState } from '../src/index.js'

const tokens = { accessToken: 'a', expiresAt: 1, receivedAt: 0 }
const state = (status: AuthStatus, extra: Partial<SessionState> = {}): SessionState => ({
  status,
  refreshing: false,
  tokens: status === 'authenticated' ? tokens : null,
  generation: 1,
  user: null,
  error: null,
  ...extra,
})
const events: AuthEvent[] = [
  { type: 'restore.succeeded', tokens, user: null },
  { type: 'restore.failed', error: null },
  { type: 'login.started' },
  { type: 'login.succeeded', tokens },
  { type: 'login.failed', error: {} as never },
  { type: 'refresh.started' },
  { type: 'refresh.succeeded', tokens },
  { type: 'refresh.failed', error: {} as never },
  { type: 'refresh.rejected', error: {} as never },
  { type: 'session.adopted', tokens, user: null },
  { type: 'user.loaded', user: { id: 1 } },
  { type: 'logout' },
]

describe('the transition table', () => {
  it('every (status, event) pair either follows the table or changes nothing (P15)', () => {
    for (const status of Object.keys(transitions) as AuthStatus[])
      for (const event of events) {
        const before = state(status)
        const [next, notices] = transition(before, event)
        const target = transitions[status][event.type]
        if (!target) {
          expect(next, `${status} + ${event.type}`).toBe(before)
          expect(notices).toEqual([])
        } else expect(next.status, `${status} + ${event.type}`).toBe(target)
      }
  })

  it('a session that ends drops tokens, user and refreshing', () => {
    for (const e of [{ type: 'logout' }, { type: 'refresh.rejected', error: {} }, { type: 'login.started' }] as AuthEvent[]) {
      const [next] = transition(state('authenticated', { user: { id: 1 }, refreshing: true }), e)
      expect(next).toMatchObject({ tokens: null, user: null, refreshing: false })
    }
  })

  it('a new token bumps the generation; refresh.started twice is one change', () => {
    const [a] = transition(state('authenticated'), { type: 'refresh.succeeded', tokens })
    expect(a.generation).toBe(2)
    const [b] = transition(state('authenticated'), { type: 'refresh.started' })
    expect(transition(b, { type: 'refresh.started' })[0]).toBe(b)
  })

  it('logout announces itself only when there was something to end', () => {
    expect(transition(state('authenticated'), { type: 'logout' })[1]).toEqual(['logout'])
    expect(transition(state('initializing'), { type: 'logout' })[1]).toEqual([])
    expect(transition(state('unauthenticated'), { type: 'logout' })[0].status).toBe('unauthenticated')
  })

  it('toMermaid lists every transition of the table', () => {
    const text = toMermaid()
    const rows = Object.values(transitions).reduce((n, row) => n + Object.keys(row).length, 0)
    expect(text.split('\n').filter((l) => l.includes('-->')).length).toBe(rows + 1)
    expect(text).toContain('authenticated --> expired: refresh.rejected')
  })
})
