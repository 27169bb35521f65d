import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../src/store/types.ts';
import { ensureUser } from '../src/users.ts';
import { TEST_SCRYPT_COST, client, openTestPglite, startTestServer, type RunningServer } from './helpers.ts';

const DEMO = { email: 'demo@tessera.dev', password: 'tessera-demo' };
let store: Store;
let server: RunningServer;
let api: ReturnType<typeof client>;
let access: string;

beforeAll(async () => {
  store = await openTestPglite();
  server = await startTestServer({ store, throttle: { maxFailuresPerAddress: 1000 } });
  api = client(server);
  await ensureUser(store, { ...DEMO, name: 'Demo User' }, TEST_SCRYPT_COST);
  access = (await api.login(DEMO.email, DEMO.password)).body.access_token;
});
afterAll(async () => {
  await server?.close();
  await store?.close();
});

const JSON_CT = { 'content-type': 'application/json' };
const login = (body: string) => ({ path: '/auth/login', body, headers: JSON_CT });
const register = (value: unknown) => ({ path: '/auth/register', body: JSON.stringify(value), headers: JSON_CT });

interface Case {
  name: string;
  method?: string;
  path: string;
  body?: string | Uint8Array | (() => ReadableStream<Uint8Array>);
  headers?: Record<string, string>;
  auth?: boolean;
  status: number;
  error: string;
}

const cases: Case[] = [
  { name: 'malformed JSON', ...login('{"email": "a@b.c", '), status: 400, error: 'invalid_request' },
  { name: 'JSON array instead of object', ...login('[]'), status: 400, error: 'invalid_request' },
  { name: 'JSON null', ...login('null'), status: 400, error: 'invalid_request' },
  { name: 'JSON string', ...login('"hello"'), status: 400, error: 'invalid_request' },
  { name: 'JSON number', ...login('42'), status: 400, error: 'invalid_request' },
  { name: 'empty body with JSON content type', ...login(''), status: 400, error: 'invalid_request' },
  { name: 'email as number', ...login('{"email": 1, "password": "x"}'), status: 400, error: 'invalid_request' },
  { name: 'email as object', ...login('{"email": {"$ne": null}, "password": "x"}'), status: 400, error: 'invalid_request' },
  { name: 'password as array', ...login('{"email": "a@b.c", "password": ["a"]}'), status: 400, error: 'invalid_request' },
  { name: 'password as boolean', ...login('{"email": "a@b.c", "password": true}'), status: 400, error: 'invalid_request' },
  { name: 'missing password', ...login('{"email": "a@b.c"}'), status: 400, error: 'invalid_request' },
  { name: 'body over the size limit', ...login(JSON.stringify({ email: 'a@b.c', password: 'x'.repeat(20_000) })), status: 413, error: 'payload_too_large' },
  {
    name: 'chunked body over the size limit (no Content-Length)',
    path: '/auth/login',
    headers: JSON_CT,
    body: () =>
      new ReadableStream({
        start(controller) {
          for (let i = 0; i < 40; i++) controller.enqueue(new TextEncoder().encode(' '.repeat(1024)));
          controller.close();
        },
      }),
    status: 413,
    error: 'payload_too_large',
  },
  { name: 'text/plain content type', path: '/auth/login', body: '{"email":"a@b.c","password":"x"}', headers: { 'content-type': 'text/plain' }, status: 415, error: 'unsupported_media_type' },
  { name: 'form-encoded body', path: '/auth/login', body: 'email=a%40b.c&password=x', headers: { 'content-type': 'application/x-www-form-urlencoded' }, status: 415, error: 'unsupported_media_type' },
  { name: 'no content type', path: '/auth/register', body: '{"email":"a@b.c","password":"xxxxxxxxxx"}', headers: {}, status: 415, error: 'unsupported_media_type' },
  { name: 'SQL injection in login email', ...login(JSON.stringify({ email: "' OR '1'='1' --", password: "' OR '1'='1" })), status: 401, error: 'invalid_credentials' },
  { name: 'SQL injection against the demo account', ...login(JSON.stringify({ email: "demo@tessera.dev' --", password: 'x' })), status: 401, error: 'invalid_credentials' },
  { name: 'SQL injection in register email', ...register({ email: "x@y.z'); DROP TABLE users; --", password: 'long enough' }), status: 400, error: 'invalid_request' },
  { name: 'very long email', ...register({ email: `${'a'.repeat(5000)}@b.c`, password: 'long enough' }), status: 400, error: 'invalid_request' },
  { name: 'very long password', ...register({ email: 'long@b.c', password: 'p'.repeat(5000) }), status: 400, error: 'invalid_request' },
  { name: 'NUL byte in email', ...login(JSON.stringify({ email: 'demo@tessera.dev\u0000', password: DEMO.password })), status: 400, error: 'invalid_request' },
  { name: 'NUL byte in name', ...register({ email: 'nul@b.c', password: 'long enough', name: 'a\u0000b' }), status: 400, error: 'invalid_request' },
  { name: 'unpaired surrogate in email', ...login('{"email": "\\ud800@b.c", "password": "xxxxxxxx"}'), status: 400, error: 'invalid_request' },
  { name: 'invalid UTF-8 bytes', path: '/auth/login', body: new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), headers: JSON_CT, status: 400, error: 'invalid_request' },
  { name: 'unicode e-mail that is not registered', ...login(JSON.stringify({ email: 'ünïcödé@例え.テスト', password: 'pässwörd 🔑' })), status: 401, error: 'invalid_credentials' },
  { name: 'prototype pollution keys', ...login('{"__proto__": {"admin": true}, "constructor": {"prototype": {}}, "email": "a@b.c", "password": "xxxxxxxx"}'), status: 401, error: 'invalid_credentials' },
  { name: 'refresh_token as number', path: '/auth/refresh', body: '{"refresh_token": 123}', headers: JSON_CT, status: 400, error: 'invalid_request' },
  { name: 'very long refresh_token', path: '/auth/refresh', body: JSON.stringify({ refresh_token: 'r'.repeat(10_000) }), headers: JSON_CT, status: 400, error: 'invalid_request' },
  { name: 'SQL-shaped refresh_token', path: '/auth/refresh', body: JSON.stringify({ refresh_token: "x' OR 1=1; --" }), headers: JSON_CT, status: 400, error: 'invalid_grant' },
  { name: 'reset token as object', path: '/auth/reset-password', body: '{"token": {}, "password": "long enough"}', headers: JSON_CT, status: 400, error: 'invalid_request' },
  { name: 'forgot-password email as array', path: '/auth/forgot-password', body: '{"email": ["demo@tessera.dev"]}', headers: JSON_CT, status: 400, error: 'invalid_request' },
  { name: 'deeply nested JSON to echo (not an object where one is needed)', path: '/auth/login', body: '['.repeat(3000) + ']'.repeat(3000), headers: JSON_CT, status: 400, error: 'invalid_request' },
  { name: 'echo with a wrong content type', path: '/api/echo', body: '{"a":1}', headers: { 'content-type': 'text/json' }, auth: true, status: 415, error: 'unsupported_media_type' },
  { name: 'echo with malformed JSON', path: '/api/echo', body: '{"a":', headers: JSON_CT, auth: true, status: 400, error: 'invalid_request' },
  { name: 'garbage Authorization header', method: 'GET', path: '/api/data', headers: { authorization: 'Bearer \u00e9\u00e9' }, status: 401, error: 'invalid_token' },
  { name: 'wrong method on a known path', method: 'PUT', path: '/auth/login', body: '{}', headers: JSON_CT, status: 404, error: 'not_found' },
  { name: 'path traversal', method: 'GET', path: '/../../etc/passwd', status: 404, error: 'not_found' },
  { name: 'fault switch while faults are off', path: '/__faults', body: '{"failureRate": 1}', headers: JSON_CT, status: 404, error: 'not_found' },
];

describe('hostile input corpus', () => {
  it('has at least 25 cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(25);
  });

  it.each(cases)('$name → $status $error', async (c) => {
    const headers: Record<string, string> = { ...c.headers };
    if (c.auth) headers.authorization = `Bearer ${access}`;
    const body = typeof c.body === 'function' ? c.body() : c.body;
    const init: RequestInit & { duplex?: 'half' } = { method: c.method ?? 'POST', headers };
    if (body !== undefined) init.body = body as BodyInit;
    if (body instanceof ReadableStream) init.duplex = 'half';
    const res = await fetch(`${server.url}${c.path}`, init);
    expect(res.status).toBe(c.status);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    // A body refused unread closes the connection, and says so: no next request on a dropped socket.
    if (c.status === 413 || c.status === 415) expect(res.headers.get('connection')).toBe('close');
    const json = await res.json();
    expect(json).toEqual({ error: c.error, error_description: expect.any(String) });
  });

  it('leaves the server up and the data intact: the demo user still logs in', async () => {
    const res = await api.login(DEMO.email, DEMO.password);
    expect(res.status).toBe(200);
    expect((await api.get('/auth/me', api.bearer(res.body.access_token))).body.email).toBe(DEMO.email);
    expect(await store.findUserByEmail('long@b.c')).toBeNull();
  });

  it('names the offending field in invalid_request', async () => {
    const res = await api.post('/auth/login', { email: 'a@b.c', password: 5 });
    expect(res.body.error_description).toBe('password: expected a string, got number.');
  });
});
