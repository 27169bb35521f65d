/**
 * How long the demo server (`npm start`'s server: src/cli.ts, embedded PGlite) takes from process start
 * to its first answered request, on an empty data folder and again on the folder the first run left.
 * `npx tsx tools/startup-time.ts` (prints one line per run).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './pg-cluster.ts';

const CLI = fileURLToPath(new URL('../src/cli.ts', import.meta.url));

async function firstAnswer(dataDir: string): Promise<number> {
  const port = await freePort();
  const started = performance.now();
  const child = spawn(process.execPath, ['--import', 'tsx', CLI], {
    env: { ...process.env, PORT: String(port), TESSERA_DATA_DIR: dataDir },
    stdio: 'ignore',
  });
  try {
    const deadline = started + 180_000;
    while (performance.now() < deadline) {
      const ok = await fetch(`http://127.0.0.1:${port}/.well-known/jwks.json`).then((r) => r.ok, () => false);
      if (ok) return performance.now() - started;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error('no answer within 180 s');
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
}

const dataDir = mkdtempSync(join(tmpdir(), 'tessera-startup-'));
try {
  const cold = await firstAnswer(dataDir);
  const warm = await firstAnswer(dataDir);
  const warm2 = await firstAnswer(dataDir);
  const load = loadavg().map((l) => l.toFixed(2)).join(' ');
  console.log(`demo server, process start → first answered request: empty data folder ${(cold / 1000).toFixed(2)} s; existing folder ${(warm / 1000).toFixed(2)} s, ${(warm2 / 1000).toFixed(2)} s (load average ${load})`);
} finally {
  rmSync(dataDir, { recursive: true, force: true });
}
