/**
 * A throwaway PostgreSQL cluster for tests and the benchmark: initdb into a temp folder, start on
 * 127.0.0.1 at a free port, trust auth, fsync off. As root it runs the binaries as the `postgres`
 * user (created with useradd when missing), because PostgreSQL refuses to run as root.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

export interface PgCluster {
  /** Connection string of the `postgres` database as superuser `tessera`. */
  url: string;
  /** The postmaster's process id (its children are the backends), for the bench's CPU accounting. */
  pid: number;
  stop(): Promise<void>;
}

const RUN_AS = 'postgres';

/** The folder holding initdb and pg_ctl, or null. Looks at PATH, then /usr/lib/postgresql/<newest>/bin. */
export function findPgBinDir(): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl'))) return dir;
  }
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return null;
  const versions = readdirSync(base).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
  for (const v of versions) {
    const dir = join(base, v, 'bin');
    if (existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl'))) return dir;
  }
  return null;
}

/** A port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

function userIds(name: string): { uid: number; gid: number } | null {
  const r = spawnSync('id', ['-u', name], { encoding: 'utf8' });
  if (r.status !== 0) return null;
  const g = spawnSync('id', ['-g', name], { encoding: 'utf8' });
  return { uid: Number(r.stdout.trim()), gid: Number(g.stdout.trim()) };
}

/** Runs a PostgreSQL binary, as RUN_AS when we are root. @throws with the command's output on failure. */
function runPg(bin: string, args: string[]): void {
  const asRoot = process.getuid?.() === 0;
  let cmd = bin;
  let argv = args;
  if (asRoot) {
    if (existsSync('/usr/sbin/runuser') || existsSync('/sbin/runuser') || spawnSync('which', ['runuser']).status === 0) {
      cmd = 'runuser';
      argv = ['-u', RUN_AS, '--', bin, ...args];
    } else {
      cmd = 'su';
      argv = [RUN_AS, '-s', '/bin/sh', '-c', [bin, ...args].map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(' ')];
    }
  }
  const r = spawnSync(cmd, argv, { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) {
    throw new Error(`${[cmd, ...argv].join(' ')} failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  }
}

/**
 * Starts a cluster.
 * @throws when the PostgreSQL server binaries are missing — install them (Debian: `apt-get install -y postgresql`).
 */
export async function startPgCluster(): Promise<PgCluster> {
  const binDir = findPgBinDir();
  if (!binDir) {
    throw new Error(
      'PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or in /usr/lib/postgresql/*/bin. ' +
        'The store tests need a real PostgreSQL: install it (`apt-get install -y postgresql`, which `.ci/run` does) ' +
        'or set TESSERA_TEST_DATABASE_URL to a database where the user may CREATE DATABASE.',
    );
  }
  const dir = mkdtempSync(join(tmpdir(), 'tessera-pg-'));
  if (process.getuid?.() === 0) {
    let ids = userIds(RUN_AS);
    if (!ids) {
      execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', RUN_AS]);
      ids = userIds(RUN_AS);
    }
    if (!ids) throw new Error(`could not find or create the ${RUN_AS} user to run PostgreSQL as`);
    chownSync(dir, ids.uid, ids.gid);
  }
  const data = join(dir, 'data');
  const port = await freePort();
  runPg(join(binDir, 'initdb'), ['-D', data, '-U', 'tessera', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
  const serverOptions = `-h 127.0.0.1 -p ${port} -k ${dir} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200`;
  runPg(join(binDir, 'pg_ctl'), ['-D', data, '-l', join(dir, 'server.log'), '-o', serverOptions, '-w', '-t', '60', 'start']);
  let stopped = false;
  return {
    url: `postgres://tessera@127.0.0.1:${port}/postgres`,
    pid: Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]),
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        runPg(join(binDir, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
