// `npm start`: install dependencies on a fresh clone, build the demo page (examples/demo, Vite),
// then run the reference server (tsx, no build) serving it, on the embedded database with the demo user.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const demo = join(root, 'examples', 'demo');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

const installed = ['node_modules/tsx', 'examples/demo/node_modules/vite', 'node_modules/react-dom'].every((p) => existsSync(join(root, p)));
if (!installed) {
  const install = existsSync(join(root, 'package-lock.json')) ? 'ci' : 'install';
  console.log(`[start] npm ${install} (first run)…`);
  const { status } = spawnSync(npm, [install], { cwd: root, stdio: 'inherit' });
  if (status !== 0) process.exit(status ?? 1);
}

// The build takes a few seconds; doing it every time keeps the page in step with the library's source.
console.log('[start] building the demo page (examples/demo)…');
const started = Date.now();
const build = spawnSync(process.execPath, [join(demo, 'node_modules/vite/bin/vite.js'), 'build', '--logLevel', 'warn'], { cwd: demo, stdio: 'inherit' });
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
