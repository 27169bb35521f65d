import { createPrivateKey, randomUUID, sign as signBytes, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { calculateJwkThumbprint, createLocalJWKSet, exportJWK, generateKeyPair, jwtVerify, type JWK, type JSONWebKeySet } from 'jose';
import { boundKey } from './dpop.ts';
import type { Logger } from './options.ts';
import type { SigningKeyRecord, Store } from './store/types.ts';

const ALG = 'ES256';
/** The key file of servers before keys moved to the store; imported once as the first key. */
const LEGACY_KEY_FILE = 'signing-key.jwk.json';
/** Tokens are verified with a little clock skew in mind: a key outlives its last token by this much. */
const RETIRE_MARGIN_MS = 60_000;
/** An unknown `kid` re-reads the keys at most this often. */
const UNKNOWN_KID_RELOAD_MS = 1000;

/** Claims of a verified access token. */
export interface AccessClaims {
  sub: string;
  jti: string;
  roles: string[];
  iat: number;
  exp: number;
  /** The thumbprint of the DPoP key the token is bound to (`cnf.jkt`); unset for a Bearer token. */
  jkt?: string;
}

/**
 * Signs and verifies access tokens with the store's signing keys (ES256) and publishes their public
 * halves as a JWKS. Keys are re-read from the store every `reloadMs` and when a token names an unknown
 * `kid`, so every instance on one database signs and verifies with the same keys.
 */
export interface TokenSigner {
  /** The `kid` that signs at `nowMs`. */
  currentKid(nowMs: number): string;
  /** Every key that has not retired (including a published key not yet signing). */
  jwks(): JSONWebKeySet;
  /** Signs an access token for `sub`, valid `ttlSeconds` from `nowMs`; bound to the DPoP key `jkt` (`cnf.jkt`) when given. */
  sign(sub: string, roles: string[], nowMs: number, ttlSeconds: number, jkt?: string | null): Promise<{ token: string; exp: number }>;
  /** Verifies signature, algorithm, issuer, audience and expiry at `nowMs`; resolves null when invalid. */
  verify(token: string, nowMs: number): Promise<AccessClaims | null>;
  /** Re-reads the keys from the store. */
  reload(): Promise<void>;
  /** Stops the periodic reload. */
  close(): void;
}

interface LoadedKey {
  record: SigningKeyRecord;
  privateKey: KeyObject;
  /** `{"alg":"ES256","kid":…,"typ":"JWT"}` in base64url, computed once. */
  header: string;
}

/** A new P-256 key as a store row, with its RFC 7638 thumbprint as `kid`. */
export async function newSigningKey(nowMs: number, activatesAt = nowMs, privateJwk?: JWK): Promise<SigningKeyRecord> {
  const jwk = privateJwk ?? (await exportJWK((await generateKeyPair(ALG, { extractable: true })).privateKey));
  const { d: _d, ...publicPart } = jwk;
  const kid = await calculateJwkThumbprint(publicPart);
  const publicJwk = { kty: publicPart.kty, crv: publicPart.crv, x: publicPart.x, y: publicPart.y, kid, alg: ALG, use: 'sig' };
  return {
    kid,
    privateJwk: JSON.stringify({ ...jwk, kid, alg: ALG, use: 'sig' }),
    publicJwk: JSON.stringify(publicJwk),
    createdAt: nowMs,
    activatesAt,
    retiresAt: null,
  };
}

async function readLegacyKey(keysDir: string | undefined): Promise<JWK | undefined> {
  if (!keysDir) return undefined;
  try {
    return JSON.parse(await readFile(join(keysDir, LEGACY_KEY_FILE), 'utf8')) as JWK;
  } catch {
    return undefined;
  }
}

/**
 * Starts signing with a new key. It is published in the JWKS at once and signs from
 * `now + activationDelayMs`, so every instance (re-reading keys every `keyReloadMs`) and every verifier
 * (refetching the JWKS on an unknown `kid`) knows it before the first token carries it. The previous key
 * keeps verifying until its last token has expired (`accessTokenTtl` after the switch, plus a minute).
 * @remarks Nobody is logged out: refresh tokens do not depend on the signing key.
 * @example await rotateSigningKey(store, { now: Date.now(), activationDelayMs: 60_000, accessTokenTtl: 300 })
 */
export async function rotateSigningKey(
  store: Store,
  options: { now: number; activationDelayMs: number; accessTokenTtl: number },
): Promise<{ kid: string; activatesAt: number; previousRetiresAt: number }> {
  const activatesAt = options.now + options.activationDelayMs;
  const next = await newSigningKey(options.now, activatesAt);
  const previousRetiresAt = activatesAt + options.accessTokenTtl * 1000 + RETIRE_MARGIN_MS;
  await store.rotateSigningKey(next, previousRetiresAt);
  return { kid: next.kid, activatesAt, previousRetiresAt };
}

/**
 * Creates the access-token signer over the store's keys, creating the first key when there is none
 * (instances starting together agree on one). A key file left by an older server in `keysDir` becomes
 * the first key, so its tokens stay valid.
 */
export async function createTokenSigner(options: {
  store: Store;
  issuer: string;
  audience: string;
  now: () => number;
  reloadMs: number;
  logger: Logger;
  keysDir?: string | undefined;
}): Promise<TokenSigner> {
  const { store, now } = options;
  let keys = new Map<string, LoadedKey>();
  let jwks: JSONWebKeySet = { keys: [] };
  let keySet = createLocalJWKSet(jwks);
  let lastLoad = 0; // performance.now() of the last load: rate-limits reloads whatever the injected clock says
  let loading: Promise<void> | undefined;

  const load = async () => {
    const at = now();
    const records = await store.listSigningKeys(at);
    const next = new Map<string, LoadedKey>();
    for (const record of records) {
      const known = keys.get(record.kid);
      if (known) {
        next.set(record.kid, { ...known, record });
        continue;
      }
      const privateKey = createPrivateKey({ key: JSON.parse(record.privateJwk) as JWK & { kty: string }, format: 'jwk' });
      const header = Buffer.from(JSON.stringify({ alg: ALG, kid: record.kid, typ: 'JWT' })).toString('base64url');
      next.set(record.kid, { record, privateKey, header });
    }
    keys = next;
    jwks = { keys: records.map((r) => JSON.parse(r.publicJwk) as JWK) };
    keySet = createLocalJWKSet(jwks);
    lastLoad = performance.now();
  };
  const reload = (): Promise<void> => {
    loading ??= load().finally(() => {
      loading = undefined;
    });
    return loading;
  };

  const legacy = await readLegacyKey(options.keysDir);
  if ((await store.listSigningKeys(now())).length === 0) await store.ensureSigningKey(await newSigningKey(now(), 0, legacy));
  await load();
  const timer = setInterval(() => {
    reload().catch((error: unknown) => options.logger.warn('could not re-read signing keys; keeping the ones loaded', { error: String(error) }));
  }, options.reloadMs);
  timer.unref();

  const current = (at: number): LoadedKey => {
    let best: LoadedKey | undefined;
    for (const k of keys.values()) {
      const live = k.record.activatesAt <= at && (k.record.retiresAt === null || k.record.retiresAt > at);
      if (live && (!best || k.record.activatesAt > best.record.activatesAt)) best = k;
    }
    // No key active yet (only a pre-published one): the oldest known key is the safest signer.
    return best ?? keys.values().next().value!;
  };

  const verifyOnce = async (token: string, nowMs: number) =>
    jwtVerify(token, keySet, {
      algorithms: [ALG],
      issuer: options.issuer,
      audience: options.audience,
      currentDate: new Date(nowMs),
      requiredClaims: ['sub', 'exp', 'iat', 'jti'],
    });

  return {
    currentKid: (at) => current(at).record.kid,
    jwks: () => jwks,
    async sign(sub, roles, nowMs, ttlSeconds, jkt) {
      const key = current(nowMs);
      const iat = Math.floor(nowMs / 1000);
      // Whole seconds rounded up, so the token lives at least ttlSeconds from now.
      const exp = Math.ceil(nowMs / 1000) + ttlSeconds;
      const payload = { roles, sub, iss: options.issuer, aud: options.audience, iat, exp, jti: randomUUID(), ...(jkt && { cnf: { jkt } }) };
      const input = `${key.header}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
      // node:crypto signs synchronously (no WebCrypto promise or thread-pool hop); JOSE wants r || s.
      const signature = signBytes('sha256', Buffer.from(input), { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
      return { token: `${input}.${signature.toString('base64url')}`, exp };
    },
    async verify(token, nowMs) {
      if (token.length > 4096) return null;
      try {
        const { payload } = await verifyOnce(token, nowMs).catch(async (error: unknown) => {
          // A key another instance just created: re-read the store (rate-limited) and try once more.
          if ((error as { code?: string }).code !== 'ERR_JWKS_NO_MATCHING_KEY' || performance.now() - lastLoad < UNKNOWN_KID_RELOAD_MS) throw error;
          await reload();
          return verifyOnce(token, nowMs);
        });
        const roles = Array.isArray(payload.roles) ? payload.roles.filter((r): r is string => typeof r === 'string') : [];
        const jkt = boundKey(payload);
        return { sub: payload.sub!, jti: payload.jti!, roles, iat: payload.iat!, exp: payload.exp!, ...(jkt && { jkt }) };
      } catch {
        return null;
      }
    },
    reload,
    close: () => clearInterval(timer),
  };
}
