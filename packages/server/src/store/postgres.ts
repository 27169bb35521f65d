import pg from 'pg';
import { SqlStore, type Db } from './sql-store.ts';

/**
 * Opens a PostgreSQL store (a connection pool) and runs migrations. Several server instances may share
 * one database; migrations are serialised with an advisory lock.
 * @throws when the database cannot be reached.
 */
export async function openPostgresStore(connectionString: string, options: { maxConnections?: number } = {}): Promise<SqlStore> {
  const pool = new pg.Pool({ connectionString, max: options.maxConnections ?? 10 });
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on('error', () => {});
  const db: Db = {
    kind: 'postgres',
    async query(sql, params) {
      return (await pool.query(sql, params)).rows;
    },
    async transaction(fn) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const result = await fn({ query: async (sql, params) => (await client.query(sql, params)).rows });
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {});
        throw error;
      } finally {
        client.release();
      }
    },
    close: () => pool.end(),
  };
  const store = new SqlStore(db);
  try {
    await store.migrate();
  } catch (error) {
    await pool.end().catch(() => {});
    throw error;
  }
  return store;
}
