/**
 * Where a session is kept between page loads. Values are strings; any method may be async.
 * The default is memory: tokens never touch persistent storage unless you opt in.
 */
export interface StoragePort {
  get(key: string): string | null | undefined | Promise<string | null | undefined>
  set(key: string, value: string): void | Promise<void>
  remove(key: string): void | Promise<void>
}

/**
 * A storage that lives as long as the engine. The default.
 * @example `createAuth({ authority, storage: memoryStorage() })`
 */
export function memoryStorage(): StoragePort {
  const map = new Map<string, string>()
  return { get: (k) => map.get(k), set: (k, v) => void map.set(k, v), remove: (k) => void map.delete(k) }
}

function webStorage(name: 'localStorage' | 'sessionStorage'): StoragePort {
  // Looked up at call time: importing this module touches no browser global.
  const s = () => globalThis[name]
  return { get: (k) => s().getItem(k), set: (k, v) => s().setItem(k, v), remove: (k) => s().removeItem(k) }
}

/**
 * `window.localStorage`: survives reloads and is shared by tabs. Readable by any script on the
 * origin, so only opt in when that risk is accepted.
 */
export const localStorageStore = (): StoragePort => webStorage('localStorage')

/** `window.sessionStorage`: survives reloads of one tab only. */
export const sessionStorageStore = (): StoragePort => webStorage('sessionStorage')
