import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { decodeJwt, isTesseraError, parseTokenResponse } from '../src/index.js'
import { FakeStorage, setup } from './fakes.js'

const b64 = (o: unknown) => Buffer.from(typeof o === 'string' ? o : JSON.stringify(o)).toString('base64url')
const jwt = (payload: unknown) => `${b64({ alg: 'ES256' })}.${b64(payload)}.sig`

/** I8: each malformed token response, with the field the error must name. */
export const badTokenResponses: [string, unknown, string][] = [
  ['null body', null, '(body)'],
  ['string body', 'ok', '(body)'],
  ['number body', 42, '(body)'],
  ['array body', [{ access_token: 'a' }], '(body)'],
  ['empty object', {}, 'access_token'],
  ['access_token null', { access_token: null }, 'access_token'],
  ['access_token number', { access_token: 1234 }, 'access_token'],
  ['access_token object', { access_token: { value: 'x' } }, 'access_token'],
  ['access_token empty', { access_token: '' }, 'access_token'],
  ['access_token with space', { access_token: 'a b' }, 'access_token'],
  ['access_token with CRLF (header injection)', { access_token: 'a\r\nX-Evil: 1' }, 'access_token'],
  ['access_token non-ASCII', { access_token: 'tökén' }, 'access_token'],
  ['token (camel) number', { token: 5 }, 'token'],
  ['refresh_token number', { access_token: 'a', refresh_token: 7 }, 'refresh_token'],
  ['refreshToken empty', { access_token: 'a', refreshToken: '' }, 'refreshToken'],
  ['refresh_token array', { access_token: 'a', refresh_token: ['r'] }, 'refresh_token'],
  ['expires_in string', { access_token: 'a', expires_in: '3600' }, 'expires_in'],
  ['expires_in negative', { access_token: 'a', expires_in: -1 }, 'expires_in'],
  ['expires_in NaN-like', { access_token: 'a', expires_in: Number.NaN }, 'expires_in'],
  ['expires_in huge', { access_token: 'a', expires_in: 1e12 }, 'expires_in'],
  ['expires_in boolean', { access_token: 'a', expires_in: true }, 'expires_in'],
  ['expiresIn object', { access_token: 'a', expiresIn: {} }, 'expiresIn'],
  ['token_type mac', { access_token: 'a', token_type: 'mac' }, 'token_type'],
  ['token_type DPoP', { access_token: 'a', token_type: 'DPoP' }, 'token_type'],
  ['token_type number', { access_token: 'a', token_type: 1 }, 'token_type'],
  ['id_token not a JWT', { access_token: 'a', id_token: 'not-a-jwt' }, 'id_token'],
  ['id_token bad base64 payload', { access_token: 'a', id_token: 'a.%%%.c' }, 'id_token'],
  ['id_token payload not JSON', { access_token: 'a', id_token: `a.${b64('not json')}.c` }, 'id_token'],
  ['id_token payload an array', { access_token: 'a', id_token: `a.${b64([1])}.c` }, 'id_token'],
  ['JWT access token, broken payload, no expires_in', { access_token: 'aaa.b@d.ccc' }, 'access_token'],
  ['JWT access token, exp a string', { access_token: jwt({ exp: 'tomorrow' }) }, 'access_token'],
  ['JWT access token, iat a string', { access_token: jwt({ exp: 2e9, iat: 'now' }) }, 'access_token'],
  ['JWT access token, payload null', { access_token: jwt(null) }, 'access_token'],
]

/** I8: stored blobs Tessera did not write. */
export const badStoredBlobs: [string, string][] = [
  ['not JSON', '{"v":1,'],
  ['a JSON string', '"token"'],
  ['a number', '12'],
  ['an array', '[]'],
  ['another app', '{"user":"bob","theme":"dark"}'],
  ['wrong version', '{"v":2,"tokens":{"accessToken":"a","expiresAt":null,"receivedAt":1}}'],
  ['tokens missing', '{"v":1}'],
  ['tokens null', '{"v":1,"tokens":null}'],
  ['accessToken number', '{"v":1,"tokens":{"accessToken":1,"expiresAt":null,"receivedAt":1}}'],
  ['accessToken empty', '{"v":1,"tokens":{"accessToken":"","expiresAt":null,"receivedAt":1}}'],
  ['refreshToken number', '{"v":1,"tokens":{"accessToken":"a","refreshToken":2,"expiresAt":null,"receivedAt":1}}'],
  ['expiresAt a string', '{"v":1,"tokens":{"accessToken":"a","expiresAt":"soon","receivedAt":1}}'],
  ['receivedAt missing', '{"v":1,"tokens":{"accessToken":"a","expiresAt":null}}'],
  ['__proto__ pollution', '{"__proto__":{"v":1},"tokens":{"accessToken":"a","expiresAt":null,"receivedAt":1}}'],
]

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
    expect(parseTokenResponse({ token: 't', refreshToken: 'r', expiresIn: 1 }, 0)).toMatchObject({ accessToken: 't', refreshToken: 'r', expiresAt: 1000 })
    expect(parseTokenResponse({ token: 'opaque' }, 0).expiresAt).toBeNull()
    expect(parseTokenResponse({ access_token: jwt({ iat: 100, exp: 160 }) }, 5_000).expiresAt).toBe(65_000)
    expect(decodeJwt(jwt({ sub: 'ü' }))).toEqual({ sub: 'ü' })
  })
})

describe('I8: corrupted storage', () => {
  it.each(badStoredBlobs)('%s → no session, a storage-error event, no network call', async (_, raw) => {
    const storage = new FakeStorage()
    storage.map.set('tessera', raw)
    const { auth, server } = setup({ storage })
    const errors: string[] = []
    auth.on('storage-error', (n) => errors.push(n.error!.code))
    await auth.ready()
    expect(auth.getSnapshot()).toMatchObject({ status: 'unauthenticated', error: null })
    expect(errors).toEqual(['INVALID_STORED_SESSION'])
    expect(server.refreshCalls + server.loginCalls).toBe(0)
    // sign-in still works and overwrites the garbage
    await auth.login({ user: 'a', password: 'pw' })
    expect(auth.getSnapshot().status).toBe('authenticated')
  })
})
