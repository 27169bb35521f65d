import { randomUUID } from 'node:crypto';
import { chmod, link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  SignJWT,
  calculateJwkThumbprint,
  createLocalJWKSet,
  exportJWK,
  generateKeyPair,
  importJWK,
  jwtVerify,
  type JWK,
  type JSONWebKeySet,
} from 'jose';

const ALG = 'ES256';
const KEY_FILE = 'signing-key.jwk.json';

/** Claims of a verified access token. */
export interface AccessClaims {
  sub: string;
  jti: string;
  roles: string[];
  iat: number;
  exp: number;
}

/** Signs and verifies access tokens with one ES256 key; publishes the public half as a JWKS. */
export interface TokenSigner {
  readonly kid: string;
  readonly jwks: JSONWebKeySet;
  /** Signs an access token for `sub`, valid `ttlSeconds` from `nowMs`. */
  sign(sub: string, roles: string[], nowMs: number, ttlSeconds: number): Promise<{ token: string; exp: number }>;
  /** Verifies signature, algorithm, issuer, audience and expiry at `nowMs`; resolves null when invalid. */
  verify(token: string, nowMs: number): Promise<AccessClaims | null>;
}

async function newPrivateJwk(): Promise<JWK> {
  const { privateKey } = await generateKeyPair(ALG, { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, kid: await calculateJwkThumbprint(jwk), alg: ALG, use: 'sig' };
}

/**
 * Reads the signing key from `<keysDir>/signing-key.jwk.json`, creating it (mode 0600) on first start.
 * Two processes starting together agree on one key: the file is published with an atomic link().
 */
async function loadOrCreatePrivateJwk(keysDir: string): Promise<JWK> {
  const file = join(keysDir, KEY_FILE);
  try {
    return JSON.parse(await readFile(file, 'utf8')) as JWK;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  await mkdir(keysDir, { recursive: true, mode: 0o700 });
  const jwk = await newPrivateJwk();
  const tmp = join(keysDir, `.${KEY_FILE}.${randomUUID()}`);
  await writeFile(tmp, JSON.stringify(jwk, null, 2), { mode: 0o600 });
  await chmod(tmp, 0o600);
  try {
    await link(tmp, file);
    return jwk;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return JSON.parse(await readFile(file, 'utf8')) as JWK;
  } finally {
    await unlink(tmp).catch(() => {});
  }
}

/**
 * Creates the access-token signer. With `keysDir` the key persists across restarts; without, it is
 * generated in memory for this process.
 */
export async function createTokenSigner(options: { keysDir?: string | undefined; issuer: string; audience: string }): Promise<TokenSigner> {
  const privateJwk = options.keysDir ? await loadOrCreatePrivateJwk(options.keysDir) : await newPrivateJwk();
  const kid = privateJwk.kid ?? (await calculateJwkThumbprint(privateJwk));
  const privateKey = await importJWK(privateJwk, ALG);
  const { d: _d, ...publicJwk } = privateJwk;
  const jwks: JSONWebKeySet = { keys: [{ ...publicJwk, kid, alg: ALG, use: 'sig' }] };
  const keySet = createLocalJWKSet(jwks);

  return {
    kid,
    jwks,
    async sign(sub, roles, nowMs, ttlSeconds) {
      const iat = Math.floor(nowMs / 1000);
      // Whole seconds rounded up, so the token lives at least ttlSeconds from now.
      const exp = Math.ceil(nowMs / 1000) + ttlSeconds;
      const token = await new SignJWT({ roles })
        .setProtectedHeader({ alg: ALG, kid, typ: 'JWT' })
        .setSubject(sub)
        .setIssuer(options.issuer)
        .setAudience(options.audience)
        .setIssuedAt(iat)
        .setExpirationTime(exp)
        .setJti(randomUUID())
        .sign(privateKey);
      return { token, exp };
    },
    async verify(token, nowMs) {
      if (token.length > 4096) return null;
      try {
        const { payload } = await jwtVerify(token, keySet, {
          algorithms: [ALG],
          issuer: options.issuer,
          audience: options.audience,
          currentDate: new Date(nowMs),
          requiredClaims: ['sub', 'exp', 'iat', 'jti'],
        });
        const roles = Array.isArray(payload.roles) ? payload.roles.filter((r): r is string => typeof r === 'string') : [];
        return { sub: payload.sub!, jti: payload.jti!, roles, iat: payload.iat!, exp: payload.exp! };
      } catch {
        return null;
      }
    },
  };
}
