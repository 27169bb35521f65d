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
 * The decision ladder (P11), on errors already made typed by {@link toTesseraError}: a definite
 * rejection ends the session; a network failure or a timeout is retried; anything else (a bug, a
 * malformed response) is reported without retrying.
 */
export const isRejection = (e: unknown): boolean => isTesseraError(e, 'INVALID_GRANT') || isTesseraError(e, 'SESSION_EXPIRED')
const isTransient = (e: TesseraError) => e.code === 'NETWORK_ERROR' || e.code === 'TIMEOUT'

/** Turns any thrown value into a {@link TesseraError}, using `code` for what is not recognisable. */
export function toTesseraError(error: unknown, code: TesseraError['code']): TesseraError {
  if (isTesseraError(error)) return error
  const name = (error as Error | null)?.name
  // fetch rejects with a TypeError when the network fails, and AbortError/TimeoutError on abort.
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

/** Waits `ms` on `clock`; rejects with the signal's reason if `signal` aborts first. */
export function sleep(ms: number, clock: Clock, signal?: AbortSignal): Promise<void> {
  let timer: unknown
  return abortable(new Promise<void>((r) => (timer = clock.setTimeout(r, ms))), signal).finally(() => clock.clearTimeout(timer))
}

/**
 * Calls `call` with a signal that aborts after `ms` (with a `TIMEOUT` error) or when `outer`
 * aborts, and races the call against that signal: nothing it does may keep a caller waiting for
 * ever, even if it ignores its signal (I2).
 */
export async function timed<T>(call: (signal: AbortSignal) => Promise<T>, ms: number, clock: Clock, outer?: AbortSignal): Promise<T> {
  const ctrl = new AbortController()
  const stop = () => ctrl.abort(outer!.reason)
  outer?.addEventListener('abort', stop)
  const timer = clock.setTimeout(() => ctrl.abort(fail('TIMEOUT', `No answer within ${ms} ms`)), ms)
  try {
    return await abortable(call(ctrl.signal), ctrl.signal)
  } finally {
    clock.clearTimeout(timer)
    outer?.removeEventListener('abort', stop)
  }
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
  for (let attempt = 0; ; ) {
    try {
      return await timed(task, policy.timeout, clock, signal)
    } catch (e) {
      const error = toTesseraError(e, 'NETWORK_ERROR')
      const wait = error.retryAfter ?? 0
      // A server asking for a longer wait than we would ever back off ends the cycle; the
      // cooldown then honours its wait (I2: nobody waits on a retry for an hour).
      if (signal.aborted || ++attempt >= policy.attempts || !isTransient(error) || wait > policy.maxDelay) throw error
      const backoff = Math.min(policy.maxDelay, policy.baseDelay * 2 ** (attempt - 1)) * (0.5 + random() / 2)
      await sleep(Math.max(backoff, wait), clock, signal)
    }
  }
}

/** A promise with its settle functions and an abort controller for the work behind it. @internal */
export interface Deferred<T> {
  ctrl: AbortController
  shared?: Promise<void>
  promise: Promise<T>
  resolve(value: T): void
  reject(error: unknown): void
}
/** @internal */
export function deferred<T>(): Deferred<T> {
  const d = { ctrl: new AbortController() } as Deferred<T>
  d.promise = new Promise<T>((res, rej) => ((d.resolve = res), (d.reject = rej)))
  d.promise.catch(() => {}) // a refresh nobody awaits must not be an unhandled rejection
  return d
}
