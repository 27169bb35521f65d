import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { resolveOptions, type ServerOptions } from './options.ts';

/**
 * A setting of the `tessera-server` command that cannot be used as given. Its message is one line
 * that names the flag and the environment variable, says what was wrong and what is accepted.
 */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Environment variables as `process.env` holds them. */
export type Environment = Readonly<Record<string, string | undefined>>;

/** What the command line asks for: run with these options, or print the help. */
export type CliConfig = { help: true } | { help: false; options: ServerOptions & { port: number; host: string } };

type Parse = (text: string) => unknown;
interface Setting {
  flag: string;
  env: string;
  option: keyof ServerOptions;
  /** For the help: the value's shape, the default and what it does. */
  value: string;
  default: string;
  about: string;
  parse: Parse;
  /** Repeatable flag; the environment variable is a comma-separated list. */
  list?: true;
}

const UNITS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86_400 };

/** `300`, `90s`, `15m`, `12h`, `7d` → seconds (a bare number is in `unit`). */
function duration(unit: 's' | 'ms'): Parse {
  return (text) => {
    const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
    if (!match) throw new Error(`expected a duration such as 300, 90s, 15m, 12h or 7d${unit === 'ms' ? ' (a bare number is milliseconds)' : ''}`);
    const seconds = Number(match[1]) * UNITS[match[2] ?? unit]!;
    const value = unit === 's' ? seconds : Math.round(seconds * 1000);
    if (unit === 's' && !Number.isInteger(value)) throw new Error('expected whole seconds');
    return value;
  };
}

function port(text: string): number {
  const value = Number(text);
  if (!/^\d+$/.test(text.trim()) || value > 65_535) throw new Error('expected a port number from 0 to 65535 (0 picks a free port)');
  return value;
}

function origin(text: string): string {
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    // reported below
  }
  if (!url || !/^https?:$/.test(url.protocol) || url.origin !== text.replace(/\/$/, '')) {
    throw new Error(`expected an origin such as https://app.example or http://127.0.0.1:5173 (scheme, host and port only; no wildcard)`);
  }
  return url.origin;
}

const text: Parse = (value) => {
  if (value.trim() === '') throw new Error('expected a value');
  return value;
};
const path: Parse = (value) => resolve(text(value) as string);

const SETTINGS: readonly Setting[] = [
  { flag: 'host', env: 'TESSERA_HOST', option: 'host', value: '<address>', default: '127.0.0.1', about: 'interface to listen on (no wildcard: name the interface)', parse: text },
  { flag: 'port', env: 'PORT', option: 'port', value: '<number>', default: '8787', about: 'port to listen on; 0 picks a free one', parse: port },
  { flag: 'database-url', env: 'DATABASE_URL', option: 'databaseUrl', value: '<url>', default: 'unset', about: 'PostgreSQL, e.g. postgres://user:pass@db:5432/tessera; unset = embedded PGlite in --data-dir', parse: text },
  { flag: 'data-dir', env: 'TESSERA_DATA_DIR', option: 'dataDir', value: '<dir>', default: './.tessera-data', about: 'PGlite database (pglite/) and signing key (keys/), relative to the working directory', parse: path },
  { flag: 'cors-origin', env: 'TESSERA_CORS_ORIGINS', option: 'corsOrigins', value: '<origin>', default: 'none', about: 'a page origin allowed to call the server from the browser; repeat the flag, or commas in the variable', parse: origin, list: true },
  { flag: 'access-ttl', env: 'TESSERA_ACCESS_TTL', option: 'accessTokenTtl', value: '<duration>', default: '5m', about: 'access token lifetime (bare number = seconds)', parse: duration('s') },
  { flag: 'refresh-idle-ttl', env: 'TESSERA_REFRESH_IDLE_TTL', option: 'refreshIdleTtl', value: '<duration>', default: '7d', about: 'a session unused this long ends (each refresh restarts it)', parse: duration('s') },
  { flag: 'refresh-absolute-ttl', env: 'TESSERA_REFRESH_ABSOLUTE_TTL', option: 'refreshAbsoluteTtl', value: '<duration>', default: '30d', about: 'a session ends this long after its login, refreshed or not', parse: duration('s') },
  { flag: 'refresh-token', env: 'TESSERA_REFRESH_TOKEN', option: 'refreshTokenDelivery', value: 'body|cookie', default: 'body', about: "the refresh token travels in the JSON body, or in an httpOnly cookie (then CORS allows credentials)", parse: (v) => {
      if (v !== 'body' && v !== 'cookie') throw new Error("expected 'body' or 'cookie'");
      return v;
    } },
  { flag: 'reuse-grace', env: 'TESSERA_REUSE_GRACE_MS', option: 'reuseGraceMs', value: '<duration>', default: '0', about: 'a rotated refresh token presented again this soon gets the same new pair instead of revoking (bare number = ms)', parse: duration('ms') },
  { flag: 'issuer', env: 'TESSERA_ISSUER', option: 'issuer', value: '<text>', default: 'tessera-reference-server', about: 'the `iss` claim of access tokens', parse: text },
  { flag: 'audience', env: 'TESSERA_AUDIENCE', option: 'audience', value: '<text>', default: 'tessera', about: 'the `aud` claim of access tokens', parse: text },
  { flag: 'public-url', env: 'TESSERA_PUBLIC_URL', option: 'publicUrl', value: '<url>', default: 'the listening URL', about: 'the address users reach (behind a proxy): base of password-reset links, and the URL DPoP proofs name', parse: text },
  { flag: 'dpop', env: 'TESSERA_DPOP', option: 'dpop', value: 'off|optional|required', default: 'off', about: 'DPoP (RFC 9449): tokens bound to the key that proved the login; required refuses Bearer', parse: (v) => {
      if (v !== 'off' && v !== 'optional' && v !== 'required') throw new Error("expected 'off', 'optional' or 'required'");
      return v;
    } },
  { flag: 'static-dir', env: 'TESSERA_STATIC_DIR', option: 'staticDir', value: '<dir>', default: 'none', about: 'a built web page to serve at /', parse: path },
];

/** Where a setting comes from, as the error message names it. */
const names = (s: Setting) => `--${s.flag} (env ${s.env})`;

/** The text `tessera-server --help` prints. */
export function helpText(command = 'tessera-server'): string {
  const rows = SETTINGS.map((s) => `${`  --${s.flag} ${s.value}`.padEnd(36)}env ${s.env}, default ${s.default}\n      ${s.about}`);
  return [
    `Usage: ${command} [options]`,
    `       ${command} rotate-key --help   (a new signing key, nobody logged out)`,
    '',
    'The Tessera token server: register, login, rotating refresh tokens with reuse detection,',
    'logout, ES256 access tokens and their JWKS. Flags win over environment variables.',
    'Durations: 300 (seconds), 90s, 15m, 12h, 7d.',
    '',
    'Options:',
    ...rows,
    '  -h, --help',
    '      print this help',
    '',
  ].join('\n');
}

/**
 * Reads the command line and the environment (flags win) into server options.
 * @throws ConfigError naming the flag and variable of a value that cannot be used, or an unknown flag.
 * @example parseConfig(['--port', '0', '--cors-origin', 'http://127.0.0.1:5173'], process.env)
 */
export function parseConfig(argv: readonly string[], env: Environment): CliConfig {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        help: { type: 'boolean', short: 'h' },
        ...Object.fromEntries(SETTINGS.map((s) => [s.flag, { type: 'string' as const, multiple: s.list ?? false }])),
      },
    });
  } catch (error) {
    throw new ConfigError(`${(error as Error).message.split('\n')[0]!.replace(/\. To specify.*$/, '')}; see --help for the settings`);
  }
  if (parsed.values.help) return { help: true };

  const options: Record<string, unknown> = { host: '127.0.0.1', port: 8787, dataDir: resolve('.tessera-data') };
  for (const s of SETTINGS) {
    const flag = parsed.values[s.flag] as string | string[] | undefined;
    const raw = flag ?? env[s.env];
    if (raw === undefined || (flag === undefined && raw === '')) continue;
    const items = s.list ? (Array.isArray(raw) ? raw : [raw]).flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v !== '') : [raw as string];
    const values = items.map((item) => {
      try {
        return s.parse(item);
      } catch (error) {
        throw new ConfigError(`${names(s)}: ${(error as Error).message}, got ${JSON.stringify(item)}`);
      }
    });
    options[s.option] = s.list ? values : values[0];
  }
  const result = options as unknown as ServerOptions & { port: number; host: string };
  try {
    resolveOptions(result);
  } catch (error) {
    const message = (error as Error).message;
    const setting = SETTINGS.find((s) => message.startsWith(s.option));
    throw new ConfigError(setting ? `${names(setting)}: ${message.slice(setting.option.length).replace(/^ entries/, '').trim()}` : message);
  }
  return { help: false, options: result };
}
