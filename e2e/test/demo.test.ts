/**
 * The demo page `npm start` serves (examples/demo), in a real Chromium against the reference server:
 * log in through the form, watch the diagram and the timeline go through a refresh, fire 50
 * requests for one refresh, and log out in one tab for the other to follow. Screenshots go to
 * e2e/artifacts (demo.png is the one the README shows, copied to docs/demo.png).
 *
 * The page is built here (Vite, into a temp dir) so a clean clone needs no prior step.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { ensureUser, silentLogger, startServer, type RunningServer, type StatsSnapshot } from '../../packages/server/src/index.ts';
import { launchBrowser, openWindow, type LaunchedBrowser } from '../harness/browser.ts';

const here = dirname(fileURLToPath(import.meta.url));
const demoDir = join(here, '../../examples/demo');
const artifacts = join(here, '../artifacts');
const EMAIL = 'demo@tessera.dev';
const PASSWORD = 'tessera-demo';
/** Short enough to see a refresh within the test: Tessera refreshes a quarter of the lifetime early (every 3 s). */
const TTL = 4;

/** Builds examples/demo with its own Vite into a new temp dir. */
function buildDemo(): string {
  const vite = join(demoDir, 'node_modules/vite/bin/vite.js');
  if (!existsSync(vite)) throw new Error(`Vite is not installed in examples/demo (${vite}): run npm install at the repo root`);
  const outDir = mkdtempSync(join(tmpdir(), 'tessera-demo-'));
  const run = spawnSync(process.execPath, [vite, 'build', '--outDir', outDir, '--emptyOutDir', '--logLevel', 'warn'], {
    cwd: demoDir,
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (run.status !== 0 || !existsSync(join(outDir, 'index.html'))) {
    rmSync(outDir, { recursive: true, force: true });
    throw new Error(`vite build failed (${run.status ?? run.signal}):\n${run.stdout}\n${run.stderr}`);
  }
  return outDir;
}

describe('demo page: the session, its refreshes, held and replayed requests and tabs, in a real Chromium', () => {
  let dir: string;
  let server: RunningServer;
  let launched: LaunchedBrowser;
  let a: Page;
  /** Reset links the server "mails" (the CLI prints them; here the test reads them). */
  const mailed: string[] = [];

  const stats = async (): Promise<StatsSnapshot> => (await (await fetch(`${server.url}/__stats`, { signal: AbortSignal.timeout(5_000) })).json()) as StatsSnapshot;

  /** A tab of the profile in a window of its own (a second tab in one window would be hidden and throttled), on the demo. */
  const openTab = async (): Promise<Page> => {
    const page = await openWindow(launched);
    page.setDefaultTimeout(10_000);
    await page.setViewportSize({ width: 1280, height: 1000 });
    await page.goto(`${server.url}/`, { timeout: 10_000 });
    await page.locator('h1').waitFor();
    return page;
  };

  const timelineKinds = (page: Page) => page.locator('#timeline li').evaluateAll((items) => items.map((li) => li.getAttribute('data-kind')));
  const countKind = async (page: Page, kind: string) => (await timelineKinds(page)).filter((k) => k === kind).length;

  beforeAll(async () => {
    dir = buildDemo();
    const [s, b] = await Promise.all([
      startServer({ port: 0, host: '127.0.0.1', faults: true, scryptCost: 1024, logger: silentLogger, staticDir: dir, accessTokenTtl: TTL, mailer: (m) => void mailed.push(String(m.payload.link)) }),
      launchBrowser(),
    ]);
    server = s;
    launched = b;
    await ensureUser(server.store, { email: EMAIL, password: PASSWORD, name: 'Demo User', roles: ['user', 'demo'] }, server.options.scryptCost);
    mkdirSync(artifacts, { recursive: true });
  });
  afterAll(async () => {
    await launched?.close().catch(() => {});
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('logs in through the form; the diagram and the timeline go through a refresh; the Mermaid text is the table', async () => {
    a = await openTab();
    expect(await a.title()).toBe('Tessera demo');
    await expect.poll(() => a.locator('#status').textContent(), { timeout: 10_000 }).toBe('unauthenticated');
    await a.locator('[data-state="unauthenticated"][aria-current="true"]').waitFor();
    // A first visit has no stored session: said calmly (blue, "nothing went wrong"), not lit like a failure.
    expect(await a.getByTestId('last-transition').textContent()).toBe('restore.failed: initializing → unauthenticated');
    expect(await a.getByTestId('last-transition-note').textContent()).toContain('no stored session');
    expect(await a.locator('path.edge.hot').count()).toBe(0);
    expect(await a.locator('path.edge.calm[data-from="initializing"][data-to="unauthenticated"]').count()).toBe(1);
    expect(await a.locator('#timeline li[data-kind="transition"]').first().textContent()).toContain('no stored session yet');

    // The form: labelled fields, a wrong password first (error shown), then the right one.
    await a.getByLabel('E-mail').fill(EMAIL);
    await a.getByLabel('Password').fill('not-the-password');
    const form = a.getByRole('form', { name: 'Sign in' });
    await form.getByRole('button', { name: 'Sign in', exact: true }).click();
    await expect.poll(() => a.getByRole('alert').first().textContent(), { timeout: 10_000 }).toMatch(/incorrect/);
    await a.getByLabel('Password').fill(PASSWORD);
    await a.getByLabel('Password').press('Enter'); // the keyboard submits
    await a.locator('#status[data-status="authenticated"]').waitFor({ timeout: 10_000 });
    await a.getByTestId('welcome').getByText('Demo User').waitFor();
    await a.locator('[data-state="authenticated"][aria-current="true"]').waitFor();
    expect(await a.getByTestId('last-transition').textContent()).toMatch(/login\.succeeded: authenticating → authenticated|user\.loaded/);
    expect(await a.locator('#countdown').textContent()).toMatch(/expires in \d+\.\d s/);
    expect(await timelineKinds(a)).toEqual(expect.arrayContaining(['login', 'transition']));

    // A refresh comes on its own before the 4 s token runs out: the timeline and the diagram show it.
    await a.locator('#timeline li[data-kind="refresh"]').first().waitFor({ timeout: 8_000 });
    await expect.poll(() => a.locator('#timeline li[data-kind="transition"]').allTextContents(), { timeout: 5_000 }).toEqual(
      expect.arrayContaining([expect.stringMatching(/refresh\.started: authenticated → authenticated/), expect.stringMatching(/refresh\.succeeded/)]),
    );
    expect((await stats()).refresh.succeeded).toBeGreaterThanOrEqual(1);
    await a.locator('[data-state="authenticated"][aria-current="true"]').waitFor();

    // The diagram is the table: one node per status; the Mermaid text is toMermaid().
    expect(await a.locator('[data-testid="diagram"] [data-state]').count()).toBe(5);
    const mermaid = await a.getByTestId('mermaid').textContent();
    expect(mermaid).toMatch(/^stateDiagram-v2\n {2}\[\*\] --> initializing\n/);
    expect(mermaid).toContain('authenticated --> expired: refresh.rejected');
  });

  it('fires 50 concurrent requests: 50 answered, one refresh (the server counts one more refresh call)', async () => {
    // Just after a scheduled refresh, so the next one is ~3 s away.
    const refreshes = await countKind(a, 'refresh');
    await expect.poll(() => countKind(a, 'refresh'), { timeout: 6_000, interval: 50 }).toBeGreaterThan(refreshes);
    const before = await stats();
    // The browser's red 401 lines and cancelled first attempts are explained next to the button.
    expect(await a.getByTestId('burst-console-hint').textContent()).toMatch(/50 red 401 \(Unauthorized\) lines.*ERR_ABORTED/);
    await a.getByTestId('burst').click();
    await a.getByTestId('burst-result').waitFor({ timeout: 15_000 });
    await expect.poll(() => a.getByTestId('burst').textContent(), { timeout: 15_000 }).toBe('Fire 50 concurrent requests');
    const after = await stats();
    expect(await a.getByTestId('burst-ok').textContent()).toBe('50');
    expect(await a.getByTestId('burst-failed').textContent()).toBe('0');
    expect(await a.getByTestId('burst-refreshes').textContent()).toBe('1');
    expect(after.refresh.calls - before.refresh.calls).toBe(1);
    // Each first attempt carried an expired token: 50 answered 401, 50 replays succeeded.
    expect(after.api.calls - before.api.calls).toBe(100);
    expect(after.api.unauthorized - before.api.unauthorized).toBe(50);
    const kinds = await timelineKinds(a);
    expect(kinds).toEqual(expect.arrayContaining(['burst', 'unauthorized', 'replayed']));
    expect(await a.locator('#timeline li[data-kind="replayed"]').first().textContent()).toContain('50 of 50');

    await a.screenshot({ path: join(artifacts, 'demo.png'), fullPage: true, timeout: 10_000 });
    const png = readFileSync(join(artifacts, 'demo.png'));
    expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');
    expect(png.readUInt32BE(16)).toBe(1280);
  });

  it('holds requests while a slowed refresh runs (server faults), then answers them all', async () => {
    await a.getByRole('button', { name: 'Slow refreshes (3 s)' }).click();
    await expect.poll(async () => (await (await fetch(`${server.url}/__faults`)).json()) as { latencyMs: number }, { timeout: 5_000 }).toMatchObject({ latencyMs: 3_000 });
    const before = await stats();
    await a.getByRole('button', { name: 'Refresh now' }).click();
    await a.locator('.badge.refreshing').first().waitFor({ timeout: 5_000 });
    await a.getByTestId('burst').click();
    await expect.poll(() => a.getByTestId('burst').textContent(), { timeout: 15_000 }).toBe('Fire 50 concurrent requests');
    expect(await a.getByTestId('burst-ok').textContent()).toBe('50');
    expect(await a.locator('#timeline li[data-kind="held"]').first().textContent()).toMatch(/\d+ of 50 requests were held/);
    await a.getByRole('button', { name: 'Back to normal' }).click();
    await expect.poll(async () => (await (await fetch(`${server.url}/__faults`)).json()) as { latencyMs: number }, { timeout: 5_000 }).toMatchObject({ latencyMs: 0 });
    expect((await stats()).refresh.calls - before.refresh.calls).toBeLessThanOrEqual(2);
  });

  it('logs out in one tab and the other tab follows', async () => {
    const b = await openTab();
    // The new tab joins the live session (storage and the other tab), without a login.
    await b.locator('#status[data-status="authenticated"]').waitFor({ timeout: 10_000 });

    await a.getByRole('button', { name: 'Sign out' }).click();
    await a.locator('#status[data-status="unauthenticated"]').waitFor({ timeout: 10_000 });
    await b.locator('#status[data-status="unauthenticated"]').waitFor({ timeout: 10_000 });
    await b.locator('[data-state="unauthenticated"][aria-current="true"]').waitFor();
    expect(await b.locator('#timeline li[data-kind="tab"]').allTextContents()).toEqual(expect.arrayContaining([expect.stringContaining('another tab ended the session')]));
    expect(await timelineKinds(b)).toContain('logout');
    await b.getByRole('form', { name: 'Sign in' }).getByRole('button', { name: 'Sign in', exact: true }).waitFor(); // back to the form
    await b.screenshot({ path: join(artifacts, 'demo-tabs.png'), fullPage: true, timeout: 10_000 });

    // Phone width: one column, nothing wider than the screen.
    await b.setViewportSize({ width: 390, height: 844 });
    await expect.poll(() => b.evaluate(() => document.documentElement.scrollWidth), { timeout: 5_000 }).toBeLessThanOrEqual(390);
    await b.screenshot({ path: join(artifacts, 'demo-phone.png'), fullPage: true, timeout: 10_000 });
  });

  it('registers, asks for a reset link and resets the password through the forms, with their errors', async () => {
    const page = a;
    const email = `new-${Date.now()}@example.test`;
    await page.getByRole('button', { name: 'Register' }).click();
    const register = page.getByRole('form', { name: 'Register' });
    await expect.poll(() => page.evaluate(() => document.activeElement?.getAttribute('name')), { timeout: 5_000 }).toBe('name'); // focus moved to the form
    await register.getByLabel('Name').fill('Ada');
    await register.getByLabel('E-mail').fill(EMAIL);
    await register.getByLabel(/^Password/).fill('correct horse battery');
    await register.getByRole('button', { name: 'Create account and sign in' }).click();
    await expect.poll(() => register.getByRole('alert').textContent(), { timeout: 10_000 }).toMatch(/already exists/);
    await register.getByLabel('E-mail').fill(email);
    await register.getByRole('button', { name: 'Create account and sign in' }).click();
    await page.locator('#status[data-status="authenticated"]').waitFor({ timeout: 10_000 });
    await page.getByTestId('welcome').getByText('Ada').waitFor();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.locator('#status[data-status="unauthenticated"]').waitFor({ timeout: 10_000 });

    await page.getByRole('button', { name: 'Forgot password' }).click();
    const forgot = page.getByRole('form', { name: 'Forgot password' });
    await forgot.getByLabel('E-mail').fill(email);
    await forgot.getByRole('button', { name: 'Send a reset link' }).click();
    await forgot.getByRole('status').getByText(/reset link is on its way/).waitFor({ timeout: 10_000 });
    await expect.poll(() => mailed.length, { timeout: 5_000 }).toBe(1);
    const link = new URL(mailed[0]!);
    expect(link.pathname).toBe('/reset-password');

    // The link opens the page at /reset-password with the reset form filled in.
    await page.goto(`${server.url}${link.pathname}${link.search}`, { timeout: 10_000 });
    const reset = page.getByRole('form', { name: 'Reset password' });
    await reset.getByLabel(/^New password/).fill('another horse battery');
    await reset.getByRole('button', { name: 'Set the new password' }).click();
    await reset.getByRole('status').getByText(/Password changed/).waitFor({ timeout: 10_000 });
    const signIn = page.getByRole('form', { name: 'Sign in' });
    await signIn.waitFor({ timeout: 5_000 });
    await signIn.getByLabel('E-mail').fill(email);
    await signIn.getByLabel('Password').fill('another horse battery');
    await signIn.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.locator('#status[data-status="authenticated"]').waitFor({ timeout: 10_000 });
    expect(new URL(page.url()).search).toBe(''); // the single-use token left the address bar
  });
});
