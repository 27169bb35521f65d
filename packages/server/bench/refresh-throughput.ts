/**
 * Refresh throughput of the reference server over loopback: PGlite (one process, in memory) and
 * PostgreSQL with 1, 2 and 3 server processes on one database, traffic spread round-robin.
 * `npm run bench -w @tessera/server`. Not a test: prints a Markdown table and the scaling ratio.
 *
 * K users log in, then C workers each rotate their own refresh token sequentially: first
 * BENCH_WARMUP refreshes per instance, not measured (a server runs for days: what is measured is
 * its steady state, not V8 compiling its code; after 200 a server spent 0.43 ms of CPU per
 * refresh, after 2 000 0.28 ms), then until BENCH_MAX_REFRESHES in total or BENCH_MAX_SECONDS have passed. scrypt cost is minimal so the
 * numbers measure refresh (lookup, sign ES256, conditional UPDATE + INSERT), not hashing. The load
 * generator runs in this process, each server in its own (tools/instances.ts).
 * PostgreSQL: TESSERA_BENCH_DATABASE_URL / DATABASE_URL, else a throwaway local cluster.
 * BENCH_CPU_PROF=<dir> writes a --cpu-prof profile of every server process there.
 */
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { loadavg } from 'node:os';
import pg from 'pg';
import type { ServerOptions } from '../src/options.ts';
import { startInstances, type Instance } from '../tools/instances.ts';
import { startPgCluster, type PgCluster } from '../tools/pg-cluster.ts';

const MAX_REFRESHES = Number(process.env.BENCH_MAX_REFRESHES ?? 5000);
const MAX_SECONDS = Number(process.env.BENCH_MAX_SECONDS ?? 15);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);
const USERS = CONCURRENCY;
const WARMUP = Number(process.env.BENCH_WARMUP ?? 2000);
const PROFILE_DIR = process.env.BENCH_CPU_PROF;
/** Which rows to run: `pglite` and `pg<instances>`, e.g. BENCH_ROWS=pg1 for one PostgreSQL instance only. */
const ROWS = (process.env.BENCH_ROWS ?? 'pglite,pg1,pg2,pg3').split(',');
const nodeArgs = PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] : [];

interface Row {
  store: string;
  instances: number;
  refreshes: number;
  seconds: number;
  perSecond: number;
  p50: number;
  p99: number;
  failures: number;
  /** CPU time of the server processes per refresh (Linux /proc; NaN elsewhere): what load elsewhere on the machine does not change. */
  cpuMsPerRefresh: number;
  /** CPU time of this process (the load generator) per refresh. */
  clientCpuMsPerRefresh: number;
  /** CPU time of the local PostgreSQL cluster's processes per refresh (NaN without one). */
  dbCpuMsPerRefresh: number;
}

/** User + system CPU time of a process in ms, from /proc/<pid>/stat (clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return NaN;
  }
}
const serversCpuMs = (servers: Instance[]) => servers.reduce((sum, s) => sum + cpuMs(s.pid), 0);
/** The local cluster's postmaster and its children (backends, WAL writer…): the database's CPU time so far, ms; NaN without a local cluster (PGlite rows run before it starts). */
function clusterCpuMs(): number {
  if (!cluster) return NaN;
  let sum = cpuMs(cluster.pid);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1]!.split(' ')[1] === String(cluster.pid)) sum += cpuMs(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return sum;
}
const ownCpuMs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

// The load generator shares the machine's cores with the servers and the database: it speaks plain
// node:http over kept-alive sockets, which costs a fraction of what fetch does per request.
const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });

function post(url: string, body: unknown): Promise<{ status: number; json: { refresh_token?: string } }> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode!, json: JSON.parse(Buffer.concat(chunks).toString()) as { refresh_token?: string } });
        } catch (error) {
          reject(error);
        }
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(payload);
  });
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function measure(label: string, servers: Instance[]): Promise<Row> {
  let next = 0;
  const pick = () => servers[next++ % servers.length]!.url;
  const tokens: string[] = [];
  for (let i = 0; i < USERS; i++) {
    const email = `bench-${randomUUID()}@example.test`;
    await post(`${pick()}/auth/register`, { email, password: 'bench password' });
    const login = await post(`${pick()}/auth/login`, { email, password: 'bench password' });
    tokens.push(login.json.refresh_token!);
  }
  let budget = WARMUP * servers.length;
  let failures = 0;
  const latencies: number[] = [];
  let deadline = Infinity;
  const worker = async (i: number, record: boolean) => {
    while (budget > 0 && performance.now() < deadline) {
      budget--;
      const t = performance.now();
      const res = await post(`${pick()}/auth/refresh`, { refresh_token: tokens[i] });
      const ms = performance.now() - t;
      if (res.status !== 200) {
        failures++;
        return;
      }
      tokens[i] = res.json.refresh_token!;
      if (record) latencies.push(ms);
    }
  };
  await Promise.all(tokens.map((_, i) => worker(i, false)));
  budget = MAX_REFRESHES;
  const cpuBefore = serversCpuMs(servers);
  const dbBefore = clusterCpuMs();
  const ownBefore = ownCpuMs();
  const start = performance.now();
  deadline = start + MAX_SECONDS * 1000;
  await Promise.all(tokens.map((_, i) => worker(i, true)));
  const seconds = (performance.now() - start) / 1000;
  const cpu = serversCpuMs(servers) - cpuBefore;
  const own = ownCpuMs() - ownBefore;
  const db = clusterCpuMs() - dbBefore;
  latencies.sort((a, b) => a - b);
  return {
    store: label,
    instances: servers.length,
    refreshes: latencies.length,
    seconds,
    perSecond: latencies.length / seconds,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    failures,
    cpuMsPerRefresh: cpu / latencies.length,
    clientCpuMsPerRefresh: own / latencies.length,
    dbCpuMsPerRefresh: db / latencies.length,
  };
}

async function run(label: string, n: number, options: ServerOptions): Promise<Row> {
  const servers = await startInstances(n, { scryptCost: 2, accessTokenTtl: 300, ...options }, nodeArgs);
  try {
    return await measure(label, servers);
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
}

let cluster: PgCluster | undefined;
const rows: Row[] = [];
if (ROWS.includes('pglite')) rows.push(await run('PGlite (in memory)', 1, {}));
const pgInstances = [1, 2, 3].filter((n) => ROWS.includes(`pg${n}`));

let adminUrl = process.env.TESSERA_BENCH_DATABASE_URL || process.env.DATABASE_URL;
if (!adminUrl && pgInstances.length) {
  cluster = await startPgCluster();
  adminUrl = cluster.url;
}
const admin = pgInstances.length ? new pg.Client(adminUrl) : undefined;
await admin?.connect();
try {
  for (const n of pgInstances) {
    const dbName = `tessera_bench_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
    await admin!.query(`CREATE DATABASE ${dbName}`);
    const dbUrl = new URL(adminUrl!);
    dbUrl.pathname = `/${dbName}`;
    try {
      rows.push(await run(`PostgreSQL${cluster ? ' (local, fsync off)' : ''}`, n, { databaseUrl: dbUrl.toString() }));
    } finally {
      await admin!.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    }
  }
} finally {
  await admin?.end();
  await cluster?.stop();
}

const f = (n: number, d = 1) => n.toFixed(d);
console.log(
  `\nRefresh throughput over loopback: ${USERS} users, concurrency ${CONCURRENCY}, round-robin over the instances, after ${WARMUP} unmeasured refreshes per instance, at most ${MAX_REFRESHES} refreshes or ${MAX_SECONDS} s per row (Node ${process.version}, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')})\n`,
);
console.log('| store | instances | refreshes | seconds | refreshes/s | p50 ms | p99 ms | failures | CPU ms/refresh: server | database | load generator |');
console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const r of rows) {
  console.log(
    `| ${r.store} | ${r.instances} | ${r.refreshes} | ${f(r.seconds, 2)} | ${f(r.perSecond, 0)} | ${f(r.p50, 2)} | ${f(r.p99, 2)} | ${r.failures} | ${f(r.cpuMsPerRefresh, 2)} | ${Number.isNaN(r.dbCpuMsPerRefresh) ? '–' : f(r.dbCpuMsPerRefresh, 2)} | ${f(r.clientCpuMsPerRefresh, 2)} |`,
  );
}
const pgRows = rows.filter((r) => r.store.startsWith('PostgreSQL'));
const one = pgRows.find((r) => r.instances === 1);
const three = pgRows.find((r) => r.instances === 3);
if (one && three) console.log(`\nScaling, PostgreSQL 3 instances / 1 instance: ${f(three.perSecond / one.perSecond, 2)}×`);
