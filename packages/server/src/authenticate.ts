import type { AppContext, C } from './context.ts';
import { checkBinding, checkProof, parseAuthorization } from './dpop.ts';
import { HttpError, errorResponse, invalidToken } from './http-errors.ts';
import type { AccessClaims } from './tokens.ts';

/** The URL the client called: the public URL's base and the request's path (never the Host header), else the request's URL. */
export function calledUrl(ctx: AppContext, c: C): string {
  const base = ctx.options.publicUrl;
  return base ? base.replace(/\/+$/, '') + c.req.path : c.req.url;
}

/**
 * The key of the request's DPoP proof (its thumbprint), null without a `DPoP` header.
 * @throws HttpError 400 `invalid_dpop_proof` for a proof that does not verify.
 */
export async function proofKey(ctx: AppContext, c: C, accessToken?: string): Promise<string | null> {
  const header = c.req.header('dpop');
  if (header === undefined) return null;
  const { options, store, nonces } = ctx;
  const now = options.now();
  const result = await checkProof(header, { method: c.req.method, url: calledUrl(ctx, c), accessToken, now, replay: store, nonces: nonces ?? undefined });
  if (!result.ok && result.reason === 'nonce') {
    throw new HttpError(400, 'use_dpop_nonce', 'Use the DPoP nonce of the DPoP-Nonce header.', { 'DPoP-Nonce': await nonces!.current(now) });
  }
  if (!result.ok) throw new HttpError(400, 'invalid_dpop_proof', `The DPoP proof is invalid (${result.reason}).`);
  return result.proof.jkt;
}

/**
 * The key a login or refresh binds its tokens to, as the `dpop` setting says: none when it is off,
 * the proof's when there is one, and a 400 when it is required and missing.
 */
export async function tokenEndpointKey(ctx: AppContext, c: C): Promise<string | null> {
  const mode = ctx.options.dpop;
  if (mode === 'off') return null;
  const jkt = await proofKey(ctx, c);
  if (jkt === null && mode === 'required') throw new HttpError(400, 'invalid_dpop_proof', 'A DPoP proof is required (the DPoP header).');
  return jkt;
}

const dpopChallenge = (error: string, description: string) => `DPoP algs="ES256", error="${error}", error_description="${description}"`;

/**
 * Verifies the access token of a resource request: its signature and claims, and its DPoP binding
 * (a bound token only with the `DPoP` scheme and a proof of its key; an unbound one refused when DPoP
 * is required). Resolves the claims, or the 401 to answer with.
 */
export async function authenticate(ctx: AppContext, c: C): Promise<AccessClaims | Response> {
  const { options, signer, store } = ctx;
  const credentials = parseAuthorization(c.req.header('authorization'));
  const claims = credentials.token ? await signer.verify(credentials.token, options.now()) : null;
  if (!claims || !credentials.token || !credentials.scheme) {
    if (credentials.scheme !== 'DPoP') return invalidToken(c);
    const description = 'The access token is missing, malformed, expired or not signed by this server.';
    return errorResponse(c, 401, 'invalid_token', description, { 'WWW-Authenticate': dpopChallenge('invalid_token', description) });
  }
  const failure = await checkBinding(
    { scheme: credentials.scheme, token: credentials.token, jkt: claims.jkt, proof: c.req.header('dpop'), required: options.dpop === 'required' },
    { method: c.req.method, url: calledUrl(ctx, c), now: options.now(), replay: store, nonces: ctx.nonces ?? undefined },
  );
  if (!failure) return claims;
  if (failure.reason === 'invalid_dpop_proof' && failure.proof === 'nonce') {
    const description = 'Use the DPoP nonce of the DPoP-Nonce header.';
    const headers = { 'WWW-Authenticate': dpopChallenge('use_dpop_nonce', description), 'DPoP-Nonce': await ctx.nonces!.current(options.now()) };
    return errorResponse(c, 401, 'use_dpop_nonce', description, headers);
  }
  if (failure.reason === 'dpop_required') {
    const description = 'This access token must be sent with the DPoP scheme and a proof of its key.';
    return errorResponse(c, 401, 'invalid_token', description, { 'WWW-Authenticate': dpopChallenge('invalid_token', description) });
  }
  const description = `The DPoP proof is invalid (${failure.proof}).`;
  return errorResponse(c, 401, 'invalid_dpop_proof', description, { 'WWW-Authenticate': dpopChallenge('invalid_dpop_proof', description) });
}
