import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Hono } from 'hono';
import { serveStatic } from '@hono/node-server/serve-static';
import { apiRoutes } from './api-routes.ts';
import { authRoutes } from './auth-routes.ts';
import type { AppContext, Env } from './context.ts';
import { cors } from './cors.ts';
import { devRoutes } from './dev-routes.ts';
import { hmacNonces } from './dpop.ts';
import { Faults } from './faults.ts';
import { HttpError, errorResponse } from './http-errors.ts';
import { HOME_PAGE } from './home-page.ts';
import { resolveOptions, type ResolvedOptions, type ServerOptions } from './options.ts';
import { createDummyHash } from './passwords.ts';
import { RefreshTokens } from './refresh-tokens.ts';
import { Stats } from './stats.ts';
import { openStore } from './store/index.ts';
import type { Store } from './store/types.ts';
import { LoginThrottle } from './throttle.ts';
import { createTokenSigner, type TokenSigner } from './tokens.ts';

/** What {@link createApp} resolves to. */
export interface TesseraApp {
  app: Hono<Env>;
  store: Store;
  stats: Stats;
  signer: TokenSigner;
  faults: Faults;
  options: ResolvedOptions;
  /** Releases requests held by faults and closes the store unless it was passed in. */
  close(): Promise<void>;
}

/**
 * Builds the Hono app: opens the store (running migrations), loads or creates the signing key.
 * @throws TypeError for invalid options; rejects when the database cannot be opened.
 * @example const { app, close } = await createApp({ scryptCost: 1024 }); await app.request('/auth/me');
 */
export async function createApp(input: ServerOptions = {}): Promise<TesseraApp> {
  const options = resolveOptions(input);
  const [store, dummyPasswordHash] = await Promise.all([
    input.store ? input.store.migrate().then(() => input.store!) : openStore(options),
    createDummyHash(options.scryptCost),
  ]);
  const signer = await createTokenSigner({
    store,
    keysDir: options.dataDir ? join(options.dataDir, 'keys') : undefined,
    issuer: options.issuer,
    audience: options.audience,
    now: options.now,
    reloadMs: options.keyReloadMs,
    logger: options.logger,
  }).catch(async (error: unknown) => {
    if (!input.store) await store.close();
    throw error;
  });
  const stats = new Stats();
  const faults = new Faults();
  const nonces = options.dpopNonces ? hmacNonces(await store.sharedSecret('dpop-nonce', randomBytes(32).toString('base64url'))) : null;
  const ctx: AppContext = {
    options,
    store,
    signer,
    stats,
    faults,
    dummyPasswordHash,
    nonces,
    refreshTokens: new RefreshTokens({ store, signer, options, stats }),
    throttle: new LoginThrottle({ store, windowMs: options.throttle.windowMs, now: options.now }),
  };

  const app = new Hono<Env>();
  app.onError((error, c) => {
    if (error instanceof HttpError) return errorResponse(c, error.status, error.code, error.message, error.headers);
    options.logger.error('unhandled error', { method: c.req.method, path: c.req.path, error: String(error) });
    return errorResponse(c, 500, 'server_error', 'Something went wrong on the server.');
  });
  app.notFound((c) => errorResponse(c, 404, 'not_found', `No route for ${c.req.method} ${c.req.path}.`));

  app.use('*', async (c, next) => {
    await next();
    // On c.res.headers, not c.header(): after the handler, c.header() rebuilds the response (a full
    // Fetch Response and a body stream per request, ~4 % of a refresh's CPU in the profile).
    c.res.headers.set('X-Content-Type-Options', 'nosniff');
    c.res.headers.set('Referrer-Policy', 'no-referrer');
  });
  app.use('*', cors(options.corsOrigins, { credentials: options.refreshTokenDelivery === 'cookie' }));
  if (nonces) {
    app.use('*', async (c, next) => {
      await next();
      if (!c.res.headers.has('DPoP-Nonce')) c.res.headers.set('DPoP-Nonce', await nonces.current(options.now()));
    });
  }
  app.use('/auth/refresh', async (c, next) => {
    if (c.req.method === 'POST') stats.counters.refresh.calls++;
    await next();
  });
  if (options.faults) app.post('/auth/refresh', faults.middleware());

  app.route('/auth', authRoutes(ctx));
  app.route('/api', apiRoutes(ctx));
  if (options.faults) app.route('/', devRoutes(ctx));
  app.get('/.well-known/jwks.json', (c) => {
    // Cached for less than the activation delay, so a cache never misses a key before it signs.
    c.header('Cache-Control', `public, max-age=${Math.floor(options.keyActivationDelayMs / 2000)}`);
    return c.json(signer.jwks(), 200);
  });
  if (options.staticDir) {
    app.use('*', serveStatic({ root: options.staticDir }));
  } else {
    app.get('/', (c) => c.html(HOME_PAGE));
  }

  return {
    app,
    store,
    stats,
    signer,
    faults,
    options,
    async close() {
      faults.release();
      signer.close();
      if (!input.store) await store.close();
    },
  };
}
