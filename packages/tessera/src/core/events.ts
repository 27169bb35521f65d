/**
 * Listeners by name, with delivery queued: a notification emitted while another is being
 * delivered waits its turn, so listeners always see the state after the change and may call any
 * verb of the engine without re-entering it (P16). A throwing listener does not stop the others;
 * its error is rethrown on a microtask, where it is reported as uncaught.
 * @internal
 */
export function createEmitter<Notice>() {
  const handlers = new Map<string, Set<(notice: Notice) => void>>()
  const queue: (() => void)[] = []
  let flushing = false
  return {
    on(type: string, handler: (notice: Notice) => void): () => void {
      const set = handlers.get(type) ?? new Set()
      handlers.set(type, set.add(handler))
      return () => void set.delete(handler)
    },
    /** Delivers `make()` to the listeners of `type`; `make` runs at delivery, after earlier notices. */
    emit(type: string, make: () => Notice) {
      queue.push(() => {
        const notice = make()
        for (const h of handlers.get(type) ?? []) h(notice)
      })
      if (flushing) return
      flushing = true
      while (queue.length)
        try {
          queue.shift()!()
        } catch (e) {
          queueMicrotask(() => {
            throw e
          })
        }
      flushing = false
    },
  }
}
