/**
 * A hint that timers may have lied (P14): the page became visible or was restored, the network
 * came back, the window got focus, a frozen page resumed.
 */
export type EnvironmentSignal = 'visibilitychange' | 'pageshow' | 'resume' | 'online' | 'focus'

/**
 * Page lifecycle signals. `subscribe` attaches listeners and returns the function that detaches them.
 */
export interface EnvironmentPort {
  subscribe(emit: (signal: EnvironmentSignal) => void): () => void
}

/** Listens to the page lifecycle when a `window` exists; does nothing elsewhere. */
export const browserEnvironment: EnvironmentPort = {
  subscribe(emit) {
    const w = globalThis.window
    if (!w) return () => {}
    const d = w.document
    const on = (e: Event) => d.visibilityState !== 'hidden' && emit(e.type as EnvironmentSignal)
    const pairs = [
      [w, 'online focus pageshow'],
      [d, 'visibilitychange resume'],
    ] as const
    const each = (add: boolean) =>
      pairs.forEach(([t, names]) => names.split(' ').forEach((n) => (add ? t.addEventListener(n, on) : t.removeEventListener(n, on))))
    each(true)
    return () => each(false)
  },
}
