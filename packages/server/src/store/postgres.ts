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
  // Every statement of the store is constant text: each gets a name, so a connection parses and plans
  // it once and later runs send only Bind/Execute (less work for PostgreSQL on every refresh).
  const names = new Map<string, string>();
  const named = (text: string) => {
    let name = names.get(text);
    if (!name) names.set(text, (name = `tessera_${names.size}`));
    return name;
  };
  const db: Db = {
    kind: 'postgres',
    async query(text, values) {
      return (await pool.query({ name: named(text), text, values: values ?? [] })).rows;
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
