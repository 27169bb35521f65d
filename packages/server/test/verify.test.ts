import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../src/store/types.ts';
import { rotateSigningKey } from '../src/tokens.ts';
import { parseBearer, verifyMiddleware, verifyRequest, type VerifyOptions, type VerifyVariables } from '../src/verify.ts';
import { FakeClock, client, openTestPglite, startTestServer, type RunningServer } from './helpers.ts';

let store: Store;
let server: RunningServer;
/** Same store and keys, but its clock is two hours behind: its tokens are expired in real time. */
let pastServer: RunningServer;
let closeApi: (() => Promise<void>) | undefined;
let apiUrl: string;
let options: VerifyOptions;

beforeAll(async () => {
  store = await openTestPglite();
  server = await startTestServer({ store, keyActivationDelayMs: 0, keyReloadMs: 200 });
  pastServer = await startTestServer({ store, now: new FakeClock(Date.now() - 2 * 3600_000).now, accessTokenTtl: 60 });
  options = { jwksUrl: `${server.url}/.well-known/jwks.json`, issuer: server.options.issuer, audience: server.options.audience, jwksCooldownMs: 0 };
  // The user's own resource server: another HTTP server that knows only the JWKS URL.
  const app = new Hono<{ Variables: VerifyVariables }>();
  app.use('/api/*', verifyMiddleware(options));
  app.get('/api/whoami', (c) => c.json({ sub: c.get('claims').sub, roles: c.get('claims').roles }));
  let http: ServerType;
  const info = await new Promise<AddressInfo>((resolve) => {
    http = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, resolve);
  });
  apiUrl = `http://127.0.0.1:${info.port}`;
  closeApi = () => new Promise<void>((r) => http.close(() => r()));
});
afterAll(async () => {
  await Promise.all([server?.close(), pastServer?.close(), closeApi?.()]);
  await store?.close();
});

const request = (authorization?: string) => new Request('http://api.test/x', { headers: authorization ? { authorization } : {} });

describe('verifyRequest (your API verifies the tokens through the JWKS)', () => {
  it('accepts a fresh token with Bearer in any case and resolves its claims', async () => {
    const s = await client(server).session();
    for (const scheme of ['Bearer', 'bearer', 'BEARER']) {
      const result = await verifyRequest(request(`${scheme} ${s.access_token}`), options);
      expect(result).toEqual({ ok: true, claims: expect.objectContaining({ sub: s.user.id, roles: ['user'], iss: options.issuer, aud: options.audience }) });
    }
  });

  it('names why a request is refused: missing, malformed, expired, bad signature, wrong issuer or audience', async () => {
    const s = await client(server).session();
    const old = await client(pastServer).session();
    const [, p, sig] = s.access_token.split('.') as [string, string, string];
    const otherSig = old.access_token.split('.')[2]!;
    const cases: Array<[string | undefined, string, VerifyOptions?]> = [
      [undefined, 'missing'],
      ['Basic dXNlcjpwdw==', 'missing'],
      ['Bearer', 'malformed'],
      ['Bearer not a token', 'malformed'],
      ['Bearer abc.def', 'malformed'],
      [`Bearer ${'a'.repeat(5000)}.b.c`, 'malformed'],
      [`Bearer e30.${p}.${sig}`, 'malformed'],
      [`Bearer ${old.access_token}`, 'expired'],
      [`Bearer ${s.access_token.split('.')[0]}.${p}.${otherSig}`, 'bad_signature'],
      [`Bearer ${s.access_token}`, 'wrong_issuer', { ...options, issuer: 'someone-else' }],
      [`Bearer ${s.access_token}`, 'wrong_audience', { ...options, audience: 'another-api' }],
    ];
    for (const [header, reason, opts] of cases) {
      const result = await verifyRequest(request(header), opts ?? options);
      expect({ header: header?.slice(0, 40), result }).toEqual({
        header: header?.slice(0, 40),
        result: { ok: false, reason, status: 401, description: expect.any(String), scheme: 'Bearer' },
      });
    }
  });

  it('an unreachable JWKS is a 503 jwks_unavailable, not a verdict on the token', async () => {
    const s = await client(server).session();
    const result = await verifyRequest(request(`Bearer ${s.access_token}`), { ...options, jwksUrl: 'http://127.0.0.1:9/jwks.json' });
    expect(result).toMatchObject({ ok: false, reason: 'jwks_unavailable', status: 503 });
  });

  it('after a key rotation: new tokens carry the new kid and verify, tokens of the old key still verify, nobody is logged out', async () => {
    const before = await client(server).session();
    const oldKid = server.app.signer.currentKid(Date.now());
    const { kid } = await rotateSigningKey(store, { now: Date.now(), activationDelayMs: 0, accessTokenTtl: 300 });
    await server.app.signer.reload();
    const refreshed = await client(server).refresh(before.refresh_token);
    expect(refreshed.status).toBe(200);
    const header = JSON.parse(Buffer.from(refreshed.body.access_token.split('.')[0], 'base64url').toString()) as { kid: string };
    expect(header.kid).toBe(kid);
    expect(kid).not.toBe(oldKid);
    for (const token of [before.access_token, refreshed.body.access_token]) {
      expect(await verifyRequest(request(`Bearer ${token}`), options)).toMatchObject({ ok: true });
    }
    const jwks = (await client(server).get('/.well-known/jwks.json')).body.keys.map((k: { kid: string }) => k.kid);
    expect(jwks).toEqual([oldKid, kid]);
  });

  it('parseBearer: undefined without a Bearer header, null for a Bearer header that is not a token68', () => {
    expect(parseBearer(undefined)).toBeUndefined();
    expect(parseBearer('Basic x')).toBeUndefined();
    expect(parseBearer('Bearerx abc')).toBeUndefined();
    expect(parseBearer('bEaReR abc.def-_~+/=')).toBe('abc.def-_~+/=');
    expect(parseBearer('Bearer a b')).toBeNull();
    expect(parseBearer('Bearer \u00e9')).toBeNull();
  });
});

describe('verifyMiddleware (Hono)', () => {
  it('passes claims to the handler, and answers 401 with a reason and an RFC 6750 challenge', async () => {
    const s = await client(server).session();
    const ok = await fetch(`${apiUrl}/api/whoami`, { headers: { authorization: `bearer ${s.access_token}` } });
    expect(await ok.json()).toEqual({ sub: s.user.id, roles: ['user'] });

    const missing = await fetch(`${apiUrl}/api/whoami`);
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toBe('Bearer');
    expect(await missing.json()).toEqual({ error: 'invalid_token', error_description: expect.any(String), reason: 'missing' });

    const bad = await fetch(`${apiUrl}/api/whoami`, { headers: { authorization: `Bearer ${s.access_token}x` } });
    expect(bad.status).toBe(401);
    expect(bad.headers.get('www-authenticate')).toMatch(/^Bearer error="invalid_token"/);
    expect((await bad.json()).reason).toBe('bad_signature');
  });
});
