import type { MiddlewareHandler } from 'hono';

/**
 * CORS for an explicit list of origins. Other origins get no CORS headers (the browser then refuses
 * the response); there is no wildcard. `credentials` (the refresh token in a cookie) adds
 * `Access-Control-Allow-Credentials: true`, which a page's `credentials: 'include'` needs.
 */
export function cors(origins: readonly string[], { credentials }: { credentials: boolean }): MiddlewareHandler {
  const allowed = new Set(origins);
  return async (c, next) => {
    const origin = c.req.header('origin');
    const ok = origin !== undefined && allowed.has(origin);
    if (c.req.method === 'OPTIONS' && c.req.header('access-control-request-method')) {
      const headers = new Headers({ Vary: 'Origin' });
      if (ok) {
        headers.set('Access-Control-Allow-Origin', origin);
        if (credentials) headers.set('Access-Control-Allow-Credentials', 'true');
        headers.set('Access-Control-Allow-Methods', 'GET, POST, OPTIONS');
        headers.set('Access-Control-Allow-Headers', 'Content-Type, Authorization, DPoP');
        headers.set('Access-Control-Max-Age', '600');
      }
      return new Response(null, { status: 204, headers });
    }
    await next();
    c.res.headers.append('Vary', 'Origin');
    if (ok) {
      c.res.headers.set('Access-Control-Allow-Origin', origin);
      if (credentials) c.res.headers.set('Access-Control-Allow-Credentials', 'true');
      c.res.headers.set('Access-Control-Expose-Headers', 'WWW-Authenticate, Retry-After, DPoP-Nonce');
    }
  };
}
