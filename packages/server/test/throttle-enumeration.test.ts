import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../src/store/types.ts';
import { FakeClock, client, openTestPglite, startTestServer, uniqueEmail, type RunningServer } from './helpers.ts';

let store: Store;
const clock = new FakeClock();
let server: RunningServer;
let api: ReturnType<typeof client>;

beforeAll(async () => {
  store = await openTestPglite();
  // Address limit raised here so the account-limit tests do not trip it; it has its own server below.
  server = await startTestServer({ store, now: clock.now, throttle: { maxFailuresPerAddress: 1000 } });
  api = client(server);
});
afterAll(async () => {
  await server?.close();
  await store?.close();
});

describe('login throttling', () => {
  it('5 failures for an account → 429 too_many_attempts with Retry-After, even for the right password; lifts after 15 min', async () => {
    const email = uniqueEmail();
    await api.register(email);
    for (let i = 0; i < 5; i++) expect((await api.login(email, 'wrong password')).status).toBe(401);
    const blocked = await api.login(email);
    expect(blocked.status).toBe(429);
    expect(blocked.body).toEqual({ error: 'too_many_attempts', error_description: expect.any(String) });
    expect(blocked.headers.get('retry-after')).toBe('900');
    clock.advance(10 * 60 * 1000);
    expect((await api.login(email)).headers.get('retry-after')).toBe('300');
    clock.advance(5 * 60 * 1000);
    expect((await api.login(email)).status).toBe(200);
  });

  it('a success resets the account counter', async () => {
    const email = uniqueEmail();
    await api.register(email);
    for (let i = 0; i < 4; i++) await api.login(email, 'wrong password');
    expect((await api.login(email)).status).toBe(200);
    for (let i = 0; i < 4; i++) expect((await api.login(email, 'wrong password')).status).toBe(401);
    expect((await api.login(email)).status).toBe(200);
  });

  it('unknown e-mails are throttled like known ones (no enumeration through 429)', async () => {
    const email = uniqueEmail('ghost');
    for (let i = 0; i < 5; i++) expect((await api.login(email, 'whatever pw')).status).toBe(401);
    expect((await api.login(email, 'whatever pw')).status).toBe(429);
  });

  it('20 failures from one address across accounts → 429 for any account from that address', async () => {
    const strict = await startTestServer({ store, now: clock.now });
    // Counters live in the shared store: the failures of the tests above (same address) count here too
    // until they leave the window.
    clock.advance(16 * 60 * 1000);
    try {
      const c = client(strict);
      const email = uniqueEmail();
      await c.register(email);
      for (let i = 0; i < 20; i++) expect((await c.login(uniqueEmail('spray'), 'wrong password')).status).toBe(401);
      const blocked = await c.login(email);
      expect(blocked.status).toBe(429);
      expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(0);
    } finally {
      await strict.close();
    }
  });
});

describe('no account enumeration', () => {
  it('unknown e-mail and wrong password give identical status and body', async () => {
    const email = uniqueEmail();
    await api.register(email);
    const wrongPassword = await api.login(email, 'not the password');
    const unknownEmail = await api.login(uniqueEmail('nobody'), 'not the password');
    expect(wrongPassword.status).toBe(401);
    expect(unknownEmail.status).toBe(wrongPassword.status);
    expect(unknownEmail.body).toEqual(wrongPassword.body);
    expect(unknownEmail.body).toEqual({ error: 'invalid_credentials', error_description: expect.any(String) });
  });

  it('unknown e-mails cost a password hash too (similar timing at the default scrypt cost)', async () => {
    const slow = await startTestServer({ store, now: clock.now, scryptCost: 16384, throttle: { maxFailuresPerAccount: 100, maxFailuresPerAddress: 1000 } });
    try {
      const c = client(slow);
      const email = uniqueEmail();
      await c.register(email);
      // Interleaved samples so load changes on the machine hit both sides alike.
      const known: number[] = [];
      const unknown: number[] = [];
      const time = async (into: number[], fn: () => Promise<unknown>) => {
        const t = performance.now();
        await fn();
        into.push(performance.now() - t);
      };
      for (let i = 0; i < 7; i++) {
        await time(known, () => c.login(email, 'wrong password'));
        await time(unknown, () => c.login(uniqueEmail('nobody'), 'wrong password'));
      }
      const median = (xs: number[]) => xs.sort((a, b) => a - b)[3]!;
      const ratio = median(unknown) / median(known);
      expect(ratio).toBeGreaterThan(0.33);
      expect(ratio).toBeLessThan(3);
    } finally {
      await slow.close();
    }
  });
});
