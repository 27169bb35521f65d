/**
 * Starts server instances as separate processes (tools/instance.ts) and stops them: the
 * multi-instance test and the benchmark share it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ServerOptions } from '../src/options.ts';

/** A server process. */
export interface Instance {
  url: string;
  pid: number;
  /** Sends SIGTERM and waits for the exit (SIGKILL after 10 s). */
  stop(): Promise<void>;
}

const ENTRY = fileURLToPath(new URL('./instance.ts', import.meta.url));
const PACKAGE_DIR = fileURLToPath(new URL('..', import.meta.url));

function stopper(child: ChildProcess): () => Promise<void> {
  return () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
      child.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      child.kill('SIGTERM');
    });
}

/**
 * Starts one instance with JSON-serialisable options; resolves once it listens.
 * @param extraNodeArgs e.g. `['--cpu-prof', '--cpu-prof-dir=/tmp/p']`
 * @throws when the process exits or prints nothing within `timeoutMs`.
 */
export function startInstance(options: ServerOptions, extraNodeArgs: string[] = [], timeoutMs = 120_000): Promise<Instance> {
  const child = spawn(process.execPath, [...extraNodeArgs, '--import', 'tsx', ENTRY, JSON.stringify(options)], {
    cwd: PACKAGE_DIR,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const stop = stopper(child);
  return new Promise<Instance>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      void stop();
      reject(new Error(`instance did not start within ${timeoutMs} ms`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`instance exited with ${code} before listening`));
    });
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
      const line = out.split('\n')[0];
      if (out.includes('\n') && line) {
        clearTimeout(timer);
        child.removeAllListeners('exit');
        child.stdout!.removeAllListeners('data');
        child.stdout!.resume();
        const { url, pid } = JSON.parse(line) as { url: string; pid: number };
        resolve({ url, pid, stop });
      }
    });
  });
}

/** Starts `n` instances together; if one fails, the others are stopped. */
export async function startInstances(n: number, options: ServerOptions, extraNodeArgs: string[] = []): Promise<Instance[]> {
  const settled = await Promise.allSettled(Array.from({ length: n }, () => startInstance(options, extraNodeArgs)));
  const started = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await Promise.all(started.map((i) => i.stop()));
    throw failed.reason;
  }
  return started;
}
