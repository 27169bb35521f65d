/**
 * Verifies the server's access tokens in your own API, through the server's JWKS endpoint: no secret
 * is shared, and a rotated-in key is picked up from the JWKS the first time a token names it.
 * @packageDocumentation
 */
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import type { MiddlewareHandler } from 'hono';
import { boundKey, checkBinding, memoryReplayCache, parseAuthorization, type NonceSource, type ProofFailure, type ReplayCache } from './dpop.ts';

export { hmacNonces, memoryReplayCache, type NonceSource, type ProofFailure, type ReplayCache } from './dpop.ts';

/** Why a request was not authenticated. Every reason but `jwks_unavailable` is a 401. */
export type VerifyFailureReason =
  /** No `Authorization: Bearer …` (or `DPoP …`) header. */
  | 'missing'
  /** A Bearer or DPoP header whose token is not a well-formed JWT with the required claims. */
  | 'malformed'
  | 'expired'
  /** The signature does not verify, the algorithm is not ES256, or no published key has its `kid`. */
  | 'bad_signature'
  | 'wrong_issuer'
  | 'wrong_audience'
  /** A token bound to a DPoP key sent as Bearer, or (with `dpop.required`) a token bound to none. */
  | 'dpop_required'
  /** The `DPoP` proof is missing or fails a check (`proof` says which), or is not from the token's key. */
  | 'invalid_dpop_proof'
  /** The JWKS could not be fetched (503: the token may be fine). */
  | 'jwks_unavailable';

/** Claims of an access token that verified. */
export interface VerifiedClaims {
  sub: string;
  roles: string[];
  iss: string;
  aud: string | string[];
  iat: number;
  exp: number;
  jti: string;
  /** The thumbprint of the DPoP key the token is bound to (`cnf.jkt`), proved by the request; unset for a Bearer token. */
  jkt?: string;
}

/** What {@link verifyRequest} resolves to: claims, or a typed reason with the response status to send. */
export type VerifyResult =
  | { ok: true; claims: VerifiedClaims }
  | {
      ok: false;
      reason: VerifyFailureReason;
      status: 401 | 503;
      description: string;
      /** The scheme to challenge with (`WWW-Authenticate`): `DPoP` for a DPoP request or failure, or when DPoP is required. */
      scheme: 'Bearer' | 'DPoP';
      /** For `invalid_dpop_proof`: the check the proof failed. */
      proof?: ProofFailure;
      /** With `dpop.nonces`, for `proof: 'nonce'`: the nonce to send in a `DPoP-Nonce` header. */
      nonce?: string;
    };

/** How {@link verifyRequest} checks DPoP (RFC 9449) proofs. */
export interface VerifyDpopOptions {
  /** Refuse tokens that are not bound to a key (`dpop_required`). @default false */
  required?: boolean;
  /**
   * The URL clients call, when the request's URL is not it (behind a proxy that rewrites the host or
   * scheme): a base the request's path is appended to (`https://api.example`), or the whole URL computed
   * from the request. Proofs name the URL the client saw (`htu`). @default the request's URL
   */
  publicUrl?: string | ((request: Request) => string);
  /**
   * Where proofs are remembered against replay. Several instances of your API need a shared one (the
   * server's `Store` is one: `openPostgresStore(url)`). @default one in this process's memory
   */
  replay?: ReplayCache;
  /** Seconds a proof's `iat` may be away from the clock, either way. @default 60 */
  iatWindowSeconds?: number;
  /** The clock, ms since the epoch (tests). @default Date.now */
  now?: () => number;
  /**
   * Require server nonces (RFC 9449 §9): a proof without a recent one fails with `proof: 'nonce'` and
   * the failure's `nonce`; answer with it in `DPoP-Nonce` (verifyMiddleware does). E.g. `hmacNonces(secret)`,
   * the same secret on every instance.
   */
  nonces?: NonceSource;
}

/** Where the keys are and what the tokens must say. */
export interface VerifyOptions {
  /** The token server's JWKS, e.g. `https://auth.example/.well-known/jwks.json`. */
  jwksUrl: string | URL;
  /** Expected `iss` (the server's `issuer` setting). */
  issuer: string;
  /** Expected `aud` (the server's `audience` setting). */
  audience: string;
  /** Seconds of clock skew accepted on `exp` and `iat`. @default 5 */
  clockToleranceSeconds?: number;
  /**
   * Least time between two JWKS fetches caused by unknown `kid`s, in ms (jose's `cooldownDuration`).
   * Keep it under the server's `keyActivationDelayMs`. @default 30_000
   */
  jwksCooldownMs?: number;
  /** How long fetched keys are trusted before the JWKS is fetched again, in ms. @default 600_000 */
  jwksMaxAgeMs?: number;
  /**
   * DPoP settings. A token bound to a key (`cnf.jkt`) is accepted only with `Authorization: DPoP` and a
   * valid proof of its key (with `ath`) whatever they say; these tune the checks.
   */
  dpop?: VerifyDpopOptions;
}

const DESCRIPTIONS: Record<VerifyFailureReason, string> = {
  missing: 'An access token is required (Authorization: Bearer).',
  malformed: 'The access token is malformed.',
  expired: 'The access token has expired.',
  bad_signature: 'The access token signature is invalid.',
  wrong_issuer: 'The access token was issued by another server.',
  wrong_audience: 'The access token is meant for another audience.',
  dpop_required: 'This access token must be sent with the DPoP scheme and a proof of its key.',
  invalid_dpop_proof: 'The DPoP proof is invalid.',
  jwks_unavailable: 'The signing keys could not be fetched; try again.',
};

const MAX_TOKEN_LENGTH = 4096;
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

/**
 * The token of an `Authorization: Bearer <token>` header (scheme case-insensitive, RFC 6750 §2.1).
 * @returns the token; `undefined` without a Bearer header; `null` for a Bearer header whose value is not a token68.
 */
export function parseBearer(header: string | null | undefined): string | null | undefined {
  if (!header || !/^bearer(?: |$)/i.test(header)) return undefined;
  return BEARER.exec(header)?.[1] ?? null;
}

type RemoteJwks = ReturnType<typeof createRemoteJWKSet>;
/** One remote key set per URL and cache setting, so every call shares one cache and one cooldown. */
const keySets = new Map<string, RemoteJwks>();
const MAX_KEY_SETS = 32;

function remoteKeySet(options: VerifyOptions): RemoteJwks {
  const cooldownDuration = options.jwksCooldownMs ?? 30_000;
  const cacheMaxAge = options.jwksMaxAgeMs ?? 600_000;
  const id = `${String(options.jwksUrl)} ${cooldownDuration} ${cacheMaxAge}`;
  let set = keySets.get(id);
  if (!set) {
    if (keySets.size >= MAX_KEY_SETS) keySets.delete(keySets.keys().next().value!);
    set = createRemoteJWKSet(new URL(options.jwksUrl), { cooldownDuration, cacheMaxAge, timeoutDuration: 5000 });
    keySets.set(id, set);
  }
  return set;
}

function classify(error: unknown): VerifyFailureReason {
  const { code, claim } = error as { code?: string; claim?: string };
  switch (code) {
    case 'ERR_JWT_EXPIRED':
      return 'expired';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      return claim === 'iss' ? 'wrong_issuer' : claim === 'aud' ? 'wrong_audience' : 'malformed';
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return 'bad_signature';
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
      return 'malformed';
    default:
      // Fetch failures, timeouts and an unreadable JWKS: the keys are unknown, not the token bad.
      return 'jwks_unavailable';
  }
}

function claimsOf(payload: JWTPayload): VerifiedClaims {
  const roles = Array.isArray(payload.roles) ? payload.roles.filter((r): r is string => typeof r === 'string') : [];
  const jkt = boundKey(payload);
  const claims = { sub: payload.sub!, roles, iss: payload.iss!, aud: payload.aud!, iat: payload.iat!, exp: payload.exp!, jti: payload.jti! };
  return jkt ? { ...claims, jkt } : claims;
}

const fail = (reason: VerifyFailureReason, scheme: 'Bearer' | 'DPoP' = 'Bearer', proof?: ProofFailure): VerifyResult => ({
  ok: false,
  reason,
  status: reason === 'jwks_unavailable' ? 503 : 401,
  description: proof ? `The DPoP proof is invalid (${proof}).` : DESCRIPTIONS[reason],
  scheme: reason === 'dpop_required' || proof ? 'DPoP' : scheme,
  ...(proof && { proof }),
});

/** The replay cache of every call that names none: one per process. */
const sharedReplay = memoryReplayCache();

function publicUrlOf(request: Request, publicUrl: VerifyDpopOptions['publicUrl']): string {
  if (typeof publicUrl === 'function') return publicUrl(request);
  if (!publicUrl) return request.url;
  return publicUrl.replace(/\/+$/, '') + new URL(request.url).pathname;
}

/**
 * Verifies the access token of a Fetch API `Request` (ES256 signature against the JWKS, `iss`, `aud`,
 * `exp`, and the claims `sub`, `iat`, `exp`, `jti`), and its DPoP binding: a token bound to a key
 * (`cnf.jkt`) only with `Authorization: DPoP` and a `DPoP` proof of that key for this method and URL,
 * with `ath`, fresh and not seen before (RFC 9449); see {@link VerifyOptions.dpop}.
 * @returns claims, or a reason and the status to answer with; never throws for a bad token.
 * @throws what `dpop.replay` or `dpop.publicUrl` throw (a replay store that is down is not a verdict on the token).
 * @remarks Keys are fetched once per `jwksUrl` per process and again for a `kid` not seen yet (at most
 * once per `jwksCooldownMs`).
 * @example
 * const result = await verifyRequest(request, { jwksUrl: 'https://auth.example/.well-known/jwks.json', issuer: 'tessera-reference-server', audience: 'tessera' });
 * if (!result.ok) return new Response(null, { status: result.status, headers: { 'WWW-Authenticate': wwwAuthenticate(result) } });
 */
export async function verifyRequest(request: Request, options: VerifyOptions): Promise<VerifyResult> {
  const dpop = options.dpop ?? {};
  const { scheme, token } = parseAuthorization(request.headers.get('authorization'));
  if (!scheme) return fail('missing', dpop.required ? 'DPoP' : 'Bearer');
  if (token === null || token.length > MAX_TOKEN_LENGTH || token.split('.').length !== 3) return fail('malformed', scheme);
  let claims: VerifiedClaims;
  try {
    const { payload } = await jwtVerify(token, remoteKeySet(options), {
      algorithms: ['ES256'],
      issuer: options.issuer,
      audience: options.audience,
      clockTolerance: options.clockToleranceSeconds ?? 5,
      requiredClaims: ['sub', 'exp', 'iat', 'jti'],
    });
    claims = claimsOf(payload);
  } catch (error) {
    return fail(classify(error), scheme);
  }
  const now = (dpop.now ?? Date.now)();
  const failure = await checkBinding(
    { scheme, token, jkt: claims.jkt, proof: request.headers.get('dpop'), required: dpop.required ?? false },
    {
      method: request.method,
      url: publicUrlOf(request, dpop.publicUrl),
      now,
      replay: dpop.replay ?? sharedReplay,
      iatWindowSeconds: dpop.iatWindowSeconds,
      nonces: dpop.nonces,
    },
  );
  if (!failure) return { ok: true, claims };
  if (failure.reason === 'dpop_required') return fail('dpop_required');
  const refused = fail('invalid_dpop_proof', 'DPoP', failure.proof);
  return failure.proof === 'nonce' && !refused.ok ? { ...refused, nonce: await dpop.nonces!.current(now) } : refused;
}

/**
 * The `WWW-Authenticate` value for a failure (RFC 6750 §3, RFC 9449 §7.1: no error code when no token
 * was sent; `DPoP algs="ES256"` when the failure's `scheme` is DPoP).
 */
export function wwwAuthenticate(failure: { reason: VerifyFailureReason; description: string; scheme?: 'Bearer' | 'DPoP'; proof?: ProofFailure }): string {
  const dpop = failure.scheme === 'DPoP';
  const head = dpop ? 'DPoP algs="ES256"' : 'Bearer';
  if (failure.reason === 'missing') return head;
  const error = failure.proof === 'nonce' ? 'use_dpop_nonce' : failure.reason === 'invalid_dpop_proof' ? 'invalid_dpop_proof' : 'invalid_token';
  return `${head}${dpop ? ',' : ''} error="${error}", error_description="${failure.description}"`;
}

/** Hono variables set by {@link verifyMiddleware}. */
export type VerifyVariables = { claims: VerifiedClaims };

/**
 * Hono middleware: verifies the request with {@link verifyRequest}, sets `c.get('claims')`, and answers
 * a failure with 401 (503 when the JWKS is unreachable) and a JSON body `{ error, error_description, reason }`.
 * @example app.use('/api/*', verifyMiddleware({ jwksUrl, issuer: 'tessera-reference-server', audience: 'tessera' }));
 */
export function verifyMiddleware(options: VerifyOptions): MiddlewareHandler<{ Variables: VerifyVariables }> {
  return async (c, next) => {
    const result = await verifyRequest(c.req.raw, options);
    if (!result.ok) {
      const error =
        result.status === 503 ? 'temporarily_unavailable'
        : result.proof === 'nonce' ? 'use_dpop_nonce'
        : result.reason === 'invalid_dpop_proof' ? 'invalid_dpop_proof'
        : 'invalid_token';
      if (result.status === 401) c.header('WWW-Authenticate', wwwAuthenticate(result));
      if (result.nonce) c.header('DPoP-Nonce', result.nonce);
      c.header('Cache-Control', 'no-store');
      return c.json({ error, error_description: result.description, reason: result.reason }, result.status);
    }
    c.set('claims', result.claims);
    await next();
  };
}
