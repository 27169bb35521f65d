import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { decodeJwt, isTesseraError, parseTokenResponse } from '../src/index.js'
import { setup } from './fakes.js'
import { expectBadStoredSessionIgnored } from './kit.js'

import { b64, badStoredBlobs, badTokenResponses, jwt } from './corpus-data.js'

export { badStoredBlobs, badTokenResponses }

const unhandled: unknown[] = []
const onUnhandled = (e: unknown) => unhandled.push(e)
beforeAll(() => void process.on('unhandledRejection', onUnhandled))
afterAll(() => {
  process.off('unhandledRejection', onUnhandled)
  // I8: not one unhandled rejection anywhere in the corpus.
  expect(unhandled).toEqual([])
})

describe('I8: malformed token responses', () => {
  it(`the corpus has at least 30 token responses and 10 stored blobs (${badTokenResponses.length} + ${badStoredBlobs.length})`, () => {
    expect(badTokenResponses.length).toBeGreaterThanOrEqual(30)
    expect(badStoredBlobs.length).toBeGreaterThanOrEqual(10)
  })

  it.each(badTokenResponses)('%s → INVALID_TOKEN_RESPONSE naming the field', (_, body, field) => {
    const error = (() => {
      try {
        parseTokenResponse(body, 0)
      } catch (e) {
        return e
      }
    })()
    expect(isTesseraError(error, 'INVALID_TOKEN_RESPONSE')).toBe(true)
    expect((error as { field: string }).field).toBe(field)
    expect((error as Error).message).toContain(field)
  })

  it.each(badTokenResponses)('%s from login: typed rejection and a consistent unauthenticated snapshot', async (_, body, field) => {
    const { auth, server } = setup()
    server.authority.login = async () => body as never
    await auth.ready()
    await expect(auth.login({ user: 'a', password: 'pw' })).rejects.toMatchObject({ code: 'INVALID_TOKEN_RESPONSE', field })
    expect(auth.getSnapshot()).toMatchObject({ status: 'unauthenticated', refreshing: false, user: null, expiresAt: null, error: { field } })
    expect(auth.getSnapshot().actions.login.status).toBe('rejected')
  })

  it.each(badTokenResponses)('%s from refresh: typed rejection, session and token kept', async (_, body) => {
    const { auth, server } = setup()
    await auth.ready()
    await auth.login({ user: 'a', password: 'pw' })
    const token = await auth.getAccessToken()
    server.authority.refresh = async () => body as never
    await expect(auth.refresh()).rejects.toMatchObject({ code: 'INVALID_TOKEN_RESPONSE' })
    expect(auth.getSnapshot()).toMatchObject({ status: 'authenticated', refreshing: false })
    expect(await auth.getAccessToken()).toBe(token)
  })

  it('valid variants are accepted: OAuth, hand-rolled camelCase, opaque and JWT without expires_in', () => {
    expect(parseTokenResponse({ access_token: 'a', token_type: 'bearer', expires_in: 60 }, 1000)).toMatchObject({ accessToken: 'a', expiresAt: 61_000 })
    expect(parseTokenResponse({ access_token: 'a', token_type: 'DPoP' }, 0).accessToken).toBe('a') // bound to the page's key (tessera/dpop)
    expect(parseTokenResponse({ token: 't', refreshToken: 'r', expiresIn: 1 }, 0)).toMatchObject({ accessToken: 't', refreshToken: 'r', expiresAt: 1000 })
    expect(parseTokenResponse({ token: 'opaque' }, 0).expiresAt).toBeNull()
    expect(parseTokenResponse({ access_token: jwt({ iat: 100, exp: 160 }) }, 5_000).expiresAt).toBe(65_000)
    expect(decodeJwt(jwt({ sub: 'ü' }))).toEqual({ sub: 'ü' })
  })
})

describe('I8: corrupted storage', () => {
  it.each(badStoredBlobs)('%s → no session, a storage-error event, no network call', async (_, raw) => {
    await expectBadStoredSessionIgnored(raw)
  })
})
