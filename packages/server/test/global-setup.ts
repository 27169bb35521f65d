/**
 * Provides `databaseUrl` to the PostgreSQL tests: TESSERA_TEST_DATABASE_URL or DATABASE_URL when set,
 * otherwise a throwaway cluster started here and stopped at teardown. Missing PostgreSQL binaries fail
 * the run with instructions; the tests are never skipped.
 */
import type { TestProject } from 'vitest/node';
import { startPgCluster, type PgCluster } from '../tools/pg-cluster.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  let cluster: PgCluster | undefined;
  let url = process.env.TESSERA_TEST_DATABASE_URL || process.env.DATABASE_URL;
  if (!url) {
    cluster = await startPgCluster();
    url = cluster.url;
  }
  project.provide('databaseUrl', url);
  return async () => {
    await cluster?.stop();
  };
}
