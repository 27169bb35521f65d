import { accessSync, constants, mkdirSync } from 'node:fs';
import { ConfigError, helpText, parseConfig, type Environment } from './config.ts';
import type { ServerOptions } from './options.ts';
import { startServer, type RunningServer } from './server.ts';

/** What {@link launch} needs besides the command line: where to write, and the caller's extras. */
export interface LaunchOptions {
  /** The command's name in messages and the help. @default 'tessera-server' */
  command?: string;
  /** Options that win over the command line's (the demo turns faults on). */
  overrides?: Partial<ServerOptions>;
  /** Runs once the server listens (the demo seeds its user and prints its lines). */
  started?: (server: RunningServer) => Promise<void> | void;
  /** @default console.log */
  out?: (line: string) => void;
  /** @default console.error */
  err?: (line: string) => void;
}

const code = (error: unknown) => (error as { code?: unknown })?.code;

/** The database URL without its password, for messages. */
function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    u.password = '';
    return u.toString();
  } catch {
    return '(DATABASE_URL is not a URL)';
  }
}

/** One line that says what went wrong at start and what to change. Never a stack, never a secret. */
export function startFailure(error: unknown, options: ServerOptions & { port: number; host: string }): string {
  if (error instanceof ConfigError) return error.message;
  const message = error instanceof Error ? error.message.split('\n')[0]! : String(error);
  switch (code(error)) {
    case 'EADDRINUSE':
      return `port ${options.port} on ${options.host} is already in use: stop what runs there, or choose another port with --port (env PORT); --port 0 picks a free one`;
    case 'EACCES':
      if ((error as { syscall?: string }).syscall === 'listen') return `port ${options.port} needs privileges this process lacks: choose a port above 1023 with --port (env PORT)`;
      break;
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
      return `cannot listen on host ${options.host}: it is not an address of this machine; set --host (env TESSERA_HOST) to 127.0.0.1 or one of its addresses`;
  }
  if (options.databaseUrl) {
    return `cannot use the PostgreSQL database ${safeUrl(options.databaseUrl)} (--database-url / env DATABASE_URL): ${message}`;
  }
  return `could not start: ${message}`;
}

/** Checks that the data folder can be created and written before the database opens it. */
function checkDataDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    accessSync(dir, constants.W_OK);
  } catch (error) {
    throw new ConfigError(`--data-dir (env TESSERA_DATA_DIR): cannot write ${dir} (${String(code(error) ?? error)}); choose a folder this user may write`);
  }
}

/**
 * The `tessera-server` command: reads flags and environment, starts the server, prints its URL,
 * stops on SIGINT/SIGTERM. Resolves the running server, or `undefined` after `--help` or a failure
 * (then one line went to `err` and `process.exitCode` is 2 for a setting, 1 otherwise).
 */
export async function launch(argv: readonly string[], env: Environment, launchOptions: LaunchOptions = {}): Promise<RunningServer | undefined> {
  const { command = 'tessera-server', out = console.log, err = console.error } = launchOptions;
  let config;
  try {
    config = parseConfig(argv, env);
  } catch (error) {
    err(`${command}: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 2;
    return undefined;
  }
  if (config.help) {
    out(helpText(command));
    return undefined;
  }
  const options = { ...config.options, ...launchOptions.overrides };
  let server: RunningServer;
  try {
    if (options.dataDir) checkDataDir(options.dataDir);
    server = await startServer(options);
    await Promise.resolve(launchOptions.started?.(server)).catch(async (error: unknown) => {
      await server.close().catch(() => {});
      throw error;
    });
  } catch (error) {
    err(`${command}: ${startFailure(error, options)}`);
    process.exitCode = error instanceof ConfigError ? 2 : 1;
    return undefined;
  }
  const o = server.options;
  const store = server.store.kind === 'postgres' ? `PostgreSQL ${safeUrl(o.databaseUrl ?? '')}` : `PGlite in ${o.dataDir}`;
  out(`${command} listening on ${server.url} (${store})`);
  out(`CORS origins: ${o.corsOrigins.length ? o.corsOrigins.join(', ') : 'none (same-origin pages only; add --cors-origin)'}; refresh token in the ${o.refreshTokenDelivery}; access tokens live ${o.accessTokenTtl} s`);

  let stopping = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (stopping) process.exit(1);
      stopping = true;
      server.close().then(
        () => process.exit(0),
        (error: unknown) => {
          err(`${command}: could not close cleanly: ${error instanceof Error ? error.message : String(error)}`);
          process.exit(1);
        },
      );
    });
  }
  return server;
}
