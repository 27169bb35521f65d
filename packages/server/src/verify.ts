/**
 * Verifies the server's access tokens in your own API, through the server's JWKS endpoint: no secret
 * is shared, and a rotated-in key is picked up from the JWKS the first time a token names it.
 * @packageDocumentation
 */
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import type { MiddlewareHandler } from 'hono';

/** Why a request was not authenticated. Every reason but `jwks_unavailable` is a 401. */
export type VerifyFailureReason =
  /** No `Authorization: Bearer …` header. */
  | 'missing'
  /** A Bearer header whose token is not a well-formed JWT with the required claims. */
  | 'malformed'
  | 'expired'
  /** The signature does not verify, the algorithm is not ES256, or no published key has its `kid`. */
  | 'bad_signature'
  | 'wrong_issuer'
  | 'wrong_audience'
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
}

/** What {@link verifyRequest} resolves to: claims, or a typed reason with the response status to send. */
export type VerifyResult =
  | { ok: true; claims: VerifiedClaims }
  | { ok: false; reason: VerifyFailureReason; status: 401 | 503; description: string };

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
}

const DESCRIPTIONS: Record<VerifyFailureReason, string> = {
  missing: 'An access token is required (Authorization: Bearer).',
  malformed: 'The access token is malformed.',
  expired: 'The access token has expired.',
  bad_signature: 'The access token signature is invalid.',
  wrong_issuer: 'The access token was issued by another server.',
  wrong_audience: 'The access token is meant for another audience.',
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
  return { sub: payload.sub!, roles, iss: payload.iss!, aud: payload.aud!, iat: payload.iat!, exp: payload.exp!, jti: payload.jti! };
}

const fail = (reason: VerifyFailureReason): VerifyResult => ({
  ok: false,
  reason,
  status: reason === 'jwks_unavailable' ? 503 : 401,
  description: DESCRIPTIONS[reason],
});

/**
 * Verifies the Bearer access token of a Fetch API `Request` (ES256 signature against the JWKS, `iss`,
 * `aud`, `exp`, and the claims `sub`, `iat`, `exp`, `jti`).
 * @returns claims, or a reason and the status to answer with; never throws for a bad token.
 * @remarks Keys are fetched once per `jwksUrl` per process and again for a `kid` not seen yet (at most
 * once per `jwksCooldownMs`).
 * @example
 * const result = await verifyRequest(request, { jwksUrl: 'https://auth.example/.well-known/jwks.json', issuer: 'tessera-reference-server', audience: 'tessera' });
 * if (!result.ok) return new Response(null, { status: result.status, headers: { 'WWW-Authenticate': wwwAuthenticate(result) } });
 */
export async function verifyRequest(request: Request, options: VerifyOptions): Promise<VerifyResult> {
  const token = parseBearer(request.headers.get('authorization'));
  if (token === undefined) return fail('missing');
  if (token === null || token.length > MAX_TOKEN_LENGTH || token.split('.').length !== 3) return fail('malformed');
  try {
    const { payload } = await jwtVerify(token, remoteKeySet(options), {
      algorithms: ['ES256'],
      issuer: options.issuer,
      audience: options.audience,
      clockTolerance: options.clockToleranceSeconds ?? 5,
      requiredClaims: ['sub', 'exp', 'iat', 'jti'],
    });
    return { ok: true, claims: claimsOf(payload) };
  } catch (error) {
    return fail(classify(error));
  }
}

/** The `WWW-Authenticate` value for a failure (RFC 6750 §3: no error code when no token was sent). */
export function wwwAuthenticate(failure: { reason: VerifyFailureReason; description: string }): string {
  if (failure.reason === 'missing') return 'Bearer';
  return `Bearer error="invalid_token", error_description="${failure.description}"`;
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
      const error = result.status === 503 ? 'temporarily_unavailable' : 'invalid_token';
      if (result.status === 401) c.header('WWW-Authenticate', wwwAuthenticate(result));
      c.header('Cache-Control', 'no-store');
      return c.json({ error, error_description: result.description, reason: result.reason }, result.status);
    }
    c.set('claims', result.claims);
    await next();
  };
}
