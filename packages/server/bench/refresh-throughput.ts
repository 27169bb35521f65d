/**
 * Refresh throughput of the reference server over loopback, on PGlite and on PostgreSQL.
 * `npm run bench -w @tessera/server`. Not a test: prints a Markdown table.
 *
 * K users log in, then C workers each rotate their own refresh token sequentially until
 * BENCH_MAX_REFRESHES in total or BENCH_MAX_SECONDS have passed. scrypt cost is minimal so the
 * numbers measure refresh (lookup, sign ES256, conditional UPDATE + INSERT), not hashing.
 * PostgreSQL: TESSERA_BENCH_DATABASE_URL / DATABASE_URL, else a throwaway local cluster.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { silentLogger } from '../src/options.ts';
import { startServer, type RunningServer } from '../src/server.ts';
import { startPgCluster, type PgCluster } from '../tools/pg-cluster.ts';

const MAX_REFRESHES = Number(process.env.BENCH_MAX_REFRESHES ?? 5000);
const MAX_SECONDS = Number(process.env.BENCH_MAX_SECONDS ?? 15);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);
const USERS = CONCURRENCY;
const WARMUP = 100;

interface Row {
  store: string;
  refreshes: number;
  seconds: number;
  perSecond: number;
  p50: number;
  p99: number;
  failures: number;
}

async function post(url: string, body: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, json: await res.json() };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function measure(label: string, server: RunningServer): Promise<Row> {
  const tokens: string[] = [];
  for (let i = 0; i < USERS; i++) {
    const email = `bench-${randomUUID()}@example.test`;
    await post(`${server.url}/auth/register`, { email, password: 'bench password' });
    const login = await post(`${server.url}/auth/login`, { email, password: 'bench password' });
    tokens.push(login.json.refresh_token);
  }
  let budget = WARMUP;
  let failures = 0;
  const latencies: number[] = [];
  let deadline = Infinity;
  const worker = async (i: number, record: boolean) => {
    while (budget > 0 && performance.now() < deadline) {
      budget--;
      const t = performance.now();
      const res = await post(`${server.url}/auth/refresh`, { refresh_token: tokens[i] });
      const ms = performance.now() - t;
      if (res.status !== 200) {
        failures++;
        return;
      }
      tokens[i] = res.json.refresh_token;
      if (record) latencies.push(ms);
    }
  };
  await Promise.all(tokens.map((_, i) => worker(i, false)));
  budget = MAX_REFRESHES;
  const start = performance.now();
  deadline = start + MAX_SECONDS * 1000;
  await Promise.all(tokens.map((_, i) => worker(i, true)));
  const seconds = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    store: label,
    refreshes: latencies.length,
    seconds,
    perSecond: latencies.length / seconds,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    failures,
  };
}

const common = { scryptCost: 2, logger: silentLogger, accessTokenTtl: 300 } as const;
const rows: Row[] = [];

const pglite = await startServer(common);
try {
  rows.push(await measure('PGlite (in memory)', pglite));
} finally {
  await pglite.close();
}

let cluster: PgCluster | undefined;
let adminUrl = process.env.TESSERA_BENCH_DATABASE_URL || process.env.DATABASE_URL;
if (!adminUrl) {
  cluster = await startPgCluster();
  adminUrl = cluster.url;
}
const dbName = `tessera_bench_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
const admin = new pg.Client(adminUrl);
await admin.connect();
await admin.query(`CREATE DATABASE ${dbName}`);
const dbUrl = new URL(adminUrl);
dbUrl.pathname = `/${dbName}`;
try {
  const postgres = await startServer({ ...common, databaseUrl: dbUrl.toString() });
  try {
    rows.push(await measure(`PostgreSQL${cluster ? ' (local, fsync off)' : ''}`, postgres));
  } finally {
    await postgres.close();
  }
} finally {
  await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  await admin.end();
  await cluster?.stop();
}

const f = (n: number, d = 1) => n.toFixed(d);
console.log(`\nRefresh throughput over loopback: ${USERS} users, concurrency ${CONCURRENCY}, at most ${MAX_REFRESHES} refreshes or ${MAX_SECONDS} s per store (Node ${process.version})\n`);
console.log('| store | refreshes | seconds | refreshes/s | p50 ms | p99 ms | failures |');
console.log('|---|---:|---:|---:|---:|---:|---:|');
for (const r of rows) {
  console.log(`| ${r.store} | ${r.refreshes} | ${f(r.seconds, 2)} | ${f(r.perSecond, 0)} | ${f(r.p50, 2)} | ${f(r.p99, 2)} | ${r.failures} |`);
}
