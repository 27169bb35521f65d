import type { Store } from './store/types.ts';
import type { OutboxMessage } from './store/types.ts';

/** The server's DPoP setting; see {@link ServerOptions.dpop}. */
export type DpopMode = 'off' | 'optional' | 'required';

/** Where the server writes diagnostics. Never receives tokens, passwords or reset tokens. */
export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** A logger that drops everything (tests). */
export const silentLogger: Logger = { info() {}, warn() {}, error() {} };

/** The default logger: console, one line per entry. */
export const consoleLogger: Logger = {
  info: (message, fields) => console.log(`[tessera] ${message}`, fields ?? ''),
  warn: (message, fields) => console.warn(`[tessera] ${message}`, fields ?? ''),
  error: (message, fields) => console.error(`[tessera] ${message}`, fields ?? ''),
};

/** Login throttling limits (failures per sliding window). */
export interface ThrottleOptions {
  /** @default 5 */
  maxFailuresPerAccount?: number;
  /** @default 20 */
  maxFailuresPerAddress?: number;
  /** @default 900_000 (15 min) */
  windowMs?: number;
}

/** Options of {@link createApp} and {@link startServer}. */
export interface ServerOptions {
  /** Port for startServer; 0 picks a free one. @default 0 */
  port?: number;
  /** Interface to listen on; wildcard addresses (0.0.0.0, ::) are refused. @default '127.0.0.1' */
  host?: string;
  /** Folder for PGlite data (`<dataDir>/pglite`) and signing keys (`<dataDir>/keys`). Unset: in-memory PGlite, ephemeral keys. */
  dataDir?: string;
  /** PostgreSQL connection string; when set (or env DATABASE_URL for the CLI) PostgreSQL replaces PGlite. */
  databaseUrl?: string;
  /** An already-open store to use (tests share one per file). It is not closed by the server. */
  store?: Store;
  /** Access token lifetime in seconds. @default 300 */
  accessTokenTtl?: number;
  /** Refresh token idle lifetime in seconds. @default 604_800 (7 days) */
  refreshIdleTtl?: number;
  /** Refresh token absolute (family) lifetime in seconds. @default 2_592_000 (30 days) */
  refreshAbsoluteTtl?: number;
  /** Within this many ms after a rotation, presenting the rotated token returns the same successor pair. 0 = off. @default 0 */
  reuseGraceMs?: number;
  /** Where the refresh token travels. @default 'body' */
  refreshTokenDelivery?: 'body' | 'cookie';
  /** Origins allowed by CORS (with credentials in cookie delivery). No wildcard. @default [] */
  corsOrigins?: string[];
  /** scrypt cost N (power of two). @default 16384 */
  scryptCost?: number;
  /** JWT `iss`. @default 'tessera-reference-server' */
  issuer?: string;
  /** JWT `aud`. @default 'tessera' */
  audience?: string;
  /** Enables POST /__faults, GET /__stats, POST /__stats/reset. Tests and demo only. @default false */
  faults?: boolean;
  /** Login throttling. */
  throttle?: ThrottleOptions;
  /** Maximum request body in bytes. @default 16384 */
  bodyLimit?: number;
  /** Serve this folder at `/` instead of the built-in status page. */
  staticDir?: string;
  /** @default consoleLogger */
  logger?: Logger;
  /** The clock, in ms since the epoch. @default Date.now */
  now?: () => number;
  /** Called after a message is written to the outbox (the dev CLI prints reset links with it). */
  mailer?: (message: OutboxMessage) => void | Promise<void>;
  /**
   * A rotated-in signing key is published at once and signs after this many ms, so every instance and
   * every verifier knows it before a token carries it. Keep it above `keyReloadMs` and above your
   * verifiers' JWKS refetch cooldown (30 s for jose's createRemoteJWKSet). @default 60_000
   */
  keyActivationDelayMs?: number;
  /** How often each instance re-reads the signing keys from the store, in ms. @default 10_000 */
  keyReloadMs?: number;
  /**
   * Base URL the clients call (the origin, as a proxy in front of the server is reached): used in reset
   * links and as the expected `htu` of DPoP proofs. @default the server's own URL (startServer), never the
   * Host header; under `app.request()` without it, proofs are compared with the request's URL
   */
  publicUrl?: string;
  /**
   * DPoP (RFC 9449): `'optional'` binds the tokens of a login or refresh that came with a proof to its
   * key (`cnf.jkt`, `token_type: 'DPoP'`); `'required'` also refuses a login or refresh without a proof
   * (400) and an access token without a binding (401). A bound token is only accepted with the `DPoP`
   * scheme and a proof from its key, whatever this says. @default 'off'
   */
  dpop?: DpopMode;
  /**
   * DPoP server nonces (RFC 9449 §8): every answer carries `DPoP-Nonce`, and a proof without a recent
   * one is answered 400 `use_dpop_nonce` (token endpoints) or 401 with `WWW-Authenticate: DPoP
   * error="use_dpop_nonce"` (resources), which clients answer with one retry. Nonces change every 5
   * minutes (the previous one is still accepted) and are the same on every instance of one database.
   * @default false
   */
  dpopNonces?: boolean;
}

/** Options with every default filled in. */
export interface ResolvedOptions extends Required<Omit<ServerOptions, 'dataDir' | 'databaseUrl' | 'store' | 'staticDir' | 'mailer' | 'publicUrl' | 'throttle'>> {
  dataDir: string | undefined;
  databaseUrl: string | undefined;
  staticDir: string | undefined;
  publicUrl: string | undefined;
  mailer: ServerOptions['mailer'];
  throttle: Required<ThrottleOptions>;
}

function positive(name: string, value: number, allowZero = false): number {
  if (!Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
    throw new TypeError(`${name} must be a ${allowZero ? 'non-negative' : 'positive'} number, got ${value}`);
  }
  return value;
}

/** Fills in defaults and checks option values. @throws TypeError on invalid options. */
export function resolveOptions(options: ServerOptions = {}): ResolvedOptions {
  const scryptCost = options.scryptCost ?? 16384;
  if (!Number.isInteger(scryptCost) || scryptCost < 2 || (scryptCost & (scryptCost - 1)) !== 0) {
    throw new TypeError(`scryptCost must be a power of two, got ${scryptCost}`);
  }
  for (const origin of options.corsOrigins ?? []) {
    if (origin === '*' || !/^https?:\/\/[^/]+$/.test(origin)) {
      throw new TypeError(`corsOrigins entries must be origins like https://app.example, got ${origin}`);
    }
  }
  const host = options.host ?? '127.0.0.1';
  if (['', '0.0.0.0', '::', '[::]'].includes(host)) {
    throw new TypeError(`host must be a specific interface such as 127.0.0.1, not the wildcard ${JSON.stringify(host)}`);
  }
  const delivery = options.refreshTokenDelivery ?? 'body';
  if (delivery !== 'body' && delivery !== 'cookie') throw new TypeError(`refreshTokenDelivery must be 'body' or 'cookie'`);
  const dpop = options.dpop ?? 'off';
  if (!['off', 'optional', 'required'].includes(dpop)) throw new TypeError(`dpop must be 'off', 'optional' or 'required', got ${String(dpop)}`);
  return {
    port: options.port ?? 0,
    host,
    dataDir: options.dataDir,
    databaseUrl: options.databaseUrl,
    accessTokenTtl: positive('accessTokenTtl', options.accessTokenTtl ?? 300),
    refreshIdleTtl: positive('refreshIdleTtl', options.refreshIdleTtl ?? 7 * 24 * 3600),
    refreshAbsoluteTtl: positive('refreshAbsoluteTtl', options.refreshAbsoluteTtl ?? 30 * 24 * 3600),
    reuseGraceMs: positive('reuseGraceMs', options.reuseGraceMs ?? 0, true),
    refreshTokenDelivery: delivery,
    corsOrigins: [...(options.corsOrigins ?? [])],
    scryptCost,
    issuer: options.issuer ?? 'tessera-reference-server',
    audience: options.audience ?? 'tessera',
    faults: options.faults ?? false,
    throttle: {
      maxFailuresPerAccount: positive('throttle.maxFailuresPerAccount', options.throttle?.maxFailuresPerAccount ?? 5),
      maxFailuresPerAddress: positive('throttle.maxFailuresPerAddress', options.throttle?.maxFailuresPerAddress ?? 20),
      windowMs: positive('throttle.windowMs', options.throttle?.windowMs ?? 15 * 60 * 1000),
    },
    bodyLimit: positive('bodyLimit', options.bodyLimit ?? 16 * 1024),
    keyActivationDelayMs: positive('keyActivationDelayMs', options.keyActivationDelayMs ?? 60_000, true),
    keyReloadMs: positive('keyReloadMs', options.keyReloadMs ?? 10_000),
    staticDir: options.staticDir,
    logger: options.logger ?? consoleLogger,
    now: options.now ?? Date.now,
    mailer: options.mailer,
    publicUrl: options.publicUrl,
    dpop,
    dpopNonces: options.dpopNonces ?? false,
  };
}
