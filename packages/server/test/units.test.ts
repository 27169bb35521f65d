import { describe, expect, it } from 'vitest';
import { newOpaqueToken, seal, unseal } from '../src/crypto-utils.ts';
import { resolveOptions } from '../src/options.ts';
import { hashPassword, verifyPassword } from '../src/passwords.ts';

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

describe('newOpaqueToken (refresh and reset tokens)', () => {
  it('hands out every random byte once: 10 000 tokens across 157 refills of the pool are distinct, 43 base64url characters', () => {
    const tokens = Array.from({ length: 10_000 }, () => newOpaqueToken());
    expect(new Set(tokens).size).toBe(10_000);
    expect(tokens.every((t) => /^[A-Za-z0-9_-]{43}$/.test(t))).toBe(true);
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
