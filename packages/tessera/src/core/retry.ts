import { fail, isTesseraError, type TesseraError } from './errors.js'
import type { Clock } from '../ports/clock.js'

/** How refreshes are retried. Every field has a default; pass only what you change. */
export interface RetryPolicy {
  /** Attempts per refresh, the first included. @defaultValue 4 */
  attempts: number
  /** Time allowed for one attempt before it is aborted, in ms. @defaultValue 10 000 */
  timeout: number
  /** First backoff delay, doubled each attempt, with full jitter down to half, in ms. @defaultValue 500 */
  baseDelay: number
  /** Largest backoff delay, in ms. @defaultValue 30 000 */
  maxDelay: number
  /** After a failed refresh, automatic refreshes pause this long, in ms (P12). @defaultValue 30 000 */
  cooldown: number
}

/** @internal */
export const defaultRetry: RetryPolicy = { attempts: 4, timeout: 10_000, baseDelay: 500, maxDelay: 30_000, cooldown: 30_000 }

/**
 * The decision ladder (P11): a definite rejection ends the session, a transient failure is
 * retried, anything else (a bug, a malformed response) is reported without retrying.
 */
export function classify(error: unknown): 'rejected' | 'transient' | 'fatal' {
  if (isTesseraError(error))
    return error.code === 'INVALID_GRANT' || error.code === 'SESSION_EXPIRED'
      ? 'rejected'
      : error.code === 'NETWORK_ERROR' || error.code === 'TIMEOUT'
        ? 'transient'
        : 'fatal'
  const name = (error as Error | null)?.name
  // fetch rejects with a TypeError when the network fails, and AbortError/TimeoutError on abort.
  return name === 'TypeError' || name === 'AbortError' || name === 'TimeoutError' ? 'transient' : 'fatal'
}

/** Turns any thrown value into a {@link TesseraError}, using `code` for what is not recognisable. */
export function toTesseraError(error: unknown, code: TesseraError['code']): TesseraError {
  if (isTesseraError(error)) return error
  const name = (error as Error | null)?.name
  if (name === 'AbortError' || name === 'TimeoutError') return fail('TIMEOUT', 'The request timed out', { cause: error })
  if (name === 'TypeError') return fail('NETWORK_ERROR', 'The server could not be reached', { cause: error })
  return fail(code, String((error as Error | null)?.message ?? error), { cause: error })
}

/** Resolves `promise`, or rejects with the signal's reason as soon as `signal` aborts. */
export function abortable<T>(promise: Promise<T>, signal?: AbortSignal | null): Promise<T> {
  if (!signal) return promise
  return new Promise<T>((resolve, reject) => {
    const abort = () => reject(signal.reason)
    if (signal.aborted) return abort()
    signal.addEventListener('abort', abort, { once: true })
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', abort))
  })
}

/**
 * Runs `task` with a timeout per attempt and exponential backoff with jitter between transient
 * failures. Stops at once when `signal` aborts. Rejects with a {@link TesseraError}.
 */
export async function retry<T>(
  task: (signal: AbortSignal) => Promise<T>,
  policy: RetryPolicy,
  clock: Clock,
  signal: AbortSignal,
  random: () => number,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const ctrl = new AbortController()
    const stop = () => ctrl.abort(signal.reason)
    signal.addEventListener('abort', stop)
    const timer = clock.setTimeout(() => ctrl.abort(fail('TIMEOUT', `Refresh attempt took over ${policy.timeout} ms`)), policy.timeout)
    let error: TesseraError
    try {
      // Raced against the signal: an authority that ignores its signal still cannot hang us (I2).
      return await abortable(task(ctrl.signal), ctrl.signal)
    } catch (e) {
      error = toTesseraError(e, 'NETWORK_ERROR')
      // A server asking for a longer wait than we would ever back off ends the cycle; the
      // cooldown then honours its wait (I2: nobody waits on a retry for an hour).
      if (signal.aborted || attempt >= policy.attempts || classify(e) !== 'transient' || (error.retryAfter ?? 0) > policy.maxDelay) throw error
    } finally {
      clock.clearTimeout(timer)
      signal.removeEventListener('abort', stop)
    }
    const backoff = Math.min(policy.maxDelay, policy.baseDelay * 2 ** (attempt - 1)) * (0.5 + random() / 2)
    let wake: unknown
    await abortable(new Promise<void>((r) => (wake = clock.setTimeout(r, Math.max(backoff, error.retryAfter ?? 0)))), signal).finally(
      () => clock.clearTimeout(wake),
    )
  }
}
