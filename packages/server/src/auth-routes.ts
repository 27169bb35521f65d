import { randomUUID } from 'node:crypto';
import { Hono } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import type { AppContext, C, Env } from './context.ts';
import { clientAddress } from './context.ts';
import { authenticate, proofKey, tokenEndpointKey } from './authenticate.ts';
import { parseAuthorization } from './dpop.ts';
import { hashToken, newOpaqueToken } from './crypto-utils.ts';
import { HttpError, errorResponse, invalidToken } from './http-errors.ts';
import { hashPassword, verifyPassword } from './passwords.ts';
import type { IssuedTokens } from './refresh-tokens.ts';
import { field, hasBody, readJson } from './request-body.ts';
import { MAX_PASSWORD_LENGTH, createUser, hasInvisibleCharacters, looksLikeEmail, normalizeEmail, passwordTooShort, publicUser } from './users.ts';

export const REFRESH_COOKIE = 'tessera_refresh';
const RESET_TTL_MS = 15 * 60 * 1000;
const EMAIL = { max: 254 };
const PASSWORD = { max: MAX_PASSWORD_LENGTH };
const OPAQUE = { max: 512 };

/** The `email` field in its normalized form; bidi controls and other invisible characters are a 400. */
function emailField(body: unknown): string {
  const email = field(body, 'email', EMAIL);
  if (hasInvisibleCharacters(email)) {
    throw new HttpError(400, 'invalid_request', 'email: must not contain control, bidirectional or other invisible characters.');
  }
  return normalizeEmail(email);
}

/** The /auth/* routes. */
export function authRoutes(ctx: AppContext): Hono<Env> {
  const { options, store, stats, refreshTokens, throttle } = ctx;
  const app = new Hono<Env>();
  const limit = options.bodyLimit;
  const cookieMode = options.refreshTokenDelivery === 'cookie';

  const weakPassword = (c: C) =>
    errorResponse(c, 400, 'weak_password', `The password must have at least 8 characters.`);

  const tooManyAttempts = (c: C, waitMs: number) =>
    errorResponse(c, 429, 'too_many_attempts', 'Too many failed attempts. Try again later.', {
      'Retry-After': String(Math.ceil(waitMs / 1000)),
    });

  const cookieSecure = (c: C) => {
    const url = new URL(c.req.url);
    return !(url.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname));
  };
  const cookieBase = (c: C) => ({ httpOnly: true, sameSite: 'Strict' as const, path: '/auth', secure: cookieSecure(c) });

  /** The answer of a login or refresh; `jkt` is the DPoP key the tokens are bound to. */
  function tokenResponse(c: C, t: IssuedTokens, jkt: string | null): Response {
    const now = options.now();
    const body: Record<string, unknown> = {
      access_token: t.accessToken,
      token_type: jkt ? 'DPoP' : 'Bearer',
      expires_in: Math.max(0, Math.floor((t.accessExp * 1000 - now) / 1000)), // never more than the token really has left
    };
    if (cookieMode) {
      setCookie(c, REFRESH_COOKIE, t.refreshToken, {
        ...cookieBase(c),
        maxAge: Math.max(1, Math.floor((t.refreshExpiresAt - now) / 1000)),
      });
    } else {
      body.refresh_token = t.refreshToken;
    }
    body.user = publicUser(t.user);
    return c.json(body, 200);
  }

  /** The presented refresh token: the cookie in cookie mode, else (or as a fallback) the body field. */
  async function presentedRefreshToken(c: C): Promise<string | undefined> {
    if (cookieMode) {
      const cookie = getCookie(c, REFRESH_COOKIE);
      if (!hasBody(c)) return cookie;
      const body = await readJson(c, limit);
      return cookie ?? field(body, 'refresh_token', { ...OPAQUE, optional: true });
    }
    return field(await readJson(c, limit), 'refresh_token', OPAQUE);
  }

  app.use('*', async (c, next) => {
    await next();
    c.res.headers.set('Cache-Control', 'no-store'); // not c.header(): see app.ts
  });

  app.post('/register', async (c) => {
    const body = await readJson(c, limit);
    const email = emailField(body);
    const password = field(body, 'password', PASSWORD);
    const name = field(body, 'name', { max: 200, optional: true, allowEmpty: true });
    if (!looksLikeEmail(email)) return errorResponse(c, 400, 'invalid_request', 'email: not an e-mail address.');
    if (passwordTooShort(password)) return weakPassword(c);
    const user = await createUser(store, { email, password, name: name || null }, options.scryptCost, options.now());
    if (!user) return errorResponse(c, 409, 'email_taken', 'An account with this e-mail already exists.');
    return c.json({ user: publicUser(user) }, 201);
  });

  app.post('/login', async (c) => {
    const body = await readJson(c, limit);
    const email = emailField(body);
    const password = field(body, 'password', PASSWORD);
    const jkt = await tokenEndpointKey(ctx, c);
    const accountKey = `account:${email}`;
    const addressKey = `address:${clientAddress(c)}`;
    const { maxFailuresPerAccount, maxFailuresPerAddress } = options.throttle;
    const waits = await Promise.all([
      throttle.retryAfterMs(accountKey, maxFailuresPerAccount),
      throttle.retryAfterMs(addressKey, maxFailuresPerAddress),
    ]);
    const waitMs = Math.max(...waits);
    if (waitMs > 0) return tooManyAttempts(c, waitMs);
    const user = await store.findUserByEmail(email);
    const ok = await verifyPassword(password, user?.passwordHash ?? ctx.dummyPasswordHash);
    if (!user || !ok) {
      await throttle.fail(accountKey, addressKey);
      return errorResponse(c, 401, 'invalid_credentials', 'The e-mail or password is incorrect.');
    }
    await throttle.reset(accountKey);
    stats.counters.login++;
    return tokenResponse(c, await refreshTokens.issue(user, jkt), jkt);
  });

  app.post('/refresh', async (c) => {
    const presented = await presentedRefreshToken(c);
    const jkt = await tokenEndpointKey(ctx, c);
    const refresh = stats.counters.refresh;
    const result = presented ? await refreshTokens.rotate(presented, jkt) : ({ ok: false, reason: 'unknown' } as const);
    if (!result.ok) {
      refresh.invalidGrant++;
      if (cookieMode) deleteCookie(c, REFRESH_COOKIE, cookieBase(c));
      return errorResponse(c, 400, 'invalid_grant', 'The refresh token is invalid, expired, revoked or was already used.');
    }
    refresh.succeeded++;
    return tokenResponse(c, result.tokens, jkt);
  });

  app.post('/logout', async (c) => {
    let presented: string | undefined;
    try {
      presented = await presentedRefreshToken(c);
    } catch (error) {
      // A missing token is fine (logout is idempotent); a malformed request is still an error.
      if (!cookieMode) throw error;
    }
    // A token bound to a DPoP key is revoked only by its key (else a stolen one could end the owner's session).
    const credentials = parseAuthorization(c.req.header('authorization'));
    const jkt = await proofKey(ctx, c, credentials.scheme === 'DPoP' ? (credentials.token ?? undefined) : undefined);
    if (presented && !(await refreshTokens.revoke(presented, jkt))) {
      return errorResponse(c, 400, 'invalid_grant', 'This refresh token is bound to a DPoP key: revoke it with a proof of that key.');
    }
    if (cookieMode) deleteCookie(c, REFRESH_COOKIE, cookieBase(c));
    return c.body(null, 204);
  });

  app.get('/me', async (c) => {
    const claims = await authenticate(ctx, c);
    if (claims instanceof Response) return claims;
    const user = await store.findUserById(claims.sub);
    if (!user) return invalidToken(c);
    return c.json(publicUser(user), 200);
  });

  app.post('/forgot-password', async (c) => {
    const email = emailField(await readJson(c, limit));
    const user = await store.findUserByEmail(email);
    if (user) {
      const now = options.now();
      const token = newOpaqueToken();
      const expiresAt = now + RESET_TTL_MS;
      await store.insertPasswordReset({ id: randomUUID(), tokenHash: hashToken(token), userId: user.id, createdAt: now, expiresAt });
      const base = options.publicUrl ?? 'http://127.0.0.1';
      const message = {
        id: randomUUID(),
        kind: 'password_reset' as const,
        recipient: user.email,
        payload: { link: `${base}/reset-password?token=${token}`, token, expiresAt },
        createdAt: now,
      };
      await store.insertOutbox(message);
      await options.mailer?.(message);
    }
    return c.json({}, 202);
  });

  app.post('/reset-password', async (c) => {
    const body = await readJson(c, limit);
    const token = field(body, 'token', OPAQUE);
    const password = field(body, 'password', PASSWORD);
    if (passwordTooShort(password)) return weakPassword(c);
    const now = options.now();
    const userId = await store.consumePasswordReset(hashToken(token), now);
    if (!userId) return errorResponse(c, 400, 'invalid_token', 'The reset token is unknown, used or expired.');
    await store.updatePasswordHash(userId, await hashPassword(password, options.scryptCost));
    await store.revokeAllForUser(userId, now);
    return c.body(null, 204);
  });

  app.post('/change-password', async (c) => {
    const claims = await authenticate(ctx, c);
    if (claims instanceof Response) return claims;
    const user = await store.findUserById(claims.sub);
    if (!user) return invalidToken(c);
    const body = await readJson(c, limit);
    const current = field(body, 'current_password', PASSWORD);
    const next = field(body, 'new_password', PASSWORD);
    const accountKey = `account:${user.email}`;
    const waitMs = await throttle.retryAfterMs(accountKey, options.throttle.maxFailuresPerAccount);
    if (waitMs > 0) return tooManyAttempts(c, waitMs);
    if (!(await verifyPassword(current, user.passwordHash))) {
      await throttle.fail(accountKey);
      return errorResponse(c, 401, 'invalid_credentials', 'The current password is incorrect.');
    }
    if (passwordTooShort(next)) return weakPassword(c);
    await store.updatePasswordHash(user.id, await hashPassword(next, options.scryptCost));
    return c.body(null, 204);
  });

  return app;
}
