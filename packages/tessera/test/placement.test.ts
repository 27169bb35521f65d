import { describe, expect, it } from 'vitest'
import { createAuth } from '../src/index.js'
import { FakeServer, FakeClock } from './fakes.js'
import { fresh, useResourceServer } from './resource-server.js'
import { TRANSPORTS, senders } from './transport-kit.js'

const server = useResourceServer()
const placement = { header: 'X-Access-Token', scheme: 'Token' }

describe('token placement: every transport sends the token where the engine says', () => {
  for (const name of TRANSPORTS)
    it(`${name}: X-Access-Token: Token <t> on the first send and on the replay after a 401; no Authorization header`, async () => {
      const { auth, fake } = await fresh(server, { placement })
      const send = senders(auth)[name]
      const first = await send(`${server.url}/api/data`, { n: 1 })
      expect(first.status).toBe(200)
      // The token goes stale on the server only: the 401 path replays with the refreshed token.
      fake.live.clear()
      const replayed = await send(`${server.url}/api/data`, { n: 2 })
      expect(replayed.status).toBe(200)
      expect(fake.refreshCalls).toBe(1)
      const sent = server.hits.filter((h) => h.path === '/api/data')
      expect(sent.map((h) => h.headers['x-access-token'])).toEqual(['Token at-1', 'Token at-1', 'Token at-2'])
      expect(sent.every((h) => h.headers.authorization === undefined)).toBe(true)
    })

  it('a bare token with an empty scheme', async () => {
    const { auth, fake } = await fresh(server, { placement: { header: 'X-Access-Token', scheme: '' } })
    expect((await auth.getGrant()).headers).toEqual({ 'X-Access-Token': fake.current })
  })

  it('a header name no request could carry is refused when the engine is made, not at the first request', () => {
    const fake = new FakeServer(new FakeClock())
    expect(() => createAuth({ authority: fake.authority, channel: null, placement: { header: 'X Token' } })).toThrow(TypeError)
    expect(() => createAuth({ authority: fake.authority, channel: null, placement: { scheme: 'Bea\nrer' } })).toThrow(TypeError)
  })
})
