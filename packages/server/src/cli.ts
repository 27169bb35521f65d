/**
 * Development server: `npm start` at the repo root, or `npx tsx packages/server/src/cli.ts`.
 * Listens on 127.0.0.1:$PORT (default 8787), keeps PGlite data and the signing key in `<repo>/.data`
 * (PostgreSQL when DATABASE_URL is set), enables fault injection and seeds a demo user.
 */
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';
import type { ServerOptions } from './options.ts';
import { startServer } from './server.ts';
import { ensureUser } from './users.ts';

const DEMO_EMAIL = 'demo@tessera.dev';
const DEMO_PASSWORD = 'tessera-demo';
const repoRoot = resolve(fileURLToPath(import.meta.url), '../../../..');

const port = Number(process.env.PORT ?? 8787);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`PORT must be a port number, got ${process.env.PORT}`);
  process.exit(1);
}

const server = await startServer({
  port,
  dataDir: process.env.TESSERA_DATA_DIR ?? resolve(repoRoot, '.data'),
  databaseUrl: process.env.DATABASE_URL || undefined,
  staticDir: process.env.TESSERA_STATIC_DIR || undefined,
  faults: true,
  accessTokenTtl: Number(process.env.TESSERA_ACCESS_TTL ?? 20),
  reuseGraceMs: Number(process.env.TESSERA_REUSE_GRACE_MS ?? 0),
  dpop: (process.env.TESSERA_DPOP || undefined) as ServerOptions['dpop'], // off | optional | required; checked by resolveOptions
  publicUrl: process.env.TESSERA_PUBLIC_URL || undefined, // the origin pages call through a proxy (reset links, DPoP htu)
  // The dev server plays the mail service: it prints reset links (the only place a secret is printed).
  mailer: (message) => console.log(`[tessera] password reset for ${message.recipient}: ${String(message.payload.link)}`),
});
await ensureUser(server.store, { email: DEMO_EMAIL, password: DEMO_PASSWORD, name: 'Demo User', roles: ['user', 'demo'] }, server.options.scryptCost);

console.log(`Tessera reference token server on ${server.url} (${server.store.kind})`);
console.log(`Demo account: ${DEMO_EMAIL} / ${DEMO_PASSWORD}`);
console.log(`Access tokens live ${server.options.accessTokenTtl} s; fault injection at POST ${server.url}/__faults`);

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) process.exit(1);
    stopping = true;
    server.close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(error);
        process.exit(1);
      },
    );
  });
}
