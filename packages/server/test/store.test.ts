import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPgliteStore } from '../src/store/pglite.ts';
import { openPostgresStore } from '../src/store/postgres.ts';
import type { NewRefreshToken, SigningKeyRecord, Store, UserRecord } from '../src/store/types.ts';
import { LoginThrottle } from '../src/throttle.ts';
import { FakeClock, freshPostgresDatabase } from './helpers.ts';

function user(): UserRecord {
  return { id: randomUUID(), email: `${randomUUID()}@example.test`, name: null, roles: ['user'], passwordHash: 'x', createdAt: 1 };
}

function token(userId: string, familyId: string = randomUUID(), parentId: string | null = null): NewRefreshToken {
  return {
    id: randomUUID(),
    tokenHash: randomUUID(),
    familyId,
    parentId,
    userId,
    createdAt: 1000,
    idleExpiresAt: 2000,
    absoluteExpiresAt: 3000,
  };
}

function key(kid: string, activatesAt = 0): SigningKeyRecord {
  return { kid, privateJwk: '{}', publicJwk: '{}', createdAt: 0, activatesAt, retiresAt: null };
}

interface Backend {
  name: string;
  open(): Promise<{ store: Store; reopen(): Promise<Store>; cleanup(): Promise<void> }>;
}

const backends: Backend[] = [
  {
    name: 'PGlite',
    async open() {
      const store = await openPgliteStore();
      return { store, reopen: async () => store, cleanup: () => store.close() };
    },
  },
  {
    name: 'PostgreSQL',
    async open() {
      const db = await freshPostgresDatabase();
      const store = await openPostgresStore(db.url);
      const extra: Store[] = [];
      return {
        store,
        reopen: async () => {
          const s = await openPostgresStore(db.url);
          extra.push(s);
          return s;
        },
        async cleanup() {
          await Promise.all([store, ...extra].map((s) => s.close()));
          await db.drop();
        },
      };
    },
  },
];

describe.each(backends)('store contract on $name', (backend) => {
  let store: Store;
  let reopen: () => Promise<Store>;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    ({ store, reopen, cleanup } = await backend.open());
  });
  afterAll(() => cleanup?.());

  it('migrations are idempotent and safe when several instances migrate at once', async () => {
    const others = await Promise.all([reopen(), reopen(), reopen()]);
    await Promise.all([store.migrate(), ...others.map((s) => s.migrate())]);
    const u = user();
    expect(await store.createUser(u)).toMatchObject({ id: u.id });
  });

  it('createUser returns null for a taken e-mail and round-trips fields', async () => {
    const u = { ...user(), name: "O'Brien; DROP TABLE users; --", roles: ['user', 'admin'] };
    expect(await store.createUser(u)).toEqual(u);
    expect(await store.createUser({ ...user(), email: u.email })).toBeNull();
    expect(await store.findUserByEmail(u.email)).toEqual(u);
    expect(await store.findUserById(u.id)).toEqual(u);
    expect(await store.findUserById('missing')).toBeNull();
  });

  it('rotateRefreshToken: of 100 concurrent rotations of one token exactly one wins', async () => {
    const u = user();
    await store.createUser(u);
    const parent = token(u.id);
    await store.insertRefreshToken(parent);
    const wins = await Promise.all(
      Array.from({ length: 100 }, () => store.rotateRefreshToken(parent.id, 1500, null, token(u.id, parent.familyId, parent.id))),
    );
    expect(wins.filter(Boolean)).toHaveLength(1);
    const after = await store.findRefreshToken(parent.tokenHash);
    expect(after?.usedAt).toBe(1500);
    expect(after?.successorId).not.toBeNull();
  });

  it('exchangeRefreshToken (one statement): of 100 concurrent exchanges of one token exactly one wins; used, revoked and expired tokens are not exchanged', async () => {
    const u = user();
    await store.createUser(u);
    const parent = token(u.id);
    await store.insertRefreshToken(parent);
    const child = () => ({ id: randomUUID(), tokenHash: randomUUID(), idleExpiresAt: 2500 });
    const results = await Promise.all(Array.from({ length: 100 }, () => store.exchangeRefreshToken(parent.tokenHash, 1500, child())));
    const won = results.filter((r) => r !== null);
    expect(won).toEqual([{ user: u, expiresAt: 2500 }]);
    const after = await store.findRefreshToken(parent.tokenHash);
    expect(after?.usedAt).toBe(1500);

    const fresh = token(u.id);
    await store.insertRefreshToken(fresh);
    expect(await store.exchangeRefreshToken(fresh.tokenHash, 2000, child())).toBeNull(); // idle expiry 2000
    const next = { ...child(), idleExpiresAt: 9999 };
    expect(await store.exchangeRefreshToken(fresh.tokenHash, 1999, next)).toEqual({ user: u, expiresAt: 3000 });
    expect((await store.findRefreshSession(next.tokenHash))?.token).toMatchObject({
      id: next.id, familyId: fresh.familyId, parentId: fresh.id, createdAt: 1999, idleExpiresAt: 9999, absoluteExpiresAt: 3000, usedAt: null,
    });
    expect((await store.findRefreshToken(fresh.tokenHash))?.successorId).toBe(next.id);
    const revoked = token(u.id);
    await store.insertRefreshToken(revoked);
    await store.revokeFamily(revoked.familyId, 1100);
    expect(await store.exchangeRefreshToken(revoked.tokenHash, 1200, child())).toBeNull();
    expect(await store.exchangeRefreshToken('unknown', 1200, child())).toBeNull();
  });

  it('a revoked token cannot be rotated; revokeFamily and revokeAllForUser count what they revoke', async () => {
    const u = user();
    await store.createUser(u);
    const a = token(u.id);
    const b = token(u.id);
    await store.insertRefreshToken(a);
    await store.insertRefreshToken(b);
    expect(await store.revokeFamily(a.familyId, 1600)).toBe(1);
    expect(await store.revokeFamily(a.familyId, 1700)).toBe(0);
    expect(await store.rotateRefreshToken(a.id, 1800, null, token(u.id, a.familyId, a.id))).toBe(false);
    expect((await store.findRefreshToken(a.tokenHash))?.revokedAt).toBe(1600);
    expect(await store.revokeAllForUser(u.id, 1900)).toBe(1);
  });

  it('password resets are single use, also under concurrency, and expire', async () => {
    const u = user();
    await store.createUser(u);
    await store.insertPasswordReset({ id: randomUUID(), tokenHash: 'h1', userId: u.id, createdAt: 0, expiresAt: 100 });
    const results = await Promise.all(Array.from({ length: 10 }, () => store.consumePasswordReset('h1', 50)));
    expect(results.filter((r) => r === u.id)).toHaveLength(1);
    await store.insertPasswordReset({ id: randomUUID(), tokenHash: 'h2', userId: u.id, createdAt: 0, expiresAt: 100 });
    expect(await store.consumePasswordReset('h2', 100)).toBeNull();
  });

  it('security events and outbox messages round-trip and filter', async () => {
    const u = user();
    await store.createUser(u);
    const event = { id: randomUUID(), kind: 'refresh_token_reuse', userId: u.id, familyId: 'f', detail: { n: 1 }, createdAt: 5 };
    await store.insertSecurityEvent(event);
    expect(await store.listSecurityEvents({ userId: u.id })).toEqual([event]);
    expect(await store.listSecurityEvents({ familyId: 'f', userId: u.id })).toEqual([event]);
    const message = { id: randomUUID(), kind: 'password_reset' as const, recipient: u.email, payload: { link: 'x' }, createdAt: 6 };
    await store.insertOutbox(message);
    expect(await store.listOutbox(u.email)).toEqual([message]);
  });

  it('stores text with quotes, backslashes and unicode verbatim (parameterised queries)', async () => {
    const u = { ...user(), name: `'); DELETE FROM users; -- \\ "x" 𝄞 Ωmega` };
    await store.createUser(u);
    expect((await store.findUserById(u.id))?.name).toBe(u.name);
  });

  it('LoginThrottle blocks at the limit, reports the wait until the oldest counted failure leaves the window, and resets', async () => {
    const clock = new FakeClock();
    const t = new LoginThrottle({ store, windowMs: 1000, now: clock.now });
    const k = `account:${randomUUID()}`;
    await t.fail(k);
    clock.advance(100);
    await t.fail(k);
    expect(await t.retryAfterMs(k, 3)).toBe(0);
    await t.fail(k);
    expect(await t.retryAfterMs(k, 3)).toBe(900);
    clock.advance(900);
    expect(await t.retryAfterMs(k, 3)).toBe(0);
    await t.reset(k);
    await t.fail(k);
    expect(await t.retryAfterMs(k, 2)).toBe(0);
  });

  it('LoginThrottle counts failures recorded through another connection (one limit for every instance)', async () => {
    const clock = new FakeClock();
    const other = await reopen();
    const [a, b] = [store, other].map((s) => new LoginThrottle({ store: s, windowMs: 60_000, now: clock.now }));
    const k = `account:${randomUUID()}`;
    await a!.fail(k);
    await b!.fail(k, `address:${randomUUID()}`);
    expect(await a!.retryAfterMs(k, 2)).toBe(60_000);
    expect(await b!.retryAfterMs(k, 3)).toBe(0);
  });

  it('signing keys: concurrent ensureSigningKey calls leave one key; a rotation retires the old one at the given time', async () => {
    const others = await Promise.all([reopen(), reopen()]);
    await Promise.all([store, ...others].map((s, i) => s.ensureSigningKey(key(`first-${i}`))));
    const first = await store.listSigningKeys(0);
    expect(first).toHaveLength(1);
    await store.rotateSigningKey(key('second', 500), 1500);
    expect((await store.listSigningKeys(1000)).map((k) => [k.kid, k.retiresAt])).toEqual([
      [first[0]!.kid, 1500],
      ['second', null],
    ]);
    expect((await store.listSigningKeys(1500)).map((k) => k.kid)).toEqual(['second']);
    await store.ensureSigningKey(key('ignored'));
    expect((await store.listSigningKeys(2000)).map((k) => k.kid)).toEqual(['second']);
  });
});
