import { describe, expect, it, vi } from 'vitest'

describe('server-side import', () => {
  it('importing the package (core, http, oidc, dpop, vue, svelte) and creating authorities touches no browser global', async () => {
    // oauth4webapi and vue (peers, not ours) read navigator.userAgent and document at import, guarded: load them first.
    await import('oauth4webapi')
    await import('vue')
    const touched: string[] = []
    const names = ['window', 'document', 'localStorage', 'sessionStorage', 'navigator', 'location', 'history', 'BroadcastChannel']
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
      await import('../src/bindings/vue.js')
      await import('../src/bindings/svelte.js')
      await import('../src/proof/dpop.js')
      const { oidcAuthority } = await import('../src/authorities/oidc.js')
      // Creating an authority touches nothing either: it looks at the page only when asked to.
      oidcAuthority({ issuer: 'https://id.example.com', clientId: 'web', redirectUri: 'https://app.example.com/callback' })
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
