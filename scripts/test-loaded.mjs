// `npm run test:loaded`: the whole suite (`npm test`) with the CPUs saturated by other work, as on
// a busy CI machine. Starts one busy-loop process per core (at least two), runs the suite, stops them.
// Each busy loop also ends on its own after `TESSERA_LOAD_MAX_S` seconds (default 3 600), so none
// outlives a suite that was killed.
import { spawn } from 'node:child_process';
import { availableParallelism, loadavg } from 'node:os';

const maxSeconds = Number(process.env.TESSERA_LOAD_MAX_S) || 3_600;
const count = Math.max(2, availableParallelism());
const spin = `const end = Date.now() + ${maxSeconds * 1000}; while (Date.now() < end) {}`;
const hogs = Array.from({ length: count }, () => spawn(process.execPath, ['-e', spin], { stdio: 'ignore' }));
const stop = () => hogs.forEach((h) => h.kill('SIGKILL'));
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => (stop(), process.exit(130)));

console.log(`[test:loaded] ${count} busy-loop processes running beside the suite (load average ${loadavg()[0].toFixed(1)})`);
const started = Date.now();
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const suite = spawn(npm, ['test'], { stdio: 'inherit' });
const timer = setInterval(() => console.log(`[test:loaded] load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}`), 60_000);
suite.on('exit', (code, signal) => {
  clearInterval(timer);
  stop();
  console.log(`[test:loaded] npm test ${code === 0 ? 'passed' : `failed (${signal ?? code})`} in ${((Date.now() - started) / 1000).toFixed(0)} s under load`);
  process.exit(code ?? 1);
});
