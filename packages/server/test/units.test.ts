import { describe, expect, it } from 'vitest';
import { seal, unseal } from '../src/crypto-utils.ts';
import { resolveOptions } from '../src/options.ts';
import { hashPassword, verifyPassword } from '../src/passwords.ts';
import { LoginThrottle } from '../src/throttle.ts';
import { FakeClock } from './helpers.ts';

describe('passwords (scrypt)', () => {
  it('verifies the right password only, with a per-user salt', async () => {
    const a = await hashPassword('correct horse', 1024);
    const b = await hashPassword('correct horse', 1024);
    expect(a).toMatch(/^scrypt\$1024\$8\$1\$[\w-]+\$[\w-]+$/);
    expect(a).not.toBe(b);
    expect(await verifyPassword('correct horse', a)).toBe(true);
    expect(await verifyPassword('correct horsE', a)).toBe(false);
  });

  it('treats NFC and NFD spellings of a password as the same', async () => {
    const hash = await hashPassword('caf\u00e9 latte', 1024);
    expect(await verifyPassword('cafe\u0301 latte', hash)).toBe(true);
  });

  it('rejects malformed stored hashes instead of throwing', async () => {
    for (const stored of ['', 'bcrypt$x', 'scrypt$a$b$c$d$e', 'scrypt$1024$8$1$c2FsdA$c2hvcnQ']) {
      expect(await verifyPassword('x', stored)).toBe(false);
    }
  });
});

describe('LoginThrottle', () => {
  it('blocks at the limit, reports the wait until the oldest counted failure leaves the window, and resets', () => {
    const clock = new FakeClock();
    const t = new LoginThrottle({ windowMs: 1000, now: clock.now });
    t.fail('k');
    clock.advance(100);
    t.fail('k');
    expect(t.retryAfterMs('k', 3)).toBe(0);
    t.fail('k');
    expect(t.retryAfterMs('k', 3)).toBe(900);
    clock.advance(900);
    expect(t.retryAfterMs('k', 3)).toBe(0);
    t.reset('k');
    t.fail('k');
    expect(t.retryAfterMs('k', 2)).toBe(0);
  });

  it('bounds the number of remembered keys', () => {
    const t = new LoginThrottle({ windowMs: 1000, now: () => 0, maxKeys: 10 });
    for (let i = 0; i < 100; i++) t.fail(`k${i}`);
    expect(t.retryAfterMs('k0', 1)).toBe(0);
    expect(t.retryAfterMs('k99', 1)).toBe(1000);
  });
});

describe('seal / unseal (grace-window successor storage)', () => {
  it('round-trips only with the same secret and detects tampering', () => {
    const sealed = seal('secret-a', { refreshToken: 'r', accessToken: 'a' });
    expect(unseal('secret-a', sealed)).toEqual({ refreshToken: 'r', accessToken: 'a' });
    expect(unseal('secret-b', sealed)).toBeUndefined();
    const tampered = sealed.slice(0, -2) + (sealed.endsWith('A') ? 'BB' : 'AA');
    expect(unseal('secret-a', tampered)).toBeUndefined();
  });
});

describe('resolveOptions', () => {
  it('fills the documented defaults', () => {
    const o = resolveOptions();
    expect(o).toMatchObject({
      host: '127.0.0.1',
      port: 0,
      accessTokenTtl: 300,
      refreshIdleTtl: 604800,
      refreshAbsoluteTtl: 2592000,
      reuseGraceMs: 0,
      refreshTokenDelivery: 'body',
      scryptCost: 16384,
      faults: false,
      bodyLimit: 16384,
      throttle: { maxFailuresPerAccount: 5, maxFailuresPerAddress: 20, windowMs: 900000 },
    });
  });

  it('rejects nonsense with TypeError', () => {
    expect(() => resolveOptions({ scryptCost: 1000 })).toThrow(TypeError);
    expect(() => resolveOptions({ accessTokenTtl: 0 })).toThrow(TypeError);
    expect(() => resolveOptions({ reuseGraceMs: -1 })).toThrow(TypeError);
    expect(() => resolveOptions({ host: '0.0.0.0' })).toThrow(TypeError);
    expect(() => resolveOptions({ refreshTokenDelivery: 'header' as 'body' })).toThrow(TypeError);
  });
});
