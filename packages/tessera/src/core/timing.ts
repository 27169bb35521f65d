import type { Clock } from '../ports/clock.js'
import type { TokenSet } from './tokens.js'

/**
 * When a token is due, on the local clock from the moment its response arrived (P13), and how early
 * to refresh it: the leeway (at most a quarter of the token's life), or twice the slowest of the
 * last eight refreshes (at most half its life), so that a slow token server or a busy machine still
 * sees the new token before the old one expires.
 * @internal
 */
export function createTiming(clock: Clock, leeway: number, longest: number) {
  const durations: number[] = []
  function lead(t: TokenSet) {
    const life = t.expiresAt! - t.receivedAt
    return Math.min(life / 2, Math.max(Math.min(leeway, life / 4), 2 * Math.max(0, ...durations)))
  }
  /** Milliseconds `t` has left, or before it is due with `early`. */
  const left = (t: TokenSet, early?: 1) => (t.expiresAt === null ? Infinity : t.expiresAt - clock.now() - (early ? lead(t) : 0))
  return {
    left,
    /** Inside its lead (or past expiry): refresh it. */
    expiring: (t: TokenSet) => left(t, 1) <= 0,
    valid: (t: TokenSet) => left(t) > 0,
    /** Milliseconds until a second after `t` arrived: a server handing out dead tokens gets one refresh a second, not a loop. */
    settling: (t: TokenSet) => Math.min(1_000, Math.max(0, t.receivedAt + 1_000 - clock.now())),
    /** A refresh (here or in another tab) took `ms`. */
    sample: (ms: number) => void (ms > 0 && durations.push(Math.min(ms, longest)) > 8 && durations.shift()),
  }
}
