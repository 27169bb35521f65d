/**
 * Messages between the tabs of one session key. `post` does not deliver to the poster itself
 * (as `BroadcastChannel`).
 */
export interface ChannelPort {
  post(message: unknown): void
  subscribe(listener: (message: unknown) => void): () => void
}

/**
 * A `BroadcastChannel` named `name` in a page, or `null` elsewhere (then Tessera runs in
 * single-tab mode). Never on a server: engines of different users in one process must not meet.
 * The channel opens on the first `subscribe` and closes with the last.
 */
export function broadcastChannel(name: string): ChannelPort | null {
  const BC = globalThis.BroadcastChannel
  if (!BC || !globalThis.document) return null
  let bc: BroadcastChannel | null = null
  const listeners = new Set<(m: unknown) => void>()
  return {
    post: (message) => bc?.postMessage(message),
    subscribe(listener) {
      if (!bc) (bc = new BC(name)).onmessage = (e) => listeners.forEach((l) => l(e.data))
      listeners.add(listener)
      return () => {
        listeners.delete(listener)
        if (listeners.size) return
        bc?.close()
        bc = null
      }
    },
  }
}
