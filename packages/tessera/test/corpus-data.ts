/** The malformed-input corpus (I8), shared by corpus.test.ts and bad-input.test.ts. */
export const b64 = (o: unknown) => Buffer.from(typeof o === 'string' ? o : JSON.stringify(o)).toString('base64url')
export const jwt = (payload: unknown) => `${b64({ alg: 'ES256' })}.${b64(payload)}.sig`

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
  ['token_type DPoP-ish', { access_token: 'a', token_type: 'DPoP2' }, 'token_type'],
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
