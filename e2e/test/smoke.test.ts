import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { useStack } from '../harness/pages.ts';

const artifacts = join(dirname(fileURLToPath(import.meta.url)), '../artifacts');

describe('smoke: the page, the library and the server in a real Chromium', () => {
  const stack = useStack({}, { resetProfile: false });
  let page: Page;

  beforeAll(async () => {
    page = await stack.newPage();
  });

  it('loads from the server on 127.0.0.1 as a secure context with the library, BroadcastChannel and Web Locks', async () => {
    expect(stack.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(await page.title()).toBe('Tessera e2e');
    const facts = await page.evaluate(() => ({
      createAuth: typeof window.tessera?.createAuth,
      httpAuthority: typeof window.tessera?.httpAuthority,
      harness: typeof window.harness?.start,
      secure: window.isSecureContext,
      broadcastChannel: typeof BroadcastChannel,
      locks: typeof navigator.locks?.request,
      status: document.getElementById('status')?.textContent,
    }));
    expect(facts).toEqual({
      createAuth: 'function',
      httpAuthority: 'function',
      harness: 'function',
      secure: true,
      broadcastChannel: 'function',
      locks: 'function',
      status: 'ready',
    });
  });

  it('registers, logs in through httpAuthority({ baseUrl: "/auth" }) and makes authed requests the server counts', async () => {
    await stack.resetStats();
    const email = `smoke-${Date.now()}@example.test`;
    await page.evaluate(async (email) => {
      window.harness.start();
      await window.harness.signIn(email, 'correct horse battery');
    }, email);
    const snapshot = await page.evaluate(() => window.harness.snapshot());
    expect(snapshot.status).toBe('authenticated');
    expect(snapshot.user).toMatchObject({ email });

    const counts = await page.evaluate(() => window.harness.fetchMany(5));
    expect(counts).toEqual({ ok: 5, failed: 0, statuses: { 200: 5 }, errors: [] });

    // Faults slow the refresh down; the engine still gets its new token.
    expect(await stack.faults({ latencyMs: 300 })).toMatchObject({ latencyMs: 300, failureRate: 0 });
    const took = await page.evaluate(async () => {
      const started = performance.now();
      await window.harness.engine().refresh();
      return performance.now() - started;
    });
    await stack.faults({});
    expect(took).toBeGreaterThanOrEqual(290);
    expect(await page.evaluate(() => window.harness.snapshot().generation)).toBe(snapshot.generation + 1);

    const stats = await stack.stats();
    expect(stats.login).toBe(1);
    expect(stats.api).toEqual({ calls: 5, unauthorized: 0 });
    expect(stats.refresh).toMatchObject({ calls: 1, succeeded: 1, invalidGrant: 0 });
    const types = await page.evaluate(() => window.harness.events.map((e) => e.type));
    expect(types).toEqual(expect.arrayContaining(['login', 'refresh']));
    expect(await page.locator('#status').textContent()).toMatch(/^authenticated/);
  });

  it('renders: a screenshot of the page is a real PNG', async () => {
    mkdirSync(artifacts, { recursive: true });
    const path = join(artifacts, 'smoke.png');
    await page.screenshot({ path, timeout: 10_000 });
    const png = readFileSync(path);
    expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');
    expect(png.readUInt32BE(16)).toBe(800); // IHDR width = the viewport
    expect(png.length).toBeGreaterThan(2_000);
  });
});
