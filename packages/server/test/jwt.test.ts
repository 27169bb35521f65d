import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, createLocalJWKSet, decodeJwt, decodeProtectedHeader, generateKeyPair, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../src/store/types.ts';
import { FakeClock, client, openTestPglite, startTestServer, type RunningServer } from './helpers.ts';

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

let store: Store;
let server: RunningServer;
let otherIssuer: RunningServer;
let keysDir: string;
const clock = new FakeClock();
let api: ReturnType<typeof client>;
let session: Awaited<ReturnType<ReturnType<typeof client>['session']>>;

beforeAll(async () => {
  store = await openTestPglite();
  keysDir = mkdtempSync(join(tmpdir(), 'tessera-jwt-'));
  // Same signing key (shared key folder), different issuer: its tokens must not be accepted by `server`.
  [server, otherIssuer] = await Promise.all([
    startTestServer({ store, dataDir: keysDir, now: clock.now, accessTokenTtl: 60 }),
    startTestServer({ store, dataDir: keysDir, now: clock.now, issuer: 'someone-else' }),
  ]);
  api = client(server);
  session = await api.session();
});
afterAll(async () => {
  await Promise.all([server?.close(), otherIssuer?.close()]);
  await store?.close();
  rmSync(keysDir, { recursive: true, force: true });
});

async function status(token: string): Promise<{ status: number; challenge: string | null }> {
  const res = await api.get('/api/data', api.bearer(token));
  return { status: res.status, challenge: res.headers.get('www-authenticate') };
}

describe('access token validation on /api/data', () => {
  it('a valid token verifies against the published JWKS with the documented claims', async () => {
    const jwks = createLocalJWKSet((await api.get('/.well-known/jwks.json')).body);
    const { payload, protectedHeader } = await jwtVerify(session.access_token, jwks, { currentDate: new Date(clock.now()) });
    expect(protectedHeader).toMatchObject({ alg: 'ES256', kid: expect.any(String) });
    expect(payload).toMatchObject({ sub: session.user.id, iss: 'tessera-reference-server', aud: 'tessera', roles: ['user'] });
    expect(payload.exp! - payload.iat!).toBe(60);
    expect(payload.jti).toEqual(expect.any(String));
    expect(await status(session.access_token)).toEqual({ status: 200, challenge: null });
  });

  it('rejects alg "none"', async () => {
    const claims = decodeJwt(session.access_token);
    const token = `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`;
    expect(await status(token)).toEqual({ status: 401, challenge: 'Bearer error="invalid_token"' });
  });

  it('rejects a token signed with another key, even with the right kid', async () => {
    const { privateKey } = await generateKeyPair('ES256');
    const { kid } = decodeProtectedHeader(session.access_token);
    const claims = decodeJwt(session.access_token);
    const forged = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: kid! }).sign(privateKey);
    expect((await status(forged)).status).toBe(401);
  });

  it('rejects an edited payload (signature no longer matches)', async () => {
    const [header, , signature] = session.access_token.split('.');
    const claims = { ...decodeJwt(session.access_token), roles: ['admin'] };
    expect((await status(`${header}.${b64(claims)}.${signature}`)).status).toBe(401);
  });

  it('rejects HS256 signed with the public key (algorithm confusion)', async () => {
    const publicJwk = (await api.get('/.well-known/jwks.json')).body.keys[0];
    const secret = new TextEncoder().encode(JSON.stringify(publicJwk));
    const forged = await new SignJWT(decodeJwt(session.access_token)).setProtectedHeader({ alg: 'HS256', kid: publicJwk.kid }).sign(secret);
    expect((await status(forged)).status).toBe(401);
  });

  it('rejects a token of another issuer signed with the same key', async () => {
    const other = await client(otherIssuer).login(session.email, session.password);
    expect(other.status).toBe(200);
    expect((await status(other.body.access_token)).status).toBe(401);
  });

  it('rejects an expired token', async () => {
    const s = await api.session();
    clock.advance(60_000);
    expect((await status(s.access_token)).status).toBe(401);
    const me = await api.get('/auth/me', api.bearer(s.access_token));
    expect(me.status).toBe(401);
    expect(me.body.error).toBe('invalid_token');
  });

  it('rejects truncated, empty and oversized tokens', async () => {
    expect((await status(session.access_token.slice(0, -5))).status).toBe(401);
    expect((await status('a.b.c')).status).toBe(401);
    expect((await status('x'.repeat(5000))).status).toBe(401);
  });
});
