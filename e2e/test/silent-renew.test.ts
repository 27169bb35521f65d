/// <reference path="../../packages/tessera/test/oidc-provider.d.ts" />
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import Provider from 'oidc-provider';
import type { Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, openWindow, type LaunchedBrowser } from '../harness/browser.ts';
import { signInAtProvider } from '../harness/provider-pages.ts';
import type { SilentConfig } from '../pages/silent.ts';

/**
 * Silent renew (issue 16) in a real Chromium: the app (e2e/pages/silent.ts) on one 127.0.0.1
 * origin, OpenID providers (oidc-provider) that issue no refresh token on others, the renewal in a
 * real hidden iframe. Access tokens live 8 s, so the engine renews on its own every few seconds.
 */
const TTL = 8;
const here = dirname(fileURLToPath(import.meta.url));
const listen = async (server: Server) => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What a provider saw: each request, what it answered, and whether the browser sent its session cookie. */
interface Seen {
  path: string;
  query: Record<string, string>;
  status?: number;
  location?: string;
  grant?: string;
  sessionCookie: boolean;
}
/**
 * How the provider answers a silent request (`prompt=none` at `/auth`): with its redirect; with a
 * page that redirects by script (some providers do); the same page forbidding framing (CSP
 * `frame-ancestors 'none'`); or never.
 */
type Mode = 'redirect' | 'script' | 'framing-forbidden' | 'hang';

interface TestProvider {
  issuer: string;
  seen: Seen[];
  mode: Mode;
  /** The silent requests seen. */
  silent(): Seen[];
  grants(): string[];
  close(): Promise<void>;
}

/** oidc-provider withholding refresh tokens from the public client `web` (no `refresh_token` grant, `issueRefreshToken` false). */
async function startProvider(host: '127.0.0.1' | 'localhost', app: string, features: Record<string, unknown> = {}): Promise<TestProvider> {
  const server = createServer();
  const issuer = `http://${host}:${await listen(server)}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: 'web',
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code'],
        response_types: ['code'],
        redirect_uris: [`${app}/callback`, `${app}/silent`],
        post_logout_redirect_uris: [`${app}/`],
      },
    ],
    findAccount: (_ctx: unknown, id: string) => ({ accountId: id, claims: () => ({ sub: id, name: 'Ada Lovelace' }) }),
    claims: { openid: ['sub'], profile: ['name'] },
    features: { devInteractions: { enabled: true }, revocation: { enabled: true }, rpInitiatedLogout: { enabled: true }, ...features },
    pkce: { required: () => true },
    issueRefreshToken: async () => false,
    ttl: { AccessToken: TTL, AuthorizationCode: 60, IdToken: TTL, Interaction: 600, Session: 600, Grant: 3600 },
    cookies: { keys: ['tessera-e2e-silent-key'] },
  });
  const hung = new Set<() => void>();
  const op: TestProvider = {
    issuer,
    seen: [],
    mode: 'redirect',
    silent: () => op.seen.filter((s) => s.path === '/auth' && s.query.prompt === 'none'),
    grants: () => op.seen.flatMap((s) => (s.grant ? [s.grant] : [])),
    async close() {
      hung.forEach((release) => release());
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  provider.use(async (ctx, next) => {
    const cookie = String(ctx.headers.cookie ?? '');
    const entry: Seen = { path: ctx.path, query: { ...(ctx.query as Record<string, string>) }, sessionCookie: /(^|;\s*)_session=/.test(cookie) };
    op.seen.push(entry);
    const silent = ctx.path === '/auth' && ctx.query.prompt === 'none';
    if (silent && op.mode === 'hang') {
      await new Promise<void>((r) => hung.add(r));
      ctx.status = 204;
      return;
    }
    await next();
    entry.location = ctx.response.get('location') || undefined; // where the provider sent the frame, even when a page does it below
    const grant = ctx.oidc?.params?.grant_type;
    if (typeof grant === 'string') entry.grant = grant;
    if (silent && entry.location && (op.mode === 'script' || op.mode === 'framing-forbidden')) {
      ctx.response.remove('location');
      ctx.status = 200;
      ctx.type = 'html';
      ctx.body = `<!doctype html><title>One moment</title><script>location.replace(${JSON.stringify(entry.location)})</script>`;
      if (op.mode === 'framing-forbidden') ctx.set('content-security-policy', "frame-ancestors 'none'");
    }
    entry.status = ctx.status;
  });
  provider.on('server_error', (_ctx, err) => console.error('provider error', err));
  server.on('request', provider.callback());
  return op;
}

describe('silent renew in Chromium: prompt=none in a hidden iframe, against providers that give no refresh token', () => {
  let appServer: Server;
  let app: string;
  let browser: LaunchedBrowser;
  let sameSite: TestProvider; // 127.0.0.1: the app's own site
  let otherSite: TestProvider; // localhost: another site, where the provider's cookies are third-party
  let webMessage: TestProvider; // advertises response_mode=web_message
  let config: SilentConfig;
  /** Paths (with query) the app server served. */
  const appHits: string[] = [];

  beforeAll(async () => {
    const bundle = await build({
      entryPoints: [join(here, '../pages/silent.ts'), join(here, '../pages/silent-callback.ts')],
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      outdir: '/out',
      write: false,
    });
    const [script, callbackScript] = bundle.outputFiles.map((f) => f.text);
    const html = (body: string) => `<!doctype html><title>silent renew e2e</title><p id="status">loading</p>${body}`;
    appServer = createServer((req, res) => {
      const url = new URL(req.url!, 'http://x');
      appHits.push(url.pathname + url.search);
      const send = (type: string, body: string) => void res.writeHead(200, { 'content-type': type }).end(body);
      if (url.pathname === '/silent.js') return send('text/javascript', script!);
      if (url.pathname === '/silent-callback.js') return send('text/javascript', callbackScript!);
      if (url.pathname === '/silent') return send('text/html', html('<script type="module" src="/silent-callback.js"></script>'));
      if (url.pathname === '/' || url.pathname === '/callback')
        return send('text/html', html(`<script>window.SILENT_CONFIG=${JSON.stringify(config)}</script><script type="module" src="/silent.js"></script>`));
      res.writeHead(404).end();
    });
    app = `http://127.0.0.1:${await listen(appServer)}`;
    [sameSite, otherSite, webMessage] = await Promise.all([
      startProvider('127.0.0.1', app),
      startProvider('localhost', app),
      startProvider('127.0.0.1', app, { webMessageResponseMode: { enabled: true, ack: 'individual-draft-01' } }),
    ]);
    browser = await launchBrowser();
  });
  afterEach(async () => {
    await Promise.all(browser.profile.pages().map((p) => p.close()));
    await browser.profile.clearCookies();
    for (const op of [sameSite, otherSite, webMessage]) (op.seen = []), (op.mode = 'redirect');
  });
  afterAll(async () => {
    await browser?.close();
    await Promise.all([sameSite, otherSite, webMessage].map((op) => op?.close()));
    await new Promise<void>((r) => (appServer ? appServer.close(() => r()) : r()));
  });

  /** Loads the app in a tab of its own (a visible window) with `settings`. */
  async function tab(op: TestProvider, settings: Partial<SilentConfig> = {}): Promise<Page> {
    config = { issuer: op.issuer, silentPage: false, retry: { attempts: 1, timeout: 8_000, cooldown: 2_000 }, ...settings };
    const page = await openWindow(browser);
    page.setDefaultTimeout(20_000);
    page.on('pageerror', (e) => console.error('page error:', e.message));
    await page.goto(`${app}/`);
    await page.waitForFunction(() => window.silentApp);
    await page.evaluate(() => window.silentApp.ready());
    return page;
  }

  /** Signs in through the provider's login and consent pages; the page lands authenticated on /callback. */
  async function signIn(page: Page, op: TestProvider) {
    await page.evaluate(() => window.silentApp.login());
    await signInAtProvider(page, op.issuer);
    await page.waitForURL(`${app}/callback**`);
    await page.waitForFunction(() => window.silentApp);
    await page.evaluate(() => window.silentApp.ready());
    expect(await page.evaluate(() => window.silentApp.snapshot())).toMatchObject({ status: 'authenticated', user: { sub: 'ada' } });
    op.seen = [];
    appHits.length = 0;
  }

  const snapshot = (page: Page) => page.evaluate(() => window.silentApp.snapshot());
  const refresh = (page: Page) => page.evaluate(() => window.silentApp.refresh());

  it('a request after the access token expired succeeds after a silent renew through a real hidden iframe: prompt=none, a code grant, never a refresh_token grant', async () => {
    const page = await tab(sameSite);
    await signIn(page, sameSite);
    await sleep((TTL + 1) * 1000); // the first access token is dead now

    expect(await page.evaluate(() => window.silentApp.me())).toEqual({ status: 200, sub: 'ada' });
    expect((await snapshot(page)).generation).toBeGreaterThanOrEqual(2);
    const silent = sameSite.silent();
    expect(silent.length).toBeGreaterThanOrEqual(1);
    expect(silent[0]!.query).toMatchObject({ prompt: 'none', response_mode: 'query', redirect_uri: `${app}/callback`, code_challenge_method: 'S256' });
    expect(silent[0]).toMatchObject({ status: 303, sessionCookie: true, location: expect.stringMatching(new RegExp(`^${app}/callback\\?code=`)) });
    expect(sameSite.grants()).not.toContain('refresh_token');
    expect(sameSite.grants()).toContain('authorization_code');
    // The app's own page loaded in the frame and handed the answer over; the frame is gone.
    expect(appHits.some((h) => h.startsWith('/callback?code='))).toBe(true);
    expect(await page.evaluate(() => [window.silentApp.framesMade() >= 1, window.silentApp.framesNow()])).toEqual([true, 0]);
    expect(page.url()).toBe(`${app}/callback`); // the tab itself never moved
  });

  it('I1 across tabs: a second tab joins without a network call, and one renewal (one frame, one code grant) serves both', async () => {
    const a = await tab(sameSite);
    await signIn(a, sameSite);
    const b = await tab(sameSite);
    expect(await snapshot(b)).toMatchObject({ status: 'authenticated', user: { sub: 'ada' } });
    expect(sameSite.seen).toEqual([]); // I7: the session came from tab a

    const before = (await snapshot(a)).generation;
    const made = async () => (await Promise.all([a, b].map((p) => p.evaluate(() => window.silentApp.framesMade())))).reduce((x, y) => x + y);
    const made0 = await made();
    const renewed = (p: Page) => p.waitForFunction((g) => window.silentApp.snapshot().generation > g, before, { timeout: (TTL + 5) * 1000 });
    await Promise.all([renewed(a), renewed(b)]);
    expect(sameSite.silent()).toHaveLength(1);
    expect(sameSite.grants()).toEqual(['authorization_code']);
    expect((await made()) - made0).toBe(1);
    const [ga, gb] = await Promise.all([snapshot(a), snapshot(b)]);
    expect(ga.generation).toBe(gb.generation);
    expect(await Promise.all([a, b].map((p) => p.evaluate(() => window.silentApp.me())))).toEqual([
      { status: 200, sub: 'ada' },
      { status: 200, sub: 'ada' },
    ]);
  });

  it('after the provider session ends (logout at the provider), the next renewal ends the session expired in every tab', async () => {
    const a = await tab(sameSite);
    await signIn(a, sameSite);
    const b = await tab(sameSite);
    expect((await snapshot(b)).status).toBe('authenticated');

    const provider = await openWindow(browser); // the user signs out at the provider, in a third tab
    await provider.goto(`${sameSite.issuer}/session/end?client_id=web`);
    await provider.click('button[autofocus]');
    await provider.waitForURL(`${sameSite.issuer}/session/end/success**`);
    sameSite.seen = [];

    const expired = (p: Page) => p.waitForFunction(() => window.silentApp.snapshot().status === 'expired', undefined, { timeout: (TTL + 5) * 1000 });
    await Promise.all([expired(a), expired(b)]);
    for (const p of [a, b]) expect(await snapshot(p)).toMatchObject({ status: 'expired', user: null, error: { code: 'SESSION_EXPIRED' } });
    // The tab that renewed has the provider's words; the other learned it over the channel.
    const causes = await Promise.all([a, b].map((p) => p.evaluate(() => window.silentApp.events.find((e) => e.type === 'expired')?.error)));
    expect(causes).toContainEqual(expect.objectContaining({ code: 'SESSION_EXPIRED', cause: expect.objectContaining({ code: 'INVALID_GRANT', cause: expect.objectContaining({ error: 'login_required' }) }) }));
    expect(sameSite.silent()).toHaveLength(1);
    expect(sameSite.silent()[0]).toMatchObject({ location: expect.stringContaining('error=login_required') });
    expect(sameSite.grants()).toEqual([]);
  });

  it('third-party cookies: a provider on another site (localhost, the app on 127.0.0.1) gets no session cookie in the frame: login_required, the session ends typed', async () => {
    const page = await tab(otherSite);
    await signIn(page, otherSite); // top-level: the provider's cookies are first-party there
    const { error } = await refresh(page);
    expect(error).toMatchObject({ code: 'SESSION_EXPIRED', cause: { code: 'INVALID_GRANT', field: 'error', cause: { error: 'login_required' } } });
    expect(await snapshot(page)).toMatchObject({ status: 'expired' });
    // The provider still had the session: the frame's request came without its SameSite=Lax cookie.
    expect(otherSite.silent()).toEqual([expect.objectContaining({ sessionCookie: false, location: expect.stringContaining('error=login_required') })]);
  });

  it('a provider page that forbids framing (CSP frame-ancestors none): NETWORK_ERROR saying the frame was blocked, well within the timeout; the session kept, no frame left', async () => {
    const page = await tab(sameSite);
    await signIn(page, sameSite);
    sameSite.mode = 'framing-forbidden';
    const blocked = await refresh(page);
    expect(blocked.error).toMatchObject({ code: 'NETWORK_ERROR', message: expect.stringContaining('blocked') });
    expect(blocked.ms).toBeLessThan(8_000); // the grace after the frame loaded, not the engine's timeout
    expect(sameSite.silent()[0]).toMatchObject({ status: 200, sessionCookie: true });
    expect(await snapshot(page)).toMatchObject({ status: 'authenticated', generation: 1 });
    expect(await page.evaluate(() => window.silentApp.framesNow())).toBe(0);

    // The same page without the header: the script redirect runs in the frame and the renewal works.
    sameSite.mode = 'script';
    expect((await refresh(page)).error).toBeNull();
    expect(await snapshot(page)).toMatchObject({ status: 'authenticated', generation: 2 });
  });

  it('I2: a frame that never comes back (the provider never answers) is a TIMEOUT at retry.timeout, the frame removed, the session kept', async () => {
    const page = await tab(sameSite, { retry: { attempts: 1, timeout: 3_000, cooldown: 2_000 } });
    await signIn(page, sameSite);
    sameSite.mode = 'hang';
    const { error, ms } = await refresh(page);
    expect(error).toMatchObject({ code: 'TIMEOUT' });
    expect(ms).toBeGreaterThanOrEqual(2_900);
    expect(ms).toBeLessThan(8_000);
    expect(await page.evaluate(() => window.silentApp.framesNow())).toBe(0);
    expect(await snapshot(page)).toMatchObject({ status: 'authenticated', generation: 1 });
  });

  it('a dedicated silent page that only calls handleSilentCallback(): the answer comes back through it, the app never loads in the frame', async () => {
    const page = await tab(sameSite, { silentPage: true });
    await signIn(page, sameSite);
    expect((await refresh(page)).error).toBeNull();
    expect(await snapshot(page)).toMatchObject({ status: 'authenticated', generation: 2 });
    expect(sameSite.silent()[0]!.query.redirect_uri).toBe(`${app}/silent`);
    expect(appHits.filter((h) => h.startsWith('/silent?') || h.startsWith('/callback'))).toEqual([expect.stringMatching(/^\/silent\?code=/)]);
  });

  it('response_mode=web_message when the provider advertises it: the provider page posts the answer, no redirect page loads', async () => {
    const page = await tab(webMessage);
    await signIn(page, webMessage);
    expect((await refresh(page)).error).toBeNull();
    expect(await snapshot(page)).toMatchObject({ status: 'authenticated', generation: 2 });
    expect(webMessage.silent()[0]!.query.response_mode).toBe('web_message');
    expect(webMessage.grants()).toEqual(['authorization_code']);
    expect(appHits.filter((h) => h.startsWith('/silent') || h.startsWith('/callback'))).toEqual([]);
  });
});
