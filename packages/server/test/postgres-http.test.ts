import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, freshPostgresDatabase, startTestServer, type RunningServer } from './helpers.ts';

describe('over HTTP on a real PostgreSQL', () => {
  let db: Awaited<ReturnType<typeof freshPostgresDatabase>>;
  let dataDir: string;
  let a: RunningServer;
  let b: RunningServer;

  beforeAll(async () => {
    db = await freshPostgresDatabase();
    dataDir = mkdtempSync(join(tmpdir(), 'tessera-keys-'));
    // Two instances sharing one database and one key folder, started together.
    [a, b] = await Promise.all([
      startTestServer({ databaseUrl: db.url, dataDir }),
      startTestServer({ databaseUrl: db.url, dataDir }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await db?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('uses PostgreSQL, and two instances started together publish the same one signing key from the store', async () => {
    expect(a.store.kind).toBe('postgres');
    const [ka, kb] = await Promise.all([a, b].map(async (s) => (await client(s).get('/.well-known/jwks.json')).body.keys));
    expect(ka).toHaveLength(1);
    expect(kb).toEqual(ka);
  });

  it('100 parallel refreshes with one token give exactly one 200', async () => {
    const s = await client(a).session();
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => client(i % 2 ? a : b).refresh(s.refresh_token)));
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    expect(results.filter((r) => r.status === 400 && r.body.error === 'invalid_grant')).toHaveLength(99);
  });

  it('a session started on one instance refreshes on the other, and reuse there revokes the family', async () => {
    const s = await client(a).session();
    const r1 = await client(b).refresh(s.refresh_token);
    expect(r1.status).toBe(200);
    expect((await client(a).get('/auth/me', { authorization: `Bearer ${r1.body.access_token}` })).status).toBe(200);
    expect((await client(a).refresh(s.refresh_token)).body.error).toBe('invalid_grant');
    expect((await client(b).refresh(r1.body.refresh_token)).body.error).toBe('invalid_grant');
    const events = await a.store.listSecurityEvents({ userId: s.user.id });
    expect(events.map((e) => e.kind)).toEqual(['refresh_token_reuse']);
  });
});
