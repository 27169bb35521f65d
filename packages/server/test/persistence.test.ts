import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { client, startTestServer, uniqueEmail } from './helpers.ts';

describe('PGlite data folder and signing key persist across restarts', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tessera-data-'));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('users, refresh tokens and the signing key (kept in the store, no key file) survive a restart', async () => {
    const email = uniqueEmail();
    const first = await startTestServer({ dataDir });
    let session: Awaited<ReturnType<ReturnType<typeof client>['session']>>;
    let kid: string;
    try {
      session = await client(first).session();
      kid = (await client(first).get('/.well-known/jwks.json')).body.keys[0].kid;
      await client(first).register(email);
    } finally {
      await first.close();
    }
    expect(existsSync(join(dataDir, 'keys'))).toBe(false);

    const second = await startTestServer({ dataDir });
    try {
      const c = client(second);
      expect((await c.get('/.well-known/jwks.json')).body.keys[0].kid).toBe(kid);
      expect((await c.get('/api/data', c.bearer(session.access_token))).status).toBe(200);
      expect((await c.refresh(session.refresh_token)).status).toBe(200);
      expect((await c.login(email)).status).toBe(200);
    } finally {
      await second.close();
    }
  });
});
