/**
 * `tessera-server rotate-key`: starts a signing-key rotation in the store. Running instances publish
 * the new key within their `keyReloadMs` and sign with it after the activation delay; the old key
 * verifies until its last token expired. Prints the new kid and the two instants as one JSON line.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Environment } from './config.ts';
import { openStore } from './store/index.ts';
import { rotateSigningKey } from './tokens.ts';

export const ROTATE_HELP = `Usage: tessera-server rotate-key [--activation-delay-ms 60000] [--access-ttl 300] [--database-url <url> | --data-dir <dir>]

  --activation-delay-ms  how long the new key is only published before it signs (above every
                         instance's key reload, 10 s, and your verifiers' JWKS refetch cooldown)
  --access-ttl           the servers' access token lifetime in seconds: the old key verifies that long after the switch
  --database-url         PostgreSQL (env DATABASE_URL)
  --data-dir             the embedded store of a STOPPED server (env TESSERA_DATA_DIR, default ./.tessera-data)`;

/** Runs the command; resolves to the process exit code. */
export async function rotateKey(argv: readonly string[], env: Environment, out = console.log, err = console.error): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        'activation-delay-ms': { type: 'string', default: '60000' },
        'access-ttl': { type: 'string', default: '300' },
        'database-url': { type: 'string' },
        'data-dir': { type: 'string' },
        help: { type: 'boolean' },
      },
    }));
  } catch (error) {
    err(`rotate-key: ${(error as Error).message.split('\n')[0]} (see tessera-server rotate-key --help)`);
    return 2;
  }
  if (values.help) {
    out(ROTATE_HELP);
    return 0;
  }
  const activationDelayMs = Number(values['activation-delay-ms']);
  const accessTokenTtl = Number(values['access-ttl']);
  if (!(activationDelayMs >= 0) || !(accessTokenTtl > 0)) {
    err("rotate-key: --activation-delay-ms must be ≥ 0 and --access-ttl (the servers' access token lifetime, s) > 0");
    return 2;
  }
  const databaseUrl = values['database-url'] ?? (env.DATABASE_URL || undefined);
  const dataDir = databaseUrl ? undefined : resolve(values['data-dir'] ?? (env.TESSERA_DATA_DIR || '.tessera-data'));
  const store = await openStore({ databaseUrl, dataDir });
  try {
    const r = await rotateSigningKey(store, { now: Date.now(), activationDelayMs, accessTokenTtl });
    out(JSON.stringify({ kid: r.kid, signsFrom: new Date(r.activatesAt).toISOString(), previousKeysRetireAt: new Date(r.previousRetiresAt).toISOString() }));
    return 0;
  } finally {
    await store.close();
  }
}
