/**
 * One server instance as its own process, for the multi-instance test and benchmark:
 * `node --import tsx tools/instance.ts '<ServerOptions as JSON>'`. Prints one JSON line
 * `{"url": …, "pid": …}` once it listens; SIGTERM closes it. Errors are logged, never secrets.
 */
import { consoleLogger, silentLogger, type ServerOptions } from '../src/options.ts';
import { startServer } from '../src/server.ts';

const options = JSON.parse(process.argv[2] ?? '{}') as ServerOptions & { quiet?: boolean };
const { quiet = true, ...serverOptions } = options;
const server = await startServer({ ...serverOptions, logger: quiet ? { ...silentLogger, error: consoleLogger.error } : consoleLogger });
process.stdout.write(`${JSON.stringify({ url: server.url, pid: process.pid })}\n`);
process.once('SIGTERM', () => {
  server.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
});
