/**
 * Three server PROCESSES on one PostgreSQL behave as one server: traffic spread round-robin, refresh
 * tokens single use across instances, reuse seen by another instance revokes the family, every access
 * token verifies on every instance's JWKS, the login limit is global, and a key rotation in the middle
 * of a run fails no request.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgresStore } from '../src/store/postgres.ts';
import type { Store } from '../src/store/types.ts';
import { verifyRequest, type VerifyOptions } from '../src/verify.ts';
import { startInstances, type Instance } from '../tools/instances.ts';
import { TEST_SCRYPT_COST, client, freshPostgresDatabase, uniqueEmail, type JsonResponse } from './helpers.ts';

const USERS = 200;
const ROUNDS = 3;
const KEY_RELOAD_MS = 500;
const ACTIVATION_DELAY_MS = 3000;
const LONG = 240_000;

let db: Awaited<ReturnType<typeof freshPostgresDatabase>>;
let store: Store;
let instances: Instance[] = [];
let verifiers: VerifyOptions[];
let next = 0;
/** The next instance in round-robin order. */
const roundRobin = () => {
  const i = next++ % instances.length;
  return { i, api: client(instances[i]!) };
};
const kidOf = (jwt: string) => (JSON.parse(Buffer.from(jwt.split('.')[0]!, 'base64url').toString()) as { kid: string }).kid;
const bearer = (token: string) => new Request('http://resource.test/', { headers: { authorization: `Bearer ${token}` } });

/** Registers and logs in `n` users, spread round-robin; resolves their token responses. */
async function sessions(n: number): Promise<Array<{ email: string; refresh_token: string; access_token: string; user: { id: string } }>> {
  return Promise.all(
    Array.from({ length: n }, async () => {
      const email = uniqueEmail('multi');
      await roundRobin().api.register(email);
      const login = await roundRobin().api.login(email);
      expect(login.status).toBe(200);
      return { email, ...login.body };
    }),
  );
}

/** Every token verifies against every instance's JWKS. Resolves the failures (expected: none). */
async function verifyEverywhere(tokens: string[]): Promise<string[]> {
  const failures: string[] = [];
  for (const v of verifiers) {
    const results = await Promise.all(tokens.map((t) => verifyRequest(bearer(t), v)));
    for (const r of results) if (!r.ok) failures.push(`${String(v.jwksUrl)}: ${r.reason}`);
  }
  return failures;
}

beforeAll(async () => {
  db = await freshPostgresDatabase();
  store = await openPostgresStore(db.url);
  instances = await startInstances(3, {
    databaseUrl: db.url,
    scryptCost: TEST_SCRYPT_COST,
    keyReloadMs: KEY_RELOAD_MS,
    keyActivationDelayMs: ACTIVATION_DELAY_MS,
    throttle: { maxFailuresPerAccount: 5, maxFailuresPerAddress: 100_000 },
  });
  verifiers = instances.map((s) => ({
    jwksUrl: `${s.url}/.well-known/jwks.json`,
    issuer: 'tessera-reference-server',
    audience: 'tessera',
    // Under the activation delay, so a verifier may refetch for a new kid (see keyActivationDelayMs).
    jwksCooldownMs: 1000,
  }));
}, LONG);
afterAll(async () => {
  await Promise.all(instances.map((s) => s.stop()));
  await store?.close();
  await db?.drop();
}, LONG);

describe('three server processes on one PostgreSQL', () => {
  it(`${USERS} users refreshing concurrently round-robin: every refresh succeeds once, reuse on another instance revokes the family, every access token verifies on every instance`, async () => {
    const users = await sessions(USERS);
    const accessTokens = users.map((u) => u.access_token);
    // For each user: [token, index of the instance that rotated it] in order.
    const history = users.map(() => [] as Array<{ token: string; rotatedBy: number }>);
    const failed: JsonResponse[] = [];
    await Promise.all(
      users.map(async (u, n) => {
        let token = u.refresh_token;
        for (let round = 0; round < ROUNDS; round++) {
          const { i, api } = roundRobin();
          const res = await api.refresh(token);
          if (res.status !== 200) {
            failed.push(res);
            return;
          }
          history[n]!.push({ token, rotatedBy: i });
          accessTokens.push(res.body.access_token);
          token = res.body.refresh_token;
        }
        u.refresh_token = token;
      }),
    );
    expect(failed).toEqual([]);
    expect(accessTokens).toHaveLength(USERS * (ROUNDS + 1));

    // A rotated token presented again, to another instance than the one that rotated it.
    const reuse = await Promise.all(
      history.map(async (h) => {
        const { token, rotatedBy } = h[0]!;
        const other = (rotatedBy + 1) % instances.length;
        return client(instances[other]!).refresh(token);
      }),
    );
    expect(reuse.filter((r) => r.status === 400 && r.body.error === 'invalid_grant')).toHaveLength(USERS);
    // The family is revoked: the newest token fails too, on the third instance.
    const afterReuse = await Promise.all(
      users.map((u, n) => client(instances[(history[n]![0]!.rotatedBy + 2) % instances.length]!).refresh(u.refresh_token)),
    );
    expect(afterReuse.filter((r) => r.status === 400)).toHaveLength(USERS);
    const events = await store.listSecurityEvents();
    const reusedFamilies = new Set(events.filter((e) => e.kind === 'refresh_token_reuse').map((e) => e.userId));
    expect(users.every((u) => reusedFamilies.has(u.user.id))).toBe(true);

    expect(await verifyEverywhere(accessTokens)).toEqual([]);
  }, LONG);

  it('one token presented to all three instances at once: exactly one success per token', async () => {
    const users = await sessions(50);
    const results = await Promise.all(users.map((u) => Promise.all(instances.map((s) => client(s).refresh(u.refresh_token)))));
    expect(results.map((r) => r.filter((x) => x.status === 200).length)).toEqual(users.map(() => 1));
    expect(results.flat().filter((x) => x.status !== 200 && x.body.error !== 'invalid_grant')).toEqual([]);
  }, LONG);

  it('the 6th wrong password gets 429 whichever instance it reaches (the limit is global)', async () => {
    const email = uniqueEmail('throttled');
    await roundRobin().api.register(email);
    const statuses: number[] = [];
    for (let attempt = 0; attempt < 5; attempt++) statuses.push((await roundRobin().api.login(email, 'wrong password')).status);
    expect(statuses).toEqual([401, 401, 401, 401, 401]);
    for (const s of instances) {
      const res = await client(s).login(email, 'wrong password');
      expect(res.status).toBe(429);
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
      expect((await client(s).login(email)).status).toBe(429);
    }
  }, LONG);

  it('a signing-key rotation (the rotate-key command) in the middle of a run: 0 failed requests, both keys verify everywhere', async () => {
    const users = await sessions(USERS);
    const kidsBefore = new Set(users.map((u) => kidOf(u.access_token)));
    expect(kidsBefore.size).toBe(1);
    const oldKid = [...kidsBefore][0]!;
    const accessTokens: string[] = [];
    const failures: string[] = [];
    let newKidSeenAt = Infinity;
    let rotation: Promise<{ stdout: string }> | undefined;
    let done = 0;
    const deadline = Date.now() + 90_000;
    // Each user refreshes in a loop (and calls the API on another instance) until the new key has
    // signed for a second after the rotation; bounded by count and time.
    await Promise.all(
      users.map(async (u) => {
        let token = u.refresh_token;
        for (let step = 0; step < 200 && Date.now() < deadline && Date.now() < newKidSeenAt + 1000; step++) {
          const res = await roundRobin().api.refresh(token);
          if (res.status !== 200) {
            failures.push(`refresh ${res.status} ${JSON.stringify(res.body)}`);
            return;
          }
          token = res.body.refresh_token;
          const access = res.body.access_token as string;
          accessTokens.push(access);
          if (kidOf(access) !== oldKid) newKidSeenAt = Math.min(newKidSeenAt, Date.now());
          const data = await roundRobin().api.get('/api/data', { authorization: `Bearer ${access}` });
          if (data.status !== 200) failures.push(`api ${data.status}`);
          if (++done === USERS) {
            rotation = promisify(execFile)(
              process.execPath,
              ['--import', 'tsx', 'src/cli.ts', 'rotate-key', '--activation-delay-ms', String(ACTIVATION_DELAY_MS), '--access-ttl', '300'],
              { env: { ...process.env, DATABASE_URL: db.url }, timeout: 60_000 },
            );
          }
        }
      }),
    );
    expect(failures).toEqual([]);
    const { kid: newKid } = JSON.parse((await rotation!).stdout) as { kid: string };
    const kids = new Set(accessTokens.map(kidOf));
    expect(kids).toEqual(new Set([oldKid, newKid]));
    // Tokens of both keys verify on every instance's JWKS, the old key still published.
    expect(await verifyEverywhere(accessTokens)).toEqual([]);
    for (const s of instances) {
      const published = (await client(s).get('/.well-known/jwks.json')).body.keys.map((k: { kid: string }) => k.kid);
      expect(published).toEqual([oldKid, newKid]);
    }
  }, LONG);
});
