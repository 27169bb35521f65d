import { describe, expect, it, vi } from 'vitest'

describe('server-side import', () => {
  it('importing the package touches no browser global', async () => {
    const touched: string[] = []
    const names = ['window', 'document', 'localStorage', 'sessionStorage', 'navigator', 'location', 'BroadcastChannel']
    const saved = names.map((n) => Object.getOwnPropertyDescriptor(globalThis, n))
    for (const n of names)
      Object.defineProperty(globalThis, n, {
        configurable: true,
        get() {
          touched.push(n)
          return undefined
        },
      })
    try {
      vi.resetModules() // evaluate the package afresh, under the traps
      await import('../src/index.js')
      await import('../src/authorities/http.js')
      expect(touched).toEqual([])
      // On a server an engine runs in single-tab mode: no channel, no lock, no shared session.
      const { createAuth } = await import('../src/index.js')
      const auth = createAuth({ authority: { login: async () => ({}), refresh: async () => ({}) } })
      await auth.ready()
      expect(auth.getSnapshot().status).toBe('unauthenticated')
      auth.dispose()
    } finally {
      names.forEach((n, i) => (saved[i] ? Object.defineProperty(globalThis, n, saved[i]!) : delete (globalThis as Record<string, unknown>)[n]))
    }
  })
})
