import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/app.ts';
import { resolveOptions, silentLogger } from '../src/options.ts';
import type { Store } from '../src/store/types.ts';
import { FakeClock, client, openTestPglite, startTestServer, uniqueEmail, type RunningServer } from './helpers.ts';

const ALLOWED = 'http://app.example';
let store: Store;
let server: RunningServer;
let api: ReturnType<typeof client>;

beforeAll(async () => {
  store = await openTestPglite();
  server = await startTestServer({ store, refreshTokenDelivery: 'cookie', corsOrigins: [ALLOWED], now: new FakeClock().now });
  api = client(server);
});
afterAll(async () => {
  await server?.close();
  await store?.close();
});

function refreshCookie(res: { headers: Headers }): { value: string; attributes: string[] } {
  const header = res.headers.getSetCookie().find((c) => c.startsWith('tessera_refresh='));
  if (!header) throw new Error('no tessera_refresh cookie');
  const [pair, ...attributes] = header.split(/;\s*/);
  return { value: pair!.slice('tessera_refresh='.length), attributes };
}

describe('refresh token in an httpOnly cookie', () => {
  it('login sets the cookie (HttpOnly, SameSite=Strict, Path=/auth, no Secure on http://127.0.0.1) and omits refresh_token', async () => {
    const email = uniqueEmail();
    await api.register(email);
    const login = await api.login(email);
    expect(login.status).toBe(200);
    expect(login.body.refresh_token).toBeUndefined();
    const cookie = refreshCookie(login);
    expect(cookie.value).toMatch(/^[\w-]{43}$/);
    expect(cookie.attributes).toEqual(expect.arrayContaining(['HttpOnly', 'SameSite=Strict', 'Path=/auth', 'Max-Age=604800']));
    expect(cookie.attributes).not.toContain('Secure');
  });

  it('refresh works from the cookie alone, rotates it, and the old cookie is then invalid_grant and cleared', async () => {
    const email = uniqueEmail();
    await api.register(email);
    const first = refreshCookie(await api.login(email)).value;
    const refreshed = await fetch(`${server.url}/auth/refresh`, { method: 'POST', headers: { cookie: `tessera_refresh=${first}` } });
    expect(refreshed.status).toBe(200);
    const body = await refreshed.json();
    expect(body.access_token).toEqual(expect.any(String));
    expect(body.refresh_token).toBeUndefined();
    const second = refreshCookie(refreshed).value;
    expect(second).not.toBe(first);

    const reused = await fetch(`${server.url}/auth/refresh`, {
      method: 'POST',
      headers: { cookie: `tessera_refresh=${first}`, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(reused.status).toBe(400);
    expect((await reused.json()).error).toBe('invalid_grant');
    expect(refreshCookie(reused).attributes).toContain('Max-Age=0');
  });

  it('logout revokes the cookie family and clears the cookie; without a cookie it is still 204', async () => {
    const email = uniqueEmail();
    await api.register(email);
    const token = refreshCookie(await api.login(email)).value;
    const out = await fetch(`${server.url}/auth/logout`, { method: 'POST', headers: { cookie: `tessera_refresh=${token}` } });
    expect(out.status).toBe(204);
    expect(refreshCookie(out).attributes).toEqual(expect.arrayContaining(['Max-Age=0', 'Path=/auth']));
    const after = await fetch(`${server.url}/auth/refresh`, { method: 'POST', headers: { cookie: `tessera_refresh=${token}` } });
    expect(after.status).toBe(400);
    expect((await fetch(`${server.url}/auth/logout`, { method: 'POST' })).status).toBe(204);
  });

  it('marks the cookie Secure when the server is reached by a non-local host name', async () => {
    const email = uniqueEmail();
    await api.register(email);
    const res = await server.app.app.request('http://auth.example/auth/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email, password: 'correct horse battery' }),
    });
    expect(res.status).toBe(200);
    expect(refreshCookie(res).attributes).toContain('Secure');
  });
});

describe('CORS', () => {
  it('answers a preflight from a configured origin with credentials allowed', async () => {
    const res = await fetch(`${server.url}/auth/refresh`, {
      method: 'OPTIONS',
      headers: { origin: ALLOWED, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe(ALLOWED);
    expect(res.headers.get('access-control-allow-credentials')).toBe('true');
    expect(res.headers.get('access-control-allow-headers')).toContain('Authorization');
  });

  it('gives a refused origin no CORS headers, on preflight and on the actual request', async () => {
    const pre = await fetch(`${server.url}/auth/login`, {
      method: 'OPTIONS',
      headers: { origin: 'http://evil.example', 'access-control-request-method': 'POST' },
    });
    expect(pre.headers.get('access-control-allow-origin')).toBeNull();
    const res = await fetch(`${server.url}/.well-known/jwks.json`, { headers: { origin: 'http://evil.example' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    const ok = await fetch(`${server.url}/.well-known/jwks.json`, { headers: { origin: ALLOWED } });
    expect(ok.headers.get('access-control-allow-origin')).toBe(ALLOWED);
    expect(ok.headers.get('vary')).toContain('Origin');
  });

  it('with the refresh token in the body: a listed origin gets CORS without credentials, others nothing', async () => {
    const body = await createApp({ store, corsOrigins: [ALLOWED], scryptCost: 1024, logger: silentLogger });
    try {
      const preflight = (origin: string) =>
        body.app.request('http://127.0.0.1/auth/login', {
          method: 'OPTIONS',
          headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
        });
      const ok = await preflight(ALLOWED);
      expect(ok.headers.get('access-control-allow-origin')).toBe(ALLOWED);
      expect(ok.headers.get('access-control-allow-methods')).toContain('POST');
      expect(ok.headers.get('access-control-allow-credentials')).toBeNull();
      const other = await preflight('http://127.0.0.1:1');
      expect(other.headers.get('access-control-allow-origin')).toBeNull();
      const jwks = await body.app.request('http://127.0.0.1/.well-known/jwks.json', { headers: { origin: ALLOWED } });
      expect(jwks.headers.get('access-control-allow-origin')).toBe(ALLOWED);
      expect(jwks.headers.get('access-control-allow-credentials')).toBeNull();
    } finally {
      await body.close();
    }
  });

  it('refuses a wildcard origin in the options', () => {
    expect(() => resolveOptions({ corsOrigins: ['*'] })).toThrow(TypeError);
  });
});
