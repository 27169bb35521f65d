/**
 * Starts a signing-key rotation in the shared store:
 * `DATABASE_URL=postgres://… npx tsx tools/rotate-key.ts [--activation-delay-ms 60000] [--access-ttl 300]`
 * (or TESSERA_DATA_DIR=<folder> for an embedded store whose server is stopped: PGlite allows one process).
 * Running instances publish the new key within their `keyReloadMs` and sign with it after the delay;
 * the old key verifies until its last token expired. Prints the new kid and the two instants.
 */
import { parseArgs } from 'node:util';
import { openStore } from '../src/store/index.ts';
import { rotateSigningKey } from '../src/tokens.ts';

const { values } = parseArgs({
  options: { 'activation-delay-ms': { type: 'string', default: '60000' }, 'access-ttl': { type: 'string', default: '300' } },
});
const activationDelayMs = Number(values['activation-delay-ms']);
const accessTokenTtl = Number(values['access-ttl']);
if (!(activationDelayMs >= 0) || !(accessTokenTtl > 0)) {
  console.error('--activation-delay-ms must be ≥ 0 and --access-ttl (the servers\' access token lifetime, s) > 0');
  process.exit(2);
}
const databaseUrl = process.env.DATABASE_URL || undefined;
const dataDir = process.env.TESSERA_DATA_DIR || undefined;
if (!databaseUrl && !dataDir) {
  console.error('Set DATABASE_URL (PostgreSQL) or TESSERA_DATA_DIR (the embedded store of a stopped server).');
  process.exit(2);
}
const store = await openStore({ databaseUrl, dataDir: databaseUrl ? undefined : dataDir });
try {
  const r = await rotateSigningKey(store, { now: Date.now(), activationDelayMs, accessTokenTtl });
  console.log(
    JSON.stringify({ kid: r.kid, signsFrom: new Date(r.activatesAt).toISOString(), previousKeysRetireAt: new Date(r.previousRetiresAt).toISOString() }),
  );
} finally {
  await store.close();
}
