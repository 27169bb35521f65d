import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../src/store/types.ts';
import { hashToken } from '../src/crypto-utils.ts';
import { FakeClock, client, openTestPglite, startTestServer, uniqueEmail, type RunningServer } from './helpers.ts';

let store: Store;
let server: RunningServer;
let clock: FakeClock;
let api: ReturnType<typeof client>;

beforeAll(async () => {
  store = await openTestPglite();
  clock = new FakeClock();
  server = await startTestServer({ store, now: clock.now });
  api = client(server);
});
afterAll(async () => {
  await server?.close();
  await store?.close();
});

describe('register, login, me', () => {
  it('registers a user, logs in with the token response shape, and reads /auth/me', async () => {
    const email = uniqueEmail();
    const registered = await api.post('/auth/register', { email: email.toUpperCase(), password: 'long enough', name: 'Ada' });
    expect(registered.status).toBe(201);
    expect(registered.body.user).toEqual({ id: expect.any(String), email, name: 'Ada', roles: ['user'] });

    const login = await api.login(email, 'long enough');
    expect(login.status).toBe(200);
    expect(login.headers.get('cache-control')).toBe('no-store');
    expect(login.body).toEqual({
      access_token: expect.stringMatching(/^[\w-]+\.[\w-]+\.[\w-]+$/),
      token_type: 'Bearer',
      expires_in: 300,
      refresh_token: expect.stringMatching(/^[\w-]{43}$/),
      user: registered.body.user,
    });

    const me = await api.get('/auth/me', api.bearer(login.body.access_token));
    expect(me.status).toBe(200);
    expect(me.body).toEqual(registered.body.user);
  });

  it('refuses a taken e-mail (409 email_taken) and a short password (400 weak_password)', async () => {
    const email = uniqueEmail();
    await api.register(email);
    const again = await api.post('/auth/register', { email: ` ${email.toUpperCase()} `, password: 'another password' });
    expect(again.status).toBe(409);
    expect(again.body.error).toBe('email_taken');
    const weak = await api.post('/auth/register', { email: uniqueEmail(), password: 'short' });
    expect(weak.status).toBe(400);
    expect(weak.body).toEqual({ error: 'weak_password', error_description: expect.any(String) });
  });

  it('answers /auth/me without or with a garbage token with 401 invalid_token and a Bearer challenge', async () => {
    for (const headers of [{} as Record<string, string>, { authorization: 'Bearer nope' }, { authorization: 'Basic abc' }]) {
      const res = await api.get('/auth/me', headers);
      expect(res.status).toBe(401);
      expect(res.body.error).toBe('invalid_token');
      expect(res.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
    }
  });

  it('stores refresh tokens only as SHA-256 hashes', async () => {
    const s = await api.session();
    const record = await store.findRefreshToken(hashToken(s.refresh_token));
    expect(record).not.toBeNull();
    expect(record!.tokenHash).toBe(hashToken(s.refresh_token));
    expect(JSON.stringify(record)).not.toContain(s.refresh_token);
  });
});

describe('refresh rotation', () => {
  it('rotates: a refresh returns a new refresh token and a working access token', async () => {
    const s = await api.session();
    const r1 = await api.refresh(s.refresh_token);
    expect(r1.status).toBe(200);
    expect(r1.body.refresh_token).not.toBe(s.refresh_token);
    expect(r1.body.user.id).toBe(s.user.id);
    expect((await api.get('/api/data', api.bearer(r1.body.access_token))).status).toBe(200);
    const r2 = await api.refresh(r1.body.refresh_token);
    expect(r2.status).toBe(200);
  });

  it('reuse of a rotated token → 400 invalid_grant, the successor is revoked too, and a security event is recorded', async () => {
    const s = await api.session();
    const r1 = await api.refresh(s.refresh_token);
    const r2 = await api.refresh(r1.body.refresh_token);
    expect(r2.status).toBe(200);

    const reused = await api.refresh(s.refresh_token);
    expect(reused.status).toBe(400);
    expect(reused.body).toEqual({ error: 'invalid_grant', error_description: expect.any(String) });

    const successor = await api.refresh(r2.body.refresh_token);
    expect(successor.status).toBe(400);
    expect(successor.body.error).toBe('invalid_grant');

    const events = await store.listSecurityEvents({ userId: s.user.id });
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ kind: 'refresh_token_reuse', userId: s.user.id });
    expect(JSON.stringify(events)).not.toContain(s.refresh_token);
  });

  it('rejects unknown and empty refresh tokens with invalid_grant / invalid_request', async () => {
    const unknown = await api.refresh('A'.repeat(43));
    expect(unknown.status).toBe(400);
    expect(unknown.body.error).toBe('invalid_grant');
    const missing = await api.post('/auth/refresh', {});
    expect(missing.status).toBe(400);
    expect(missing.body).toEqual({ error: 'invalid_request', error_description: 'refresh_token: is required.' });
  });

  it('100 parallel refreshes with one token give exactly one 200 (no grace window)', async () => {
    const s = await api.session();
    const results = await Promise.all(Array.from({ length: 100 }, () => api.refresh(s.refresh_token)));
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    expect(results.filter((r) => r.status === 400 && r.body.error === 'invalid_grant')).toHaveLength(99);
  });

  it('logout revokes the family (204) and is idempotent, also for unknown tokens', async () => {
    const s = await api.session();
    const r1 = await api.refresh(s.refresh_token);
    const out = await api.post('/auth/logout', { refresh_token: r1.body.refresh_token });
    expect(out.status).toBe(204);
    expect((await api.refresh(r1.body.refresh_token)).body.error).toBe('invalid_grant');
    expect((await api.post('/auth/logout', { refresh_token: r1.body.refresh_token })).status).toBe(204);
    expect((await api.post('/auth/logout', { refresh_token: 'never-issued' })).status).toBe(204);
  });
});

describe('refresh lifetimes (injected clock)', () => {
  it('idle lifetime: a token unused for longer than refreshIdleTtl is rejected; using it in time extends the session', async () => {
    const s = await api.session();
    clock.advance(6 * 24 * 3600 * 1000); // 6 days < 7-day idle lifetime
    const r1 = await api.refresh(s.refresh_token);
    expect(r1.status).toBe(200);
    clock.advance(7 * 24 * 3600 * 1000 + 1); // idle past 7 days
    const r2 = await api.refresh(r1.body.refresh_token);
    expect(r2.status).toBe(400);
    expect(r2.body.error).toBe('invalid_grant');
  });

  it('absolute lifetime: the family ends after refreshAbsoluteTtl even when used every day', async () => {
    const s = await api.session();
    let token = s.refresh_token;
    for (let day = 0; day < 29; day++) {
      clock.advance(24 * 3600 * 1000);
      const r = await api.refresh(token);
      expect(r.status).toBe(200);
      token = r.body.refresh_token;
    }
    clock.advance(24 * 3600 * 1000); // day 30: absolute lifetime reached
    const last = await api.refresh(token);
    expect(last.status).toBe(400);
    expect(last.body.error).toBe('invalid_grant');
  });

  it('access tokens expire after accessTokenTtl: /api/data then answers 401', async () => {
    const s = await api.session();
    clock.advance(299_000);
    expect((await api.get('/api/data', api.bearer(s.access_token))).status).toBe(200);
    clock.advance(2_000); // exp is whole seconds rounded up: a token lives ttl to ttl + 1 s
    const expired = await api.get('/api/data', api.bearer(s.access_token));
    expect(expired.status).toBe(401);
    expect(expired.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
  });
});

describe('reuse grace window', () => {
  let graceServer: RunningServer;
  let g: ReturnType<typeof client>;
  beforeAll(async () => {
    graceServer = await startTestServer({ store, now: clock.now, reuseGraceMs: 5_000 });
    g = client(graceServer);
  });
  afterAll(() => graceServer?.close());

  it('within the window the just-rotated token returns the same successor pair', async () => {
    const s = await g.session();
    const first = await g.refresh(s.refresh_token);
    clock.advance(4_000);
    const again = await g.refresh(s.refresh_token);
    expect(again.status).toBe(200);
    expect(again.body.refresh_token).toBe(first.body.refresh_token);
    expect(again.body.access_token).toBe(first.body.access_token);
    expect((await g.refresh(first.body.refresh_token)).status).toBe(200);
  });

  it('after the window the same presentation is reuse: family revoked', async () => {
    const s = await g.session();
    const first = await g.refresh(s.refresh_token);
    clock.advance(5_001);
    const late = await g.refresh(s.refresh_token);
    expect(late.status).toBe(400);
    expect(late.body.error).toBe('invalid_grant');
    expect((await g.refresh(first.body.refresh_token)).status).toBe(400);
  });

  it('once the successor was itself rotated, the old token is reuse even inside the window', async () => {
    const s = await g.session();
    const first = await g.refresh(s.refresh_token);
    const second = await g.refresh(first.body.refresh_token);
    const stale = await g.refresh(s.refresh_token);
    expect(stale.status).toBe(400);
    expect((await g.refresh(second.body.refresh_token)).status).toBe(400);
  });

  it('racing tabs: 20 parallel refreshes with one token all get the same successor', async () => {
    const s = await g.session();
    const results = await Promise.all(Array.from({ length: 20 }, () => g.refresh(s.refresh_token)));
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(new Set(results.map((r) => r.body.refresh_token)).size).toBe(1);
  });
});

describe('password reset and change', () => {
  it('forgot → outbox → reset: old password fails, new works, reset token is single use, sessions revoked', async () => {
    const s = await api.session('old password 1');
    const forgot = await api.post('/auth/forgot-password', { email: s.email });
    expect(forgot.status).toBe(202);
    expect(forgot.body).toEqual({});
    const [message] = await store.listOutbox(s.email);
    expect(message).toMatchObject({ kind: 'password_reset', recipient: s.email });
    const token = message!.payload.token as string;
    expect(message!.payload.link).toBe(`${server.url}/reset-password?token=${token}`);

    const weak = await api.post('/auth/reset-password', { token, password: 'short' });
    expect(weak.body.error).toBe('weak_password');
    const reset = await api.post('/auth/reset-password', { token, password: 'new password 2' });
    expect(reset.status).toBe(204);
    const again = await api.post('/auth/reset-password', { token, password: 'new password 3' });
    expect(again.status).toBe(400);
    expect(again.body.error).toBe('invalid_token');

    expect((await api.login(s.email, 'old password 1')).status).toBe(401);
    expect((await api.login(s.email, 'new password 2')).status).toBe(200);
    expect((await api.refresh(s.refresh_token)).body.error).toBe('invalid_grant');
  });

  it('builds reset links from the server URL, not from a forged Host header', async () => {
    const s = await api.session();
    const { request } = await import('node:http');
    await new Promise<void>((resolve, reject) => {
      const req = request(`${server.url}/auth/forgot-password`, { method: 'POST', headers: { host: 'evil.example', 'content-type': 'application/json' } }, (res) => {
        res.resume();
        res.on('end', resolve);
      });
      req.on('error', reject);
      req.end(JSON.stringify({ email: s.email }));
    });
    const [message] = await store.listOutbox(s.email);
    expect(message!.payload.link).toMatch(new RegExp(`^${server.url}/reset-password\\?token=`));
  });

  it('forgot-password answers 202 {} for unknown e-mails and writes nothing', async () => {
    const email = uniqueEmail('ghost');
    const res = await api.post('/auth/forgot-password', { email });
    expect(res.status).toBe(202);
    expect(res.body).toEqual({});
    expect(await store.listOutbox(email)).toEqual([]);
  });

  it('reset tokens expire after 15 minutes', async () => {
    const s = await api.session();
    await api.post('/auth/forgot-password', { email: s.email });
    const token = (await store.listOutbox(s.email))[0]!.payload.token as string;
    clock.advance(15 * 60 * 1000);
    const res = await api.post('/auth/reset-password', { token, password: 'new password 2' });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_token');
  });

  it('change-password: wrong current → 401 invalid_credentials; right → 204 and the new password logs in', async () => {
    const s = await api.session('first password');
    const auth = api.bearer(s.access_token);
    const wrong = await api.post('/auth/change-password', { current_password: 'nope nope', new_password: 'second password' }, auth);
    expect(wrong.status).toBe(401);
    expect(wrong.body.error).toBe('invalid_credentials');
    const noBearer = await api.post('/auth/change-password', { current_password: 'first password', new_password: 'second password' });
    expect(noBearer.status).toBe(401);
    expect(noBearer.body.error).toBe('invalid_token');
    const ok = await api.post('/auth/change-password', { current_password: 'first password', new_password: 'second password' }, auth);
    expect(ok.status).toBe(204);
    expect((await api.login(s.email, 'first password')).status).toBe(401);
    expect((await api.login(s.email, 'second password')).status).toBe(200);
  });
});

describe('staticDir', () => {
  it('serves the given folder at / while the API keeps working', async () => {
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'tessera-static-'));
    writeFileSync(join(dir, 'index.html'), '<h1>demo page</h1>');
    const withPage = await startTestServer({ store, staticDir: dir });
    try {
      const home = await fetch(`${withPage.url}/`);
      expect(await home.text()).toBe('<h1>demo page</h1>');
      expect((await client(withPage).get('/.well-known/jwks.json')).status).toBe(200);
      expect((await client(withPage).get('/missing.js')).body.error).toBe('not_found');
    } finally {
      await withPage.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('sample API, JWKS and fallbacks', () => {
  it('GET /api/data and POST /api/echo return the subject; echo keeps the body', async () => {
    const s = await api.session();
    const data = await api.get('/api/data', api.bearer(s.access_token));
    expect(data.body).toEqual({ sub: s.user.id, items: expect.any(Array) });
    const payload = { nested: { list: [1, 'two', null] }, unicode: 'Grüße 🌍' };
    const echo = await api.post('/api/echo', payload, api.bearer(s.access_token));
    expect(echo.body).toEqual({ sub: s.user.id, body: payload });
    expect((await api.post('/api/echo', payload)).status).toBe(401);
  });

  it('publishes an ES256 public key without the private part', async () => {
    const jwks = await api.get('/.well-known/jwks.json');
    expect(jwks.status).toBe(200);
    expect(jwks.body.keys).toHaveLength(1);
    expect(jwks.body.keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig', kid: expect.any(String) });
    expect(jwks.body.keys[0].d).toBeUndefined();
  });

  it('serves a status page at / and 404 not_found JSON for unknown routes', async () => {
    const home = await fetch(`${server.url}/`);
    expect(home.status).toBe(200);
    expect(await home.text()).toContain('/auth/refresh');
    const missing = await api.get('/no/such/route');
    expect(missing.status).toBe(404);
    expect(missing.body.error).toBe('not_found');
    expect((await api.get('/__stats')).status).toBe(404);
  });
});
