/**
 * DPoP proofs (RFC 9449), checked the same way by the token endpoints, the server's own resources and
 * {@link verifyRequest} in your API: `typ`, ES256 signature over the embedded public key, `htm`, `htu`
 * (query and fragment ignored), the `iat` window, `jti` replay, and `ath` for requests with a token.
 * @packageDocumentation
 */
import { EmbeddedJWK, base64url, calculateJwkThumbprint, decodeProtectedHeader, jwtVerify } from 'jose';

/** Why a proof was refused; every one is a 401 at a resource (`invalid_dpop_proof`) and a 400 at a token endpoint. */
export type ProofFailure =
  /** No `DPoP` header, or more than one. */
  | 'missing'
  /** Not a compact JWS, `typ` is not `dpop+jwt`, the key is not a public P-256 JWK, or the signature does not verify. */
  | 'signature'
  /** `htm` is not the request's method. */
  | 'htm'
  /** `htu` is not the URL the request was sent to. */
  | 'htu'
  /** `iat` is missing or too far from the server's clock. */
  | 'iat'
  /** `jti` is missing, too short or too long. */
  | 'jti'
  /** This proof (its key and `jti`) was already used. */
  | 'replay'
  /** `ath` is not the hash of the access token sent with the request (or there is one without a token). */
  | 'ath'
  /** The proof's key is not the one the token is bound to. */
  | 'key_mismatch'
  /** The server wants its nonce, and the proof has none or an old one (answered with `use_dpop_nonce`). */
  | 'nonce';

/** What a proof that verified says. */
export interface CheckedProof {
  /** The RFC 7638 thumbprint of the proof's key (what `cnf.jkt` holds). */
  jkt: string;
  jti: string;
  iat: number;
}

/**
 * Remembers proofs until they expire. The server's `Store` implements it on the database, so instances
 * sharing one PostgreSQL refuse each other's replays; {@link memoryReplayCache} is the one-process version.
 */
export interface ReplayCache {
  /** Records `key` until `expiresAt` (ms); resolves false when it was recorded already and has not expired at `now` (ms). */
  claimProofJti(key: string, expiresAt: number, now: number): Promise<boolean>;
}

/** What a proof must match. */
export interface ProofExpectation {
  /** The request's method. */
  method: string;
  /** The URL the client sent the request to (as the client saw it: the public URL behind a proxy). */
  url: string | URL;
  /** The access token the request carries (`Authorization: DPoP …`): the proof must have its `ath`. Unset at a token endpoint. */
  accessToken?: string | undefined;
  /** The server's clock, ms since the epoch. */
  now: number;
  replay: ReplayCache;
  /** Seconds a proof's `iat` may be away from `now`, either way. @default 60 */
  iatWindowSeconds?: number;
  /** The server's nonces, when it requires them. */
  nonces?: NonceSource | undefined;
}

/**
 * Server nonces (RFC 9449 §8) without storage: an HMAC of the time window under a secret, so every
 * instance holding the secret makes and accepts the same nonces.
 */
export interface NonceSource {
  /** The nonce to hand out at `now` (ms). */
  current(now: number): Promise<string>;
  /** True for the nonce of the window of `now` or of the one before. */
  accepts(nonce: unknown, now: number): Promise<boolean>;
}

/** A {@link NonceSource} whose nonces change every `windowMs` (the previous one is still accepted). */
export function hmacNonces(secret: string, windowMs = 300_000): NonceSource {
  const key = crypto.subtle.importKey('raw', new TextEncoder().encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const cache = new Map<number, string>();
  const of = async (window: number) => {
    let nonce = cache.get(window);
    if (!nonce) {
      const mac = new Uint8Array(await crypto.subtle.sign('HMAC', await key, new TextEncoder().encode(`dpop-nonce.${window}`)));
      nonce = `${window.toString(36)}.${base64url.encode(mac.subarray(0, 18))}`;
      if (cache.size > 4) cache.clear();
      cache.set(window, nonce);
    }
    return nonce;
  };
  return {
    current: (now) => of(Math.floor(now / windowMs)),
    async accepts(nonce, now) {
      const window = Math.floor(now / windowMs);
      return typeof nonce === 'string' && (nonce === (await of(window)) || nonce === (await of(window - 1)));
    },
  };
}

/** What {@link checkProof} resolves to. */
export type ProofResult = { ok: true; proof: CheckedProof } | { ok: false; reason: ProofFailure };

const MAX_PROOF_LENGTH = 4096;
/** WebCrypto, not node:crypto: `@tessera/server/verify` runs wherever a Fetch `Request` does. */
const b64sha256 = async (text: string) => base64url.encode(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text))));

/** The URL as `htu` compares it (RFC 9449 §4.3): scheme, host, port and path, normalised; null when it is no absolute URL. */
function htuOf(url: string | URL): string | null {
  try {
    const u = new URL(url);
    return u.origin + u.pathname;
  } catch {
    return null;
  }
}

/** Checks a request's `DPoP` header (`header` is its value; a list of several values is refused). Never throws for a bad proof. */
export async function checkProof(header: string | null | undefined, expect: ProofExpectation): Promise<ProofResult> {
  const fail = (reason: ProofFailure): ProofResult => ({ ok: false, reason });
  if (!header) return fail('missing');
  if (header.length > MAX_PROOF_LENGTH || header.includes(',')) return fail('signature');
  let payload: Record<string, unknown>;
  let jkt: string;
  try {
    const jwk = decodeProtectedHeader(header).jwk;
    if (!jwk || jwk.kty !== 'EC' || jwk.crv !== 'P-256' || 'd' in jwk) return fail('signature');
    ({ payload } = await jwtVerify(header, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: ['ES256'] }));
    jkt = await calculateJwkThumbprint(jwk);
  } catch {
    return fail('signature');
  }
  if (payload.htm !== expect.method.toUpperCase()) return fail('htm');
  const htu = typeof payload.htu === 'string' ? htuOf(payload.htu) : null;
  if (htu === null || htu !== htuOf(expect.url)) return fail('htu');
  const window = expect.iatWindowSeconds ?? 60;
  const iat = payload.iat;
  if (typeof iat !== 'number' || !Number.isFinite(iat) || Math.abs(expect.now / 1000 - iat) > window) return fail('iat');
  const jti = payload.jti;
  if (typeof jti !== 'string' || jti.length < 16 || jti.length > 256) return fail('jti');
  const ath = expect.accessToken === undefined ? undefined : await b64sha256(expect.accessToken);
  if (payload.ath !== ath) return fail('ath');
  if (expect.nonces && !(await expect.nonces.accepts(payload.nonce, expect.now))) return fail('nonce');
  // Last, so a proof refused for another reason does not use up its jti. Kept while its iat is acceptable.
  const fresh = await expect.replay.claimProofJti(await b64sha256(`${jkt}.${jti}`), (iat + window + 1) * 1000, expect.now);
  if (!fresh) return fail('replay');
  return { ok: true, proof: { jkt, jti, iat } };
}

/**
 * A {@link ReplayCache} in this process's memory: enough for one instance; several instances need a
 * shared one (the server's `Store`). It holds every proof accepted in the last `2 × iat window` (expired
 * ones are dropped at most once a second), so its size follows the request rate.
 */
export function memoryReplayCache(): ReplayCache {
  const seen = new Map<string, number>();
  let prunedAt = 0;
  return {
    async claimProofJti(key, expiresAt, now) {
      if (now - prunedAt >= 1000) {
        prunedAt = now;
        for (const [k, until] of seen) if (until <= now) seen.delete(k);
      }
      const until = seen.get(key);
      if (until !== undefined && until > now) return false;
      seen.set(key, expiresAt);
      return true;
    },
  };
}

/** An `Authorization` header read for either scheme. */
export type Credentials =
  | { scheme: 'Bearer' | 'DPoP'; token: string }
  /** No header, or another scheme. */
  | { scheme: null; token?: undefined }
  /** A Bearer or DPoP header whose value is not a token68. */
  | { scheme: 'Bearer' | 'DPoP'; token: null };

const TOKEN68 = /^(Bearer|DPoP) +([A-Za-z0-9\-._~+/]+=*) *$/i;

/** Reads `Authorization: Bearer <token>` or `Authorization: DPoP <token>` (schemes case-insensitive). */
export function parseAuthorization(header: string | null | undefined): Credentials {
  const scheme = /^(bearer|dpop)(?: |$)/i.exec(header ?? '')?.[1]?.toLowerCase();
  if (!scheme) return { scheme: null };
  const name = scheme === 'dpop' ? 'DPoP' : 'Bearer';
  const token = TOKEN68.exec(header!)?.[2];
  return token ? { scheme: name, token } : { scheme: name, token: null };
}

/** Why a token that verified is still refused at a resource. */
export type BindingFailure = { reason: 'dpop_required' } | { reason: 'invalid_dpop_proof'; proof: ProofFailure };

/**
 * The resource-side rule for a token whose signature and claims verified: a token bound to a key
 * (`jkt`) is accepted only with the `DPoP` scheme and a proof of that key with `ath`; an unbound one
 * only as Bearer, and not at all when `required`.
 * @returns null when the request may go on.
 */
export async function checkBinding(
  input: { scheme: 'Bearer' | 'DPoP'; token: string; jkt: string | undefined; proof: string | null | undefined; required: boolean },
  expect: Omit<ProofExpectation, 'accessToken'>,
): Promise<BindingFailure | null> {
  if (input.jkt === undefined) {
    if (input.required) return { reason: 'dpop_required' };
    // The DPoP scheme says the token is bound: one that is not has no key for the proof to match.
    return input.scheme === 'DPoP' ? { reason: 'invalid_dpop_proof', proof: 'key_mismatch' } : null;
  }
  if (input.scheme !== 'DPoP') return { reason: 'dpop_required' };
  const result = await checkProof(input.proof, { ...expect, accessToken: input.token });
  if (!result.ok) return { reason: 'invalid_dpop_proof', proof: result.reason };
  if (result.proof.jkt !== input.jkt) return { reason: 'invalid_dpop_proof', proof: 'key_mismatch' };
  return null;
}

/** The `cnf.jkt` of a token's claims, when it is a string. */
export function boundKey(payload: Record<string, unknown>): string | undefined {
  const cnf = payload.cnf as { jkt?: unknown } | undefined;
  return typeof cnf?.jkt === 'string' ? cnf.jkt : undefined;
}
