/**
 * DPoP on the reference server (RFC 9449, issue 16): tokens copied out of the page are useless without
 * the key, replayed or misdirected proofs are refused, and the same requests from the key's holder work.
 * Proofs are made here with jose, as any client would (the tessera/dpop client is tested against this
 * server in packages/tessera/test/dpop-reference.test.ts).
 */
import { createHash, randomUUID } from 'node:crypto';
import { SignJWT, calculateJwkThumbprint, decodeJwt, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Hono } from 'hono';
import { checkProof, hmacNonces, memoryReplayCache } from '../src/dpop.ts';
import { verifyMiddleware, verifyRequest, wwwAuthenticate, type VerifyOptions, type VerifyVariables } from '../src/verify.ts';
import { openPostgresStore } from '../src/store/postgres.ts';
import type { Store } from '../src/store/types.ts';
import { startInstances, type Instance } from '../tools/instances.ts';
import { TEST_SCRYPT_COST, client, freshPostgresDatabase, openTestPglite, startTestServer, uniqueEmail, type RunningServer } from './helpers.ts';

/** A client's DPoP key: `proof()` signs a proof for one request, as RFC 9449 §4 says unless told otherwise. */
async function dpopKey() {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwk: JWK = await exportJWK(publicKey);
  const jkt = await calculateJwkThumbprint(jwk);
  const proof = (
    method: string,
    url: string,
    extra: { accessToken?: string; ath?: string; iat?: number; jti?: string; key?: CryptoKey; typ?: string; nonce?: string } = {},
  ) =>
    new SignJWT({
      htm: method,
      htu: url,
      iat: extra.iat ?? Math.floor(Date.now() / 1000),
      jti: extra.jti ?? randomUUID(),
      ath: extra.ath ?? (extra.accessToken && createHash('sha256').update(extra.accessToken).digest('base64url')),
      nonce: extra.nonce,
    })
      .setProtectedHeader({ typ: extra.typ ?? 'dpop+jwt', alg: 'ES256', jwk })
      .sign(extra.key ?? privateKey);
  return { jkt, proof };
}
type Key = Awaited<ReturnType<typeof dpopKey>>;

const PASSWORD = 'correct horse battery';

/** A server and the requests a page (or a thief) makes to it. */
function page(server: { url: string }, publicUrl = server.url) {
  const api = client(server);
  const at = (path: string) => `${publicUrl}${path}`;
  return {
    api,
    at,
    async register() {
      const email = uniqueEmail('dpop');
      await api.register(email, PASSWORD);
      return email;
    },
    login: async (email: string, key?: Key) =>
      api.post('/auth/login', { email, password: PASSWORD }, key ? { dpop: await key.proof('POST', at('/auth/login')) } : {}),
    refresh: async (refreshToken: string, key?: Key) =>
      api.post('/auth/refresh', { refresh_token: refreshToken }, key ? { dpop: await key.proof('POST', at('/auth/refresh')) } : {}),
    /** GET `path` with the token, the DPoP scheme and a proof of `key` (Bearer without a key). */
    get: async (path: string, token: string, key?: Key) =>
      api.get(path, key ? { authorization: `DPoP ${token}`, dpop: await key.proof('GET', at(path), { accessToken: token }) } : { authorization: `Bearer ${token}` }),
  };
}

const noTokens = (body: Record<string, unknown>) => !('access_token' in body) && !('refresh_token' in body);

describe("dpop: 'required'", () => {
  let server: RunningServer;
  let p: ReturnType<typeof page>;
  let store: Store;
  beforeAll(async () => {
    store = await openTestPglite();
    server = await startTestServer({ dpop: 'required', store });
    p = page(server);
  });
  afterAll(async () => {
    await server?.close();
    await store?.close();
  });

  /** A signed-in page: its key and its tokens. */
  async function signedIn() {
    const key = await dpopKey();
    const email = await p.register();
    const res = await p.login(email, key);
    expect(res.status).toBe(200);
    return { key, email, access: res.body.access_token as string, refresh: res.body.refresh_token as string };
  }

  it('a login with a proof gets DPoP tokens bound to its key (cnf.jkt); /auth/me and /api/* answer its proofs', async () => {
    const { key, access } = await signedIn();
    expect(decodeJwt(access).cnf).toEqual({ jkt: key.jkt });
    const me = await p.get('/auth/me', access, key);
    expect(me.status).toBe(200);
    const data = await p.get('/api/data', access, key);
    expect(data.status).toBe(200);
    const echo = await p.api.post('/api/echo', { n: 1 }, { authorization: `DPoP ${access}`, dpop: await key.proof('POST', p.at('/api/echo'), { accessToken: access }) });
    expect(echo.status).toBe(200);
    expect(echo.body.body).toEqual({ n: 1 });
  });

  it('a login or refresh without a proof is 400 invalid_dpop_proof and gives no tokens', async () => {
    const { refresh } = await signedIn();
    const login = await p.login(await p.register());
    expect(login.status).toBe(400);
    expect(login.body.error).toBe('invalid_dpop_proof');
    expect(noTokens(login.body)).toBe(true);
    const res = await p.refresh(refresh);
    expect(res.status).toBe(400);
    expect(noTokens(res.body)).toBe(true);
  });

  it('an access token copied out of the page is 401 as Bearer and with a proof from another key; the page itself goes on', async () => {
    const { key, access } = await signedIn();
    const thief = await dpopKey();
    for (const path of ['/api/data', '/auth/me']) {
      const bearer = await p.get(path, access);
      expect(bearer.status).toBe(401);
      expect(bearer.headers.get('www-authenticate')).toMatch(/^DPoP /);
      const stolen = await p.get(path, access, thief);
      expect(stolen.status).toBe(401);
      expect(stolen.body.error).toBe('invalid_dpop_proof');
      expect((await p.get(path, access, key)).status).toBe(200);
    }
    // The thief's proof, whatever its scheme, does not make the token Bearer either.
    const mixed = await p.api.get('/api/data', { authorization: `Bearer ${access}`, dpop: await key.proof('GET', p.at('/api/data'), { accessToken: access }) });
    expect(mixed.status).toBe(401);
  });

  it('a refresh token copied out of the page is 400 invalid_grant with no tokens, with a proof of another key or none; the page still refreshes with it', async () => {
    const { key, refresh, email } = await signedIn();
    const thief = await dpopKey();
    const stolen = await p.refresh(refresh, thief);
    expect(stolen.status).toBe(400);
    expect(stolen.body.error).toBe('invalid_grant');
    expect(noTokens(stolen.body)).toBe(true);
    const bare = await p.refresh(refresh);
    expect(bare.status).toBe(400);
    expect(noTokens(bare.body)).toBe(true);
    // The attempts neither used the token up nor ended the owner's session.
    const own = await p.refresh(refresh, key);
    expect(own.status).toBe(200);
    expect(own.body.token_type).toBe('DPoP');
    expect(decodeJwt(own.body.access_token).cnf).toEqual({ jkt: key.jkt });
    // The successor is bound to the same key.
    expect((await p.refresh(own.body.refresh_token, thief)).status).toBe(400);
    expect((await p.refresh(own.body.refresh_token, key)).status).toBe(200);
    const user = await store.findUserByEmail(email);
    const events = await store.listSecurityEvents({ userId: user!.id });
    // The thief's two tries; the bare refresh was refused before the token was looked at.
    expect(events.map((e) => e.kind)).toEqual(['dpop_key_mismatch', 'dpop_key_mismatch']);
  });

  it('a replayed proof (same jti) is 401 at a resource and 400 at the token endpoint; fresh proofs work', async () => {
    const { key, access, refresh } = await signedIn();
    const proof = await key.proof('GET', p.at('/api/data'), { accessToken: access });
    const headers = { authorization: `DPoP ${access}`, dpop: proof };
    expect((await p.api.get('/api/data', headers)).status).toBe(200);
    const replay = await p.api.get('/api/data', headers);
    expect(replay.status).toBe(401);
    expect(replay.body.error_description).toMatch(/replay/);
    // Same jti in a new proof: still a replay.
    const jti = randomUUID();
    expect((await p.api.get('/api/data', { authorization: `DPoP ${access}`, dpop: await key.proof('GET', p.at('/api/data'), { accessToken: access, jti }) })).status).toBe(200);
    expect((await p.api.get('/api/data', { authorization: `DPoP ${access}`, dpop: await key.proof('GET', p.at('/api/data'), { accessToken: access, jti }) })).status).toBe(401);
    expect((await p.get('/api/data', access, key)).status).toBe(200);

    const refreshProof = await key.proof('POST', p.at('/auth/refresh'));
    const first = await p.api.post('/auth/refresh', { refresh_token: refresh }, { dpop: refreshProof });
    expect(first.status).toBe(200);
    const again = await p.api.post('/auth/refresh', { refresh_token: first.body.refresh_token }, { dpop: refreshProof });
    expect(again.status).toBe(400);
    expect(again.body.error).toBe('invalid_dpop_proof');
    expect(noTokens(again.body)).toBe(true);
    expect((await p.refresh(first.body.refresh_token, key)).status).toBe(200);
  });

  it('a proof for another method, URL or origin is 401; the query is not part of htu', async () => {
    const { key, access } = await signedIn();
    const send = async (method: string, path: string, proof: string) =>
      p.api.request(method, path, method === 'POST' ? {} : undefined, { authorization: `DPoP ${access}`, dpop: proof });
    const refused = [
      await send('POST', '/api/echo', await key.proof('GET', p.at('/api/echo'), { accessToken: access })),
      await send('GET', '/api/data', await key.proof('GET', p.at('/auth/me'), { accessToken: access })),
      await send('GET', '/api/data', await key.proof('GET', `https://elsewhere.example${'/api/data'}`, { accessToken: access })),
      await send('GET', '/api/data', await key.proof('GET', 'not a url', { accessToken: access })),
    ];
    expect(refused.map((r) => [r.status, r.body.error_description])).toEqual([
      [401, 'The DPoP proof is invalid (htm).'],
      [401, 'The DPoP proof is invalid (htu).'],
      [401, 'The DPoP proof is invalid (htu).'],
      [401, 'The DPoP proof is invalid (htu).'],
    ]);
    expect((await send('POST', '/api/echo', await key.proof('POST', p.at('/api/echo'), { accessToken: access }))).status).toBe(200);
    expect((await send('GET', '/api/data?page=2', await key.proof('GET', p.at('/api/data?x=1#top'), { accessToken: access }))).status).toBe(200);
  });

  it('a proof too old, from the future, without ath, with the ath of another token, of another typ or badly signed is 401', async () => {
    const { key, access } = await signedIn();
    const other = await dpopKey();
    const now = Math.floor(Date.now() / 1000);
    const url = p.at('/api/data');
    const otherKeyPair = await generateKeyPair('ES256');
    const cases: Array<[string, string]> = [
      ['iat', await key.proof('GET', url, { accessToken: access, iat: now - 120 })],
      ['iat', await key.proof('GET', url, { accessToken: access, iat: now + 120 })],
      ['ath', await key.proof('GET', url)],
      ['ath', await key.proof('GET', url, { accessToken: `${access}x` })],
      ['signature', await key.proof('GET', url, { accessToken: access, typ: 'JWT' })],
      ['signature', await key.proof('GET', url, { accessToken: access, key: otherKeyPair.privateKey })],
      ['signature', 'not.a.jwt'],
      ['missing', ''],
    ];
    for (const [reason, proof] of cases) {
      const res = await p.api.get('/api/data', proof ? { authorization: `DPoP ${access}`, dpop: proof } : { authorization: `DPoP ${access}` });
      expect([res.status, res.body.error_description]).toEqual([401, `The DPoP proof is invalid (${reason}).`]);
    }
    // Two DPoP headers are one list: refused.
    const two = await p.api.get('/api/data', { authorization: `DPoP ${access}`, dpop: `${await key.proof('GET', url, { accessToken: access })}, ${await other.proof('GET', url)}` });
    expect(two.status).toBe(401);
    expect((await p.get('/api/data', access, key)).status).toBe(200);
  });

  it('logout revokes a bound refresh token only with a proof of its key', async () => {
    const { key, access, refresh } = await signedIn();
    const thief = await dpopKey();
    const stolen = await p.api.post('/auth/logout', { refresh_token: refresh }, { dpop: await thief.proof('POST', p.at('/auth/logout')) });
    expect(stolen.status).toBe(400);
    const bare = await p.api.post('/auth/logout', { refresh_token: refresh });
    expect(bare.status).toBe(400);
    const own = await p.api.post('/auth/logout', { refresh_token: refresh }, { authorization: `DPoP ${access}`, dpop: await key.proof('POST', p.at('/auth/logout'), { accessToken: access }) });
    expect(own.status).toBe(204);
    expect((await p.refresh(refresh, key)).status).toBe(400);
  });
});

describe("dpop: 'optional' and 'off'", () => {
  let store: Store;
  let optional: RunningServer;
  let off: RunningServer;
  beforeAll(async () => {
    store = await openTestPglite();
    [optional, off] = await Promise.all([startTestServer({ dpop: 'optional', store }), startTestServer({ store })]);
  });
  afterAll(async () => {
    await optional?.close();
    await off?.close();
    await store?.close();
  });

  it("'optional': a login without a proof gets Bearer tokens, one with a proof DPoP tokens, and a bound token is refused as Bearer", async () => {
    const p = page(optional);
    const email = await p.register();
    const plain = await p.login(email);
    expect(plain.body.token_type).toBe('Bearer');
    expect(decodeJwt(plain.body.access_token).cnf).toBeUndefined();
    expect((await p.get('/api/data', plain.body.access_token)).status).toBe(200);
    // An unbound token with the DPoP scheme has no key to prove.
    const key = await dpopKey();
    expect((await p.get('/api/data', plain.body.access_token, key)).status).toBe(401);

    const bound = await p.login(email, key);
    expect(bound.body.token_type).toBe('DPoP');
    expect((await p.get('/api/data', bound.body.access_token)).status).toBe(401);
    expect((await p.get('/api/data', bound.body.access_token, key)).status).toBe(200);
    // A bound refresh token needs its key here too.
    expect((await p.refresh(bound.body.refresh_token)).status).toBe(400);
    const next = await p.refresh(bound.body.refresh_token, key);
    expect(next.body.token_type).toBe('DPoP');
    // An unbound family refreshed with a proof is bound from then on.
    const upgraded = await p.refresh(plain.body.refresh_token, key);
    expect(upgraded.body.token_type).toBe('DPoP');
    expect((await p.refresh(upgraded.body.refresh_token)).status).toBe(400);
    expect((await p.refresh(upgraded.body.refresh_token, key)).status).toBe(200);
  });

  it("'off' (the default): proofs are ignored and tokens are Bearer", async () => {
    const p = page(off);
    const key = await dpopKey();
    const res = await p.login(await p.register(), key);
    expect(res.status).toBe(200);
    expect(res.body.token_type).toBe('Bearer');
    expect(decodeJwt(res.body.access_token).cnf).toBeUndefined();
    expect((await p.get('/api/data', res.body.access_token)).status).toBe(200);
    expect((await p.refresh(res.body.refresh_token, key)).body.token_type).toBe('Bearer');
  });

  it('within the reuse grace window the same pair comes back only to the same key; the successor stays bound', async () => {
    const graced = await startTestServer({ dpop: 'required', reuseGraceMs: 60_000, store });
    try {
      const p = page(graced);
      const key = await dpopKey();
      const thief = await dpopKey();
      const login = await p.login(await p.register(), key);
      const first = await p.refresh(login.body.refresh_token, key);
      expect(first.status).toBe(200);
      const stolen = await p.refresh(login.body.refresh_token, thief);
      expect([stolen.status, noTokens(stolen.body)]).toEqual([400, true]);
      const again = await p.refresh(login.body.refresh_token, key);
      expect(again.body.refresh_token).toBe(first.body.refresh_token);
      expect(decodeJwt(again.body.access_token).cnf).toEqual({ jkt: key.jkt });
      expect((await p.refresh(first.body.refresh_token, key)).status).toBe(200);
    } finally {
      await graced.close();
    }
  });

  it('an unknown setting is a TypeError', async () => {
    await expect(startTestServer({ dpop: 'on' as 'optional', store })).rejects.toThrow(TypeError);
  });
});

describe('server nonces (dpopNonces)', () => {
  const APP = 'http://app.example.test';
  let store: Store;
  let a: RunningServer;
  let b: RunningServer;
  beforeAll(async () => {
    store = await openTestPglite();
    const corsOrigins = [APP];
    [a, b] = await Promise.all([startTestServer({ dpop: 'required', dpopNonces: true, store, corsOrigins }), startTestServer({ dpop: 'required', dpopNonces: true, store })]);
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await store?.close();
  });

  it('a proof without the nonce is asked again (400 use_dpop_nonce at the token endpoint, 401 at a resource) with DPoP-Nonce; with it the request passes', async () => {
    const p = page(a);
    const key = await dpopKey();
    const email = await p.register();
    const asked = await p.login(email, key);
    expect([asked.status, asked.body.error, noTokens(asked.body)]).toEqual([400, 'use_dpop_nonce', true]);
    const nonce = asked.headers.get('dpop-nonce')!;
    expect(nonce).toMatch(/^[a-z0-9]+\.[\w-]{24}$/);
    const login = await p.api.post('/auth/login', { email, password: PASSWORD }, { dpop: await key.proof('POST', p.at('/auth/login'), { nonce }) });
    expect(login.status).toBe(200);
    expect(login.headers.get('dpop-nonce')).toBe(nonce);
    const access = login.body.access_token as string;

    const challenged = await p.get('/api/data', access, key);
    expect(challenged.status).toBe(401);
    expect(challenged.headers.get('www-authenticate')).toMatch(/^DPoP algs="ES256", error="use_dpop_nonce"/);
    expect(challenged.headers.get('dpop-nonce')).toBe(nonce);
    const auth = (extra: { nonce?: string }) => key.proof('GET', p.at('/api/data'), { accessToken: access, ...extra });
    expect((await p.api.get('/api/data', { authorization: `DPoP ${access}`, dpop: await auth({ nonce: 'made-up' }) })).status).toBe(401);
    expect((await p.api.get('/api/data', { authorization: `DPoP ${access}`, dpop: await auth({ nonce }) })).status).toBe(200);
  });

  it('CORS: a page on another origin may send the DPoP header and read DPoP-Nonce', async () => {
    const pre = await fetch(`${a.url}/api/data`, {
      method: 'OPTIONS',
      headers: { origin: APP, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization, dpop' },
    });
    expect(pre.headers.get('access-control-allow-headers')?.split(/, */)).toContain('DPoP');
    const res = await fetch(`${a.url}/api/data`, { headers: { origin: APP } });
    expect(res.headers.get('access-control-expose-headers')?.split(/, */)).toEqual(expect.arrayContaining(['WWW-Authenticate', 'DPoP-Nonce']));
  });

  it('instances on one database hand out and accept the same nonce', async () => {
    const [pa, pb] = [page(a), page(b)];
    const na = (await pa.api.get('/.well-known/jwks.json')).headers.get('dpop-nonce');
    const nb = (await pb.api.get('/.well-known/jwks.json')).headers.get('dpop-nonce');
    expect(na).toBe(nb);
    const key = await dpopKey();
    const email = await pa.register();
    const res = await pb.api.post('/auth/login', { email, password: PASSWORD }, { dpop: await key.proof('POST', pb.at('/auth/login'), { nonce: na! }) });
    expect(res.status).toBe(200);
  });
});

describe('verifyRequest (your API) checks DPoP', () => {
  let store: Store;
  let server: RunningServer;
  let options: VerifyOptions;
  const API = 'https://api.example.test';
  beforeAll(async () => {
    store = await openTestPglite();
    server = await startTestServer({ dpop: 'optional', store });
    options = { jwksUrl: `${server.url}/.well-known/jwks.json`, issuer: server.options.issuer, audience: server.options.audience, dpop: { replay: memoryReplayCache() } };
  });
  afterAll(async () => {
    await server?.close();
    await store?.close();
  });

  const call = (url: string, headers: Record<string, string>, method = 'GET') => new Request(url, { method, headers });
  async function tokens(key?: Key) {
    const p = page(server);
    const res = await p.login(await p.register(), key);
    expect(res.status).toBe(200);
    return res.body.access_token as string;
  }

  it('a bound token passes only with DPoP and a proof of its key for this method and URL, once', async () => {
    const key = await dpopKey();
    const thief = await dpopKey();
    const access = await tokens(key);
    const url = `${API}/orders/7?view=full`;
    const proof = await key.proof('GET', `${API}/orders/7`, { accessToken: access });
    const ok = await verifyRequest(call(url, { authorization: `DPoP ${access}`, dpop: proof }), options);
    expect(ok).toEqual({ ok: true, claims: expect.objectContaining({ jkt: key.jkt }) });
    const refused = async (req: Request, opts = options) => {
      const r = await verifyRequest(req, opts);
      return r.ok ? 'ok' : `${r.reason}${r.proof ? `:${r.proof}` : ''}`;
    };
    expect(await refused(call(url, { authorization: `DPoP ${access}`, dpop: proof }))).toBe('invalid_dpop_proof:replay');
    expect(await refused(call(url, { authorization: `Bearer ${access}` }))).toBe('dpop_required');
    expect(await refused(call(url, { authorization: `DPoP ${access}`, dpop: await thief.proof('GET', url, { accessToken: access }) }))).toBe('invalid_dpop_proof:key_mismatch');
    expect(await refused(call(url, { authorization: `DPoP ${access}`, dpop: await key.proof('GET', url, { accessToken: access }) }, 'DELETE'))).toBe('invalid_dpop_proof:htm');
    expect(await refused(call(`${API}/orders/8`, { authorization: `DPoP ${access}`, dpop: await key.proof('GET', url, { accessToken: access }) }))).toBe('invalid_dpop_proof:htu');
    expect(await refused(call(url, { authorization: `DPoP ${access}` }))).toBe('invalid_dpop_proof:missing');
    expect(await refused(call(url, { authorization: `DPoP ${access}`, dpop: await key.proof('GET', url, { accessToken: access }) }))).toBe('ok');

    const bearer = await verifyRequest(call(url, { authorization: `Bearer ${access}` }), options);
    expect(bearer.ok ? '' : wwwAuthenticate(bearer)).toMatch(/^DPoP algs="ES256", error="invalid_token"/);
  });

  it('behind a proxy: proofs name the public URL (a base or a function of the request); the store is a replay cache shared by instances', async () => {
    const key = await dpopKey();
    const access = await tokens(key);
    const internal = 'http://10.0.0.7:8080/orders';
    const proof = () => key.proof('POST', `${API}/orders`, { accessToken: access });
    const shared = { ...options, dpop: { publicUrl: API, replay: store } };
    const headers = async () => ({ authorization: `DPoP ${access}`, dpop: await proof() });
    expect((await verifyRequest(call(internal, await headers(), 'POST'), shared)).ok).toBe(true);
    const computed = { ...options, dpop: { publicUrl: (r: Request) => `${API}${new URL(r.url).pathname}`, replay: store } };
    const h = await headers();
    expect((await verifyRequest(call(internal, h, 'POST'), computed)).ok).toBe(true);
    // The same proof at a second "instance" (another options object, same store): a replay.
    expect(await verifyRequest(call(internal, h, 'POST'), shared)).toMatchObject({ ok: false, proof: 'replay' });
    // Without publicUrl the proof is for another URL than the request's.
    expect(await verifyRequest(call(internal, await headers(), 'POST'), options)).toMatchObject({ ok: false, proof: 'htu' });
  });

  it('an unbound token passes as Bearer, not with the DPoP scheme, and not at all when DPoP is required', async () => {
    const access = await tokens();
    const key = await dpopKey();
    const url = `${API}/x`;
    expect((await verifyRequest(call(url, { authorization: `Bearer ${access}` }), options)).ok).toBe(true);
    expect(await verifyRequest(call(url, { authorization: `DPoP ${access}`, dpop: await key.proof('GET', url, { accessToken: access }) }), options)).toMatchObject({ ok: false, reason: 'invalid_dpop_proof' });
    const required = { ...options, dpop: { ...options.dpop, required: true } };
    expect(await verifyRequest(call(url, { authorization: `Bearer ${access}` }), required)).toMatchObject({ ok: false, reason: 'dpop_required', scheme: 'DPoP' });
    const missing = await verifyRequest(call(url, {}), required);
    expect(missing.ok ? '' : wwwAuthenticate(missing)).toBe('DPoP algs="ES256"');
  });

  it('with dpop.nonces, a proof without the nonce is answered use_dpop_nonce with DPoP-Nonce; with it the request passes', async () => {
    const key = await dpopKey();
    const access = await tokens(key);
    const app = new Hono<{ Variables: VerifyVariables }>();
    app.use('/api/*', verifyMiddleware({ ...options, dpop: { ...options.dpop, nonces: hmacNonces('a secret shared by the API instances') } }));
    app.get('/api/me', (c) => c.json({ sub: c.get('claims').sub }));
    const url = `${API}/api/me`;
    const asked = await app.request(url, { headers: { authorization: `DPoP ${access}`, dpop: await key.proof('GET', url, { accessToken: access }) } });
    expect(asked.status).toBe(401);
    expect(asked.headers.get('www-authenticate')).toMatch(/^DPoP algs="ES256", error="use_dpop_nonce"/);
    expect(await asked.json()).toMatchObject({ error: 'use_dpop_nonce' });
    const nonce = asked.headers.get('dpop-nonce')!;
    expect(nonce).toBeTruthy();
    const ok = await app.request(url, { headers: { authorization: `DPoP ${access}`, dpop: await key.proof('GET', url, { accessToken: access, nonce }) } });
    expect(ok.status).toBe(200);
  });

  it('verifyMiddleware answers 401 invalid_dpop_proof with a DPoP challenge, and passes the proved request', async () => {
    const key = await dpopKey();
    const access = await tokens(key);
    const app = new Hono<{ Variables: VerifyVariables }>();
    app.use('/api/*', verifyMiddleware(options));
    app.get('/api/me', (c) => c.json({ jkt: c.get('claims').jkt }));
    const url = `${API}/api/me`;
    const ok = await app.request(url, { headers: { authorization: `DPoP ${access}`, dpop: await key.proof('GET', url, { accessToken: access }) } });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ jkt: key.jkt });
    const bad = await app.request(url, { headers: { authorization: `DPoP ${access}`, dpop: await key.proof('POST', url, { accessToken: access }) } });
    expect(bad.status).toBe(401);
    expect(bad.headers.get('www-authenticate')).toBe('DPoP algs="ES256", error="invalid_dpop_proof", error_description="The DPoP proof is invalid (htm)."');
    expect(await bad.json()).toMatchObject({ error: 'invalid_dpop_proof', reason: 'invalid_dpop_proof' });
  });
});

describe('replay across two server processes on one PostgreSQL, behind one public URL', () => {
  const PUBLIC = 'https://auth.example.test';
  let db: Awaited<ReturnType<typeof freshPostgresDatabase>>;
  let a: Instance;
  let b: Instance;
  beforeAll(async () => {
    db = await freshPostgresDatabase();
    // Proofs name the public URL (the load balancer's), not the instance's.
    [a, b] = (await startInstances(2, { dpop: 'required', databaseUrl: db.url, publicUrl: PUBLIC, scryptCost: TEST_SCRYPT_COST })) as [Instance, Instance];
  }, 240_000);
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await db?.drop();
  }, 240_000);

  it('a proof used on one instance is refused on the other; fresh proofs work on both; a proof for the instance URL is refused', async () => {
    const pa = page(a, PUBLIC);
    const pb = page(b, PUBLIC);
    const key = await dpopKey();
    const login = await pa.login(await pa.register(), key);
    expect(login.status).toBe(200);
    const access = login.body.access_token as string;
    const headers = { authorization: `DPoP ${access}`, dpop: await key.proof('GET', `${PUBLIC}/api/data`, { accessToken: access }) };
    expect((await pa.api.get('/api/data', headers)).status).toBe(200);
    const replay = await pb.api.get('/api/data', headers);
    expect(replay.status).toBe(401);
    expect(replay.body.error_description).toMatch(/replay/);
    expect((await pb.get('/api/data', access, key)).status).toBe(200);
    expect((await pa.get('/api/data', access, key)).status).toBe(200);
    // A refresh proof used on b cannot be replayed on a.
    const proof = await key.proof('POST', `${PUBLIC}/auth/refresh`);
    const first = await pb.api.post('/auth/refresh', { refresh_token: login.body.refresh_token }, { dpop: proof });
    expect(first.status).toBe(200);
    expect((await pa.api.post('/auth/refresh', { refresh_token: first.body.refresh_token }, { dpop: proof })).status).toBe(400);
    const direct = await pa.api.get('/api/data', { authorization: `DPoP ${access}`, dpop: await key.proof('GET', `${a.url}/api/data`, { accessToken: access }) });
    expect(direct.status).toBe(401);
  });

  it('of 20 requests sent at once with one proof, split over both instances, exactly one is accepted', async () => {
    const pa = page(a, PUBLIC);
    const key = await dpopKey();
    const login = await pa.login(await pa.register(), key);
    const access = login.body.access_token as string;
    const headers = { authorization: `DPoP ${access}`, dpop: await key.proof('GET', `${PUBLIC}/api/data`, { accessToken: access }) };
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => client(i % 2 ? a : b).get('/api/data', headers)));
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    expect(results.filter((r) => r.status === 401)).toHaveLength(19);
  });
});

describe('the replay cache', () => {
  it('the store keeps a proof until it expires, then takes the key again (PostgreSQL and PGlite)', async () => {
    const db = await freshPostgresDatabase();
    const stores = [await openPostgresStore(db.url), await openTestPglite()];
    try {
      for (const store of stores) {
        const t = Date.UTC(2030, 0, 1);
        expect(await store.claimProofJti('k1', t + 1000, t)).toBe(true);
        expect(await store.claimProofJti('k1', t + 1000, t + 999)).toBe(false);
        expect(await store.claimProofJti('k2', t + 1000, t + 999)).toBe(true);
        expect(await store.claimProofJti('k1', t + 5000, t + 1000)).toBe(true);
        expect(await store.claimProofJti('k1', t + 5000, t + 2000)).toBe(false);
      }
    } finally {
      for (const s of stores) await s.close();
      await db.drop();
    }
  });

  it('checkProof with the memory cache: one use per key and jti; the same jti from another key is another proof', async () => {
    const replay = memoryReplayCache();
    const [k1, k2] = [await dpopKey(), await dpopKey()];
    const url = 'https://api.example.test/x';
    const jti = randomUUID();
    const expect1 = { method: 'GET', url, now: Date.now(), replay };
    const p1 = await k1.proof('GET', url, { jti });
    expect(await checkProof(p1, expect1)).toEqual({ ok: true, proof: { jkt: k1.jkt, jti, iat: expect.any(Number) } });
    expect(await checkProof(p1, expect1)).toEqual({ ok: false, reason: 'replay' });
    expect((await checkProof(await k2.proof('GET', url, { jti }), expect1)).ok).toBe(true);
    // A refused proof does not use up its jti.
    const p3 = await k1.proof('GET', url, { jti: randomUUID() });
    expect(await checkProof(p3, { ...expect1, method: 'POST' })).toEqual({ ok: false, reason: 'htm' });
    expect((await checkProof(p3, expect1)).ok).toBe(true);
    expect(await checkProof(await k1.proof('GET', url, { jti: 'short' }), expect1)).toEqual({ ok: false, reason: 'jti' });
  });
});
