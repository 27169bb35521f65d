/**
 * An exclusive lock shared by the tabs of one origin. `acquire` resolves a release function once
 * the lock is held, or rejects when `signal` aborts first.
 */
export interface LockPort {
  acquire(name: string, signal: AbortSignal): Promise<() => void>
}

/**
 * Web Locks (`navigator.locks`), or `null` where they do not exist (then refreshes are single
 * flight within the tab only). A frozen tab keeps its locks (P9): Tessera never waits unbounded.
 */
export function webLocks(): LockPort | null {
  const locks = globalThis.navigator?.locks
  if (!locks) return null
  return {
    acquire: (name, signal) =>
      new Promise((resolve, reject) => {
        locks.request(name, { signal }, () => new Promise<void>((release) => resolve(release))).catch(reject)
      }),
  }
}
