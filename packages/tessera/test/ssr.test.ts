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
      const mod = await import('../src/index.js')
      const auth = mod.createAuth({ authority: { login: async () => ({}), refresh: async () => ({}) }, environment: { subscribe: () => () => {} } })
      await auth.ready()
      expect(auth.getSnapshot().status).toBe('unauthenticated')
      auth.dispose()
    } finally {
      names.forEach((n, i) => (saved[i] ? Object.defineProperty(globalThis, n, saved[i]!) : delete (globalThis as Record<string, unknown>)[n]))
    }
    expect(touched).toEqual([])
  })
})
