import { join } from 'node:path';
import { openPgliteStore } from './pglite.ts';
import { openPostgresStore } from './postgres.ts';
import type { Store } from './types.ts';

export type { Store } from './types.ts';
export { openPgliteStore } from './pglite.ts';
export { openPostgresStore } from './postgres.ts';

/** PostgreSQL when `databaseUrl` is set, else PGlite in `<dataDir>/pglite` (in memory without dataDir). */
export function openStore(options: { databaseUrl?: string | undefined; dataDir?: string | undefined }): Promise<Store> {
  if (options.databaseUrl) return openPostgresStore(options.databaseUrl);
  return openPgliteStore(options.dataDir ? join(options.dataDir, 'pglite') : undefined);
}
