import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, helpText, parseConfig } from '../src/config.ts';
import { startServer } from '../src/server.ts';

const packageDir = fileURLToPath(new URL('..', import.meta.url));
const dataDir = mkdtempSync(join(tmpdir(), 'tessera-cli-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

/** Runs `tessera-server` from source with `args`; resolves its exit code and output (bounded). */
function runCli(args: string[], timeoutMs = 120_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { cwd: packageDir, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`tessera-server ${args.join(' ')} still running after ${timeoutMs} ms:\n${stdout}${stderr}`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
  });
}

const configError = (argv: string[], env: Record<string, string> = {}) => {
  try {
    parseConfig(argv, env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('no ConfigError');
};

describe('parseConfig: flags and environment', () => {
  it('defaults: 127.0.0.1:8787, data in ./.tessera-data of the working directory, no CORS origin', () => {
    expect(parseConfig([], {})).toEqual({ help: false, options: { host: '127.0.0.1', port: 8787, dataDir: resolve('.tessera-data') } });
  });

  it('reads every setting from the environment; a flag wins over its variable', () => {
    const env = {
      TESSERA_HOST: '127.0.0.2',
      PORT: '9000',
      DATABASE_URL: 'postgres://u:p@db/tessera',
      TESSERA_DATA_DIR: '/var/lib/tessera',
      TESSERA_CORS_ORIGINS: 'https://app.example, http://127.0.0.1:5173',
      TESSERA_ACCESS_TTL: '15m',
      TESSERA_REFRESH_IDLE_TTL: '1d',
      TESSERA_REFRESH_ABSOLUTE_TTL: '90d',
      TESSERA_REFRESH_TOKEN: 'cookie',
      TESSERA_REUSE_GRACE_MS: '2s',
      TESSERA_ISSUER: 'https://auth.example',
      TESSERA_AUDIENCE: 'my-api',
      TESSERA_PUBLIC_URL: 'https://auth.example',
    };
    expect(parseConfig([], env)).toEqual({
      help: false,
      options: {
        host: '127.0.0.2',
        port: 9000,
        databaseUrl: 'postgres://u:p@db/tessera',
        dataDir: '/var/lib/tessera',
        corsOrigins: ['https://app.example', 'http://127.0.0.1:5173'],
        accessTokenTtl: 900,
        refreshIdleTtl: 86_400,
        refreshAbsoluteTtl: 90 * 86_400,
        refreshTokenDelivery: 'cookie',
        reuseGraceMs: 2000,
        issuer: 'https://auth.example',
        audience: 'my-api',
        publicUrl: 'https://auth.example',
      },
    });
    const flags = parseConfig(['--port', '0', '--cors-origin', 'https://a.example', '--cors-origin', 'https://b.example/', '--access-ttl', '60', '--reuse-grace', '1500'], env);
    expect(flags.help === false && flags.options).toMatchObject({ port: 0, corsOrigins: ['https://a.example', 'https://b.example'], accessTokenTtl: 60, reuseGraceMs: 1500 });
  });

  it('--help and -h ask for the help, which names every flag and variable', () => {
    expect(parseConfig(['--help'], {})).toEqual({ help: true });
    expect(parseConfig(['-h'], { PORT: 'nonsense' })).toEqual({ help: true });
    const help = helpText();
    for (const name of ['--host', '--port', '--database-url', 'DATABASE_URL', '--data-dir', '--cors-origin', 'TESSERA_CORS_ORIGINS', '--access-ttl', '--refresh-idle-ttl', '--refresh-absolute-ttl', '--refresh-token', '--reuse-grace', '--issuer', '--audience']) {
      expect(help).toContain(name);
    }
  });

  it.each([
    [['--port', '70000'], {}, '--port (env PORT): expected a port number'],
    [[], { PORT: 'http' }, '--port (env PORT): expected a port number'],
    [['--cors-origin', '*'], {}, '--cors-origin (env TESSERA_CORS_ORIGINS): expected an origin'],
    [[], { TESSERA_CORS_ORIGINS: 'https://app.example/login' }, '--cors-origin (env TESSERA_CORS_ORIGINS): expected an origin'],
    [['--access-ttl', 'soon'], {}, '--access-ttl (env TESSERA_ACCESS_TTL): expected a duration'],
    [['--access-ttl', '0'], {}, '--access-ttl (env TESSERA_ACCESS_TTL): must be a positive number'],
    [['--access-ttl', '1500ms'], {}, '--access-ttl (env TESSERA_ACCESS_TTL): expected whole seconds'],
    [['--refresh-token', 'header'], {}, "--refresh-token (env TESSERA_REFRESH_TOKEN): expected 'body' or 'cookie'"],
    [['--host', '0.0.0.0'], {}, '--host (env TESSERA_HOST): must be a specific interface'],
    [['--verbose'], {}, "Unknown option '--verbose'; see --help"],
    [['--port'], {}, "Option '--port <value>' argument missing; see --help"],
  ] as const)('%j %j → one line naming the setting', (argv, env, start) => {
    const message = configError([...argv], env);
    expect(message.startsWith(start)).toBe(true);
    expect(message).not.toContain('\n');
  });
});

describe('tessera-server, the command', () => {
  it('--help prints the settings and exits 0', async () => {
    const { code, stdout, stderr } = await runCli(['--help']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^Usage: tessera-server \[options\]/);
    expect(stdout).toContain('--cors-origin <origin>');
    expect(stderr).toBe('');
  });

  it('a bad setting is one line on stderr that says what to change, exit code 2, no stack', async () => {
    const { code, stdout, stderr } = await runCli(['--port', '0', '--refresh-token', 'header']);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toBe(`tessera-server: --refresh-token (env TESSERA_REFRESH_TOKEN): expected 'body' or 'cookie', got "header"\n`);
  });

  it('rotate-key on a stopped embedded store: prints the new kid, which the server then publishes beside the old one; a bad flag is one line, exit 2', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-rotate-'));
    try {
      const kids = async () => {
        const server = await startServer({ dataDir: dir, scryptCost: 1024 });
        try {
          const jwks = (await (await fetch(`${server.url}/.well-known/jwks.json`)).json()) as { keys: { kid: string }[] };
          return jwks.keys.map((k) => k.kid);
        } finally {
          await server.close();
        }
      };
      const before = await kids();
      expect(before).toHaveLength(1);
      const { code, stdout, stderr } = await runCli(['rotate-key', '--data-dir', dir, '--activation-delay-ms', '0']);
      expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
      const { kid } = JSON.parse(stdout) as { kid: string };
      expect(new Set(await kids())).toEqual(new Set([...before, kid]));
      const bad = await runCli(['rotate-key', '--activation-delay-ms', '-1', '--data-dir', dir]);
      expect(bad.code).toBe(2);
      expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a busy port is one line that names --port, exit code 1, no stack', async () => {
    const busy: Server = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    const port = (busy.address() as { port: number }).port;
    try {
      const { code, stdout, stderr } = await runCli(['--port', String(port), '--data-dir', dataDir]);
      expect(code).toBe(1);
      expect(stdout).toBe('');
      expect(stderr).toBe(`tessera-server: port ${port} on 127.0.0.1 is already in use: stop what runs there, or choose another port with --port (env PORT); --port 0 picks a free one\n`);
    } finally {
      await new Promise((r) => busy.close(r));
    }
  }, 150_000);
});
