import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { openPgliteStore } from '../src/store/pglite.ts';
import type { Store } from '../src/store/types.ts';
import { startServer, type RunningServer } from '../src/server.ts';
import { silentLogger, type ServerOptions } from '../src/options.ts';

/** Scrypt cost used in tests: fast, still the real algorithm. */
export const TEST_SCRYPT_COST = 1024;

/** A clock the test moves by hand. */
export class FakeClock {
  #t: number;
  constructor(start = Date.UTC(2030, 0, 1)) {
    this.#t = start;
  }
  now = (): number => this.#t;
  advance(ms: number): void {
    this.#t += ms;
  }
}

/** An in-memory PGlite store; open one per test file (it takes seconds to start). */
export function openTestPglite(): Promise<Store> {
  return openPgliteStore();
}

/** Starts a server on 127.0.0.1:0 with test defaults (fast scrypt, silent logger). */
export function startTestServer(options: ServerOptions = {}): Promise<RunningServer> {
  return startServer({ scryptCost: TEST_SCRYPT_COST, logger: silentLogger, ...options });
}

export const uniqueEmail = (tag = 'user'): string => `${tag}-${randomUUID().slice(0, 8)}@example.test`;

export interface JsonResponse {
  status: number;
  headers: Headers;
  body: any;
}

async function toJson(res: Response): Promise<JsonResponse> {
  const text = await res.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    // leave as text; the test will notice
  }
  return { status: res.status, headers: res.headers, body };
}

/** A tiny client for one server: JSON in, `{ status, headers, body }` out. */
export function client(server: { url: string }) {
  const request = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const init: RequestInit = { method, headers: { ...headers } };
    if (body !== undefined) {
      init.body = typeof body === 'string' ? body : JSON.stringify(body);
      (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
    }
    return toJson(await fetch(`${server.url}${path}`, init));
  };
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  return {
    request,
    post: (path: string, body?: unknown, headers?: Record<string, string>) => request('POST', path, body, headers),
    get: (path: string, headers?: Record<string, string>) => request('GET', path, undefined, headers),
    bearer,
    async register(email: string, password = 'correct horse battery', name?: string) {
      const res = await request('POST', '/auth/register', { email, password, ...(name ? { name } : {}) });
      if (res.status !== 201) throw new Error(`register failed: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body.user as { id: string; email: string; name: string | null; roles: string[] };
    },
    login: (email: string, password = 'correct horse battery') => request('POST', '/auth/login', { email, password }),
    refresh: (refreshToken: string) => request('POST', '/auth/refresh', { refresh_token: refreshToken }),
    /** Registers and logs in a fresh user; resolves the token response body. */
    async session(password = 'correct horse battery') {
      const email = uniqueEmail();
      await this.register(email, password);
      const res = await this.login(email, password);
      if (res.status !== 200) throw new Error(`login failed: ${res.status}`);
      return { email, password, ...(res.body as { access_token: string; refresh_token: string; user: { id: string } }) };
    },
  };
}

/** Creates an empty database on the test PostgreSQL; resolves its URL and a drop function. */
export async function freshPostgresDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const adminUrl = inject('databaseUrl');
  const name = `tessera_test_${randomUUID().replaceAll('-', '').slice(0, 16)}`;
  const admin = new pg.Client(adminUrl);
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client(adminUrl);
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

export type { RunningServer };
