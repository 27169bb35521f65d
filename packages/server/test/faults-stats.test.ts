import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../src/store/types.ts';
import { client, openTestPglite, startTestServer, type RunningServer } from './helpers.ts';

let store: Store;
let server: RunningServer;
let api: ReturnType<typeof client>;

beforeAll(async () => {
  store = await openTestPglite();
  server = await startTestServer({ store, faults: true });
  api = client(server);
});
afterAll(async () => {
  await server?.close();
  await store?.close();
});

const setFaults = (body: unknown) => api.post('/__faults', body);

describe('GET /__stats', () => {
  it('counts logins, refresh outcomes and API calls; POST /__stats/reset zeroes them', async () => {
    await api.post('/__stats/reset');
    const s = await api.session();
    const r1 = await api.refresh(s.refresh_token);
    await api.refresh(s.refresh_token); // reuse
    await api.refresh('unknown-token');
    await api.get('/api/data', api.bearer(r1.body.access_token));
    await api.get('/api/data');
    expect((await api.get('/__stats')).body).toEqual({
      login: 1,
      refresh: { calls: 3, succeeded: 1, invalidGrant: 2, reuseDetected: 1 },
      api: { calls: 2, unauthorized: 1 },
    });
    const reset = await api.post('/__stats/reset');
    expect(reset.body.refresh.calls).toBe(0);
    expect(server.stats.snapshot().login).toBe(0);
  });
});

describe('POST /__faults (refresh only)', () => {
  it('kind "500": refresh answers 500 server_error without consuming the token; other routes unaffected', async () => {
    const s = await api.session();
    expect((await setFaults({ failureRate: 1, kind: '500' })).body).toEqual({ latencyMs: 0, failureRate: 1, kind: '500', when: 'before' });
    const failed = await api.refresh(s.refresh_token);
    expect(failed.status).toBe(500);
    expect(failed.body.error).toBe('server_error');
    expect((await api.get('/api/data', api.bearer(s.access_token))).status).toBe(200);
    await setFaults({});
    expect((await api.refresh(s.refresh_token)).status).toBe(200);
  });

  it('kind "drop" destroys the connection', async () => {
    const s = await api.session();
    await setFaults({ failureRate: 1, kind: 'drop' });
    await expect(api.refresh(s.refresh_token)).rejects.toThrow();
    await setFaults({});
    expect((await api.refresh(s.refresh_token)).status).toBe(200);
  });

  it('when "after": the token rotates but the answer is lost, so presenting it again is reuse', async () => {
    const s = await api.session();
    await setFaults({ failureRate: 1, kind: '500', when: 'after' });
    expect((await api.refresh(s.refresh_token)).status).toBe(500);
    await setFaults({});
    expect((await api.refresh(s.refresh_token)).body.error).toBe('invalid_grant');
  });

  it('latencyMs delays refreshes', async () => {
    const s = await api.session();
    await setFaults({ latencyMs: 150 });
    const t = performance.now();
    expect((await api.refresh(s.refresh_token)).status).toBe(200);
    expect(performance.now() - t).toBeGreaterThanOrEqual(140);
    await setFaults({});
  });

  it('rejects invalid settings with 400 invalid_request naming the field', async () => {
    for (const [body, name] of [[{ failureRate: 2 }, 'failureRate'], [{ kind: 'explode' }, 'kind'], [{ latencyMs: -1 }, 'latencyMs'], [{ when: 'later' }, 'when']] as const) {
      const res = await setFaults(body);
      expect(res.status).toBe(400);
      expect(res.body.error_description).toContain(name);
    }
    expect((await api.get('/__faults')).body.failureRate).toBe(0);
  });

  it('kind "timeout" never answers; closing the server ends the held request promptly', async () => {
    const own = await startTestServer({ store, faults: true });
    const c = client(own);
    const s = await c.session();
    await c.post('/__faults', { failureRate: 1, kind: 'timeout' });
    let settled = false;
    const pending = c.refresh(s.refresh_token).then(
      () => 'answered',
      () => 'failed',
    ).finally(() => {
      settled = true;
    });
    await new Promise((r) => setTimeout(r, 300));
    expect(settled).toBe(false);
    const t = performance.now();
    await own.close();
    expect(await pending).toBe('failed');
    expect(performance.now() - t).toBeLessThan(2000);
  });
});

describe('faults disabled', () => {
  it('/__faults and /__stats do not exist (404)', async () => {
    const plain = await startTestServer({ store });
    try {
      const c = client(plain);
      expect((await c.post('/__faults', { failureRate: 1 })).status).toBe(404);
      expect((await c.get('/__stats')).status).toBe(404);
      expect((await c.post('/__stats/reset')).status).toBe(404);
    } finally {
      await plain.close();
    }
  });
});
