/** A hint that timers may have lied: the page came back, the network returned, the clock jumped. */
export type EnvironmentSignal = 'visible' | 'online' | 'focus' | 'resume'

/**
 * Page lifecycle signals. `subscribe` attaches listeners and returns the function that detaches them.
 */
export interface EnvironmentPort {
  subscribe(emit: (signal: EnvironmentSignal) => void): () => void
}

/**
 * Listens to `visibilitychange`, `pageshow`, `resume`, `online` and `focus` when a `window` exists
 * (P14); does nothing elsewhere.
 */
export const browserEnvironment: EnvironmentPort = {
  subscribe(emit) {
    const w = globalThis.window
    const d = globalThis.document
    if (!w || !d) return () => {}
    const visible = () => d.visibilityState !== 'hidden' && emit('visible')
    const pairs: [EventTarget, string, () => void][] = [
      [d, 'visibilitychange', visible],
      [w, 'pageshow', visible],
      [d, 'resume', () => emit('resume')],
      [w, 'online', () => emit('online')],
      [w, 'focus', () => emit('focus')],
    ]
    for (const [t, e, f] of pairs) t.addEventListener(e, f)
    return () => {
      for (const [t, e, f] of pairs) t.removeEventListener(e, f)
    }
  },
}
