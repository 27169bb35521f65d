// `npm start`: install what the demo and the server need on a fresh clone (not the test and
// benchmark tooling), build the demo page (examples/demo, Vite), then run the reference server
// (tsx, no build) serving it, on the embedded database with the demo user.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const demo = join(root, 'examples', 'demo');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

// A full install (`npm ci`) has everything; a start's own install leaves a marker with the
// lockfile it came from, so it is done again only when the lockfile changes.
const lock = join(root, 'package-lock.json');
const marker = join(root, 'node_modules', '.tessera-start');
const lockHash = existsSync(lock) ? createHash('sha256').update(readFileSync(lock)).digest('hex') : 'none';
const vite = () => [join(demo, 'node_modules/vite'), join(root, 'node_modules/vite')].find((p) => existsSync(p));
const needed = ['node_modules/tsx', 'node_modules/react-dom', 'node_modules/hono', 'node_modules/@electric-sql/pglite'];
const present = !!vite() && needed.every((p) => existsSync(join(root, p)));
const stale = existsSync(marker) && readFileSync(marker, 'utf8') !== lockHash;
if (!present || stale) {
  const install = existsSync(lock) ? 'ci' : 'install';
  console.log(`[start] npm ${install} for the demo and the server (first run; \`npm ci\` installs the test tooling too)…`);
  const args = [install, '--workspace', 'examples/demo', '--workspace', 'packages/server', '--include-workspace-root=false', '--no-audit', '--no-fund'];
  const { status } = spawnSync(npm, args, { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' });
  if (status !== 0) process.exit(status ?? 1);
  writeFileSync(marker, lockHash);
}

// The build takes a few seconds; doing it every time keeps the page in step with the library's source.
console.log('[start] building the demo page (examples/demo)…');
const started = Date.now();
const build = spawnSync(process.execPath, [join(vite(), 'bin/vite.js'), 'build', '--logLevel', 'warn'], { cwd: demo, stdio: 'inherit' });
if (build.status !== 0) {
  console.error('[start] the demo page did not build');
  process.exit(build.status ?? 1);
}
console.log(`[start] demo page built in ${((Date.now() - started) / 1000).toFixed(1)} s`);

const server = spawn(process.execPath, ['--import', 'tsx', join(root, 'packages/server/src/demo.ts')], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, TESSERA_STATIC_DIR: process.env.TESSERA_STATIC_DIR || join(demo, 'dist'), TESSERA_DATA_DIR: process.env.TESSERA_DATA_DIR || join(root, '.data') },
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => server.kill(signal));
server.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
