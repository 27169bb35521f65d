import { Hono } from 'hono';
import type { AppContext, Env } from './context.ts';
import { bearerToken } from './context.ts';
import { invalidToken } from './http-errors.ts';
import { readJson } from './request-body.ts';

const ITEMS = [
  { id: 1, name: 'alpha' },
  { id: 2, name: 'beta' },
  { id: 3, name: 'gamma' },
];

/** The protected sample API under /api: every route requires a valid Bearer access token. */
export function apiRoutes(ctx: AppContext): Hono<Env> {
  const { options, signer, stats } = ctx;
  const app = new Hono<Env>();

  app.use('*', async (c, next) => {
    stats.counters.api.calls++;
    const token = bearerToken(c);
    const claims = token ? await signer.verify(token, options.now()) : null;
    if (!claims) {
      stats.counters.api.unauthorized++;
      return invalidToken(c);
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
