import { Hono } from 'hono';
import type { AppContext, Env } from './context.ts';
import { authenticate } from './authenticate.ts';
import { readJson } from './request-body.ts';

const ITEMS = [
  { id: 1, name: 'alpha' },
  { id: 2, name: 'beta' },
  { id: 3, name: 'gamma' },
];

/** The protected sample API under /api: every route requires a valid access token (Bearer, or DPoP with its proof). */
export function apiRoutes(ctx: AppContext): Hono<Env> {
  const { options, stats } = ctx;
  const app = new Hono<Env>();

  app.use('*', async (c, next) => {
    stats.counters.api.calls++;
    const claims = await authenticate(ctx, c);
    if (claims instanceof Response) {
      stats.counters.api.unauthorized++;
      return claims;
    }
    c.set('claims', claims);
    await next();
  });

  app.get('/data', (c) => c.json({ sub: c.get('claims').sub, items: ITEMS }, 200));

  app.post('/echo', async (c) => {
    const body = await readJson(c, options.bodyLimit, 'any');
    return c.json({ sub: c.get('claims').sub, body }, 200);
  });

  return app;
}
