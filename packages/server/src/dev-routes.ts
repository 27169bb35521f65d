import { Hono } from 'hono';
import type { AppContext, Env } from './context.ts';
import { readJson } from './request-body.ts';

/** POST /__faults, GET /__faults, GET /__stats, POST /__stats/reset. Mounted only with `faults: true`. */
export function devRoutes(ctx: AppContext): Hono<Env> {
  const app = new Hono<Env>();
  app.get('/__faults', (c) => c.json(ctx.faults.settings, 200));
  app.post('/__faults', async (c) => {
    const body = (await readJson(c, ctx.options.bodyLimit)) as Record<string, unknown>;
    return c.json(ctx.faults.configure(body), 200);
  });
  app.get('/__stats', (c) => c.json(ctx.stats.snapshot(), 200));
  app.post('/__stats/reset', (c) => {
    ctx.stats.reset();
    return c.json(ctx.stats.snapshot(), 200);
  });
  return app;
}
