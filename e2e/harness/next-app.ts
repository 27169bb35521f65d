/**
 * examples/next as a user runs it: Tessera from its packed tarball (`npm pack`, not the source),
 * the example's own dependencies installed inside examples/next (not by the root `npm ci`: Next is
 * ~100 MB and `npm start` must not wait for it), `next build`, then `next start` on a free
 * loopback port.
 *
 * The install is skipped when node_modules was installed from the same package.json +
 * package-lock.json and the same tarball (a stamp in node_modules). The committed lockfile pins
 * every third-party package; Tessera's entry in it cannot pin the tarball, whose bytes change with
 * the library: `npm ci` would fail (EINTEGRITY) or, worse, take an older tarball of the same
 * integrity from the npm cache. So the install is `npm install --no-save ./tessera.tgz`: the locked
 * versions for everything else, this tarball for Tessera, package.json and the lockfile untouched;
 * then the installed integrity is checked against the tarball's.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
/** The example's folder. */
export const NEXT_APP_DIR = join(root, 'examples/next');
const library = join(root, 'packages/tessera');
const stampFile = join(NEXT_APP_DIR, 'node_modules/.tessera-e2e.json');

/** Runs a command (no shell), bounded; resolves its combined output, rejects with it on failure. */
export function run(command: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs: number }): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (out += d));
    const timer = setTimeout(() => killGroup(child, 'SIGKILL'), options.timeoutMs);
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${command} ${args.join(' ')} (in ${options.cwd}) ended with ${signal ?? `exit code ${code}`}:\n${out.slice(-6_000)}`));
    });
  });
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals) {
  try {
    if (child.pid) process.kill(-child.pid, signal);
  } catch {
    // ESRCH: gone already.
  }
}

const seconds = (since: number) => `${((performance.now() - since) / 1000).toFixed(1)} s`;

/** Modification times of the files under `dir` (recursive); none when it does not exist. */
const mtimes = (dir: string) =>
  existsSync(dir) ? readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => statSync(join(e.parentPath, e.name)).mtimeMs) : [];

/**
 * Builds packages/tessera (unless dist is newer than every source file, e.g. built by the package
 * test of the same run) and packs it into examples/next/tessera.tgz. Resolves the tarball's integrity.
 */
export async function packTessera(log: (line: string) => void): Promise<string> {
  const started = performance.now();
  const inputs = [...mtimes(join(library, 'src')), ...['package.json', 'tsup.config.ts', 'tsconfig.json'].map((f) => statSync(join(library, f)).mtimeMs)];
  const built = mtimes(join(library, 'dist'));
  const fresh = built.length > 0 && Math.min(...built) > Math.max(...inputs);
  if (!fresh) await run('npm', ['run', 'build'], { cwd: library, timeoutMs: 300_000 });
  const dest = mkdtempSync(join(tmpdir(), 'tessera-pack-'));
  try {
    const [packed] = JSON.parse(await run('npm', ['pack', '--json', '--pack-destination', dest], { cwd: library, timeoutMs: 60_000 })) as { filename: string; integrity: string }[];
    copyFileSync(join(dest, packed!.filename), join(NEXT_APP_DIR, 'tessera.tgz'));
    log(`[next] tessera ${fresh ? 'packed (dist was up to date)' : 'built and packed'} (${packed!.filename}) in ${seconds(started)}`);
    return packed!.integrity;
  } finally {
    rmSync(dest, { recursive: true, force: true });
  }
}

/** Installs the example's dependencies and the tarball, unless the stamp says they are there. */
export async function installNextApp(integrity: string, log: (line: string) => void): Promise<void> {
  const lock = createHash('sha256')
    .update(readFileSync(join(NEXT_APP_DIR, 'package.json')))
    .update(readFileSync(join(NEXT_APP_DIR, 'package-lock.json')))
    .digest('hex');
  const stamp = existsSync(stampFile) ? (JSON.parse(readFileSync(stampFile, 'utf8')) as { lock?: string; tessera?: string }) : {};
  if (stamp.lock === lock && stamp.tessera === integrity && existsSync(join(NEXT_APP_DIR, 'node_modules/next/package.json'))) {
    log('[next] install: skipped (same lockfile, same tarball)');
    return;
  }
  const started = performance.now();
  // A new lockfile: start from nothing, as `npm ci` would.
  if (stamp.lock !== lock) rmSync(join(NEXT_APP_DIR, 'node_modules'), { recursive: true, force: true });
  await run('npm', ['install', '--no-save', '--no-audit', '--no-fund', './tessera.tgz'], { cwd: NEXT_APP_DIR, timeoutMs: 600_000 });
  const installed = JSON.parse(readFileSync(join(NEXT_APP_DIR, 'node_modules/.package-lock.json'), 'utf8')) as { packages: Record<string, { integrity?: string }> };
  const got = installed.packages['node_modules/tessera']?.integrity;
  if (got !== integrity) throw new Error(`examples/next has tessera ${got ?? '(none)'} installed, not the tarball just packed (${integrity})`);
  writeFileSync(stampFile, JSON.stringify({ lock, tessera: integrity }));
  log(`[next] install (${stamp.lock === lock ? 'tessera only' : 'all dependencies'}): ${seconds(started)}`);
}

const nextBin = () => join(NEXT_APP_DIR, 'node_modules/next/dist/bin/next');
const nextEnv = (api: string) => ({ TESSERA_API: api, NEXT_TELEMETRY_DISABLED: '1', NODE_ENV: 'production' });

/** `next build` with the rewrites pointing at `api` (Next bakes them into the build). Resolves its output. */
export async function buildNextApp(api: string, log: (line: string) => void): Promise<string> {
  const started = performance.now();
  const output = await run(process.execPath, [nextBin(), 'build'], { cwd: NEXT_APP_DIR, env: nextEnv(api), timeoutMs: 600_000 });
  log(`[next] next build: ${seconds(started)}`);
  return output;
}

/** A running `next start`. */
export interface RunningNextApp {
  /** e.g. `http://127.0.0.1:41234` */
  url: string;
  /** What it printed so far. */
  output(): string;
  /** Ends its process group. Idempotent. */
  close(): Promise<void>;
}

/** `next start` on 127.0.0.1, a free port; resolves once it printed its URL. */
export async function startNextApp(api: string, { timeoutMs = 60_000 } = {}): Promise<RunningNextApp> {
  const child = spawn(process.execPath, [nextBin(), 'start', '-H', '127.0.0.1', '-p', '0'], {
    cwd: NEXT_APP_DIR,
    env: { ...process.env, ...nextEnv(api) },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const close = async () => {
    killGroup(child, 'SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
    killGroup(child, 'SIGKILL');
  };
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`next start printed no URL in ${timeoutMs} ms:\n${out}`)), timeoutMs);
    const onData = (d: Buffer) => {
      out += d;
      const found = /Local:\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (found && /Ready in/.test(out)) {
        clearTimeout(timer);
        resolve(found[1]!);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => reject(new Error(`next start exited (${code}):\n${out}`)));
  }).catch(async (error: unknown) => {
    await close();
    throw error;
  });
  return { url, output: () => out, close };
}
