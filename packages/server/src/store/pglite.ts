import { mkdir } from 'node:fs/promises';
import { PGlite } from '@electric-sql/pglite';
import { SqlStore, type Db, type Queryable } from './sql-store.ts';

/**
 * Opens a PGlite (embedded PostgreSQL, WASM) store and runs migrations.
 * @param dataDir a folder for the database files; unset = in memory.
 * @remarks One process per data folder. Starting PGlite takes a few seconds: share one per test file.
 */
export async function openPgliteStore(dataDir?: string): Promise<SqlStore> {
  if (dataDir) await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const pg = dataDir ? await PGlite.create(dataDir) : await PGlite.create();
  const wrap = (q: { query: PGlite['query'] }): Queryable => ({
    async query(sql, params) {
      return (await q.query<Record<string, unknown>>(sql, params)).rows;
    },
  });
  const db: Db = {
    kind: 'pglite',
    ...wrap(pg),
    transaction: (fn) => pg.transaction((tx) => fn(wrap(tx))),
    close: () => pg.close(),
  };
  const store = new SqlStore(db);
  await store.migrate();
  return store;
}
