/// <reference path="../../packages/tessera/test/oidc-provider.d.ts" />
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import Provider from 'oidc-provider';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, type LaunchedBrowser } from '../harness/browser.ts';
import { signInAtProvider } from '../harness/provider-pages.ts';

/**
 * The whole OIDC redirect in a real Chromium: the app (e2e/pages/oidc.ts) on one 127.0.0.1 origin,
 * a real OpenID provider (oidc-provider) on another; the test types into the provider's login page.
 */
const listen = async (server: Server) => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
};

describe('OIDC in Chromium: Authorization Code + PKCE through the provider login page', () => {
  let providerServer: Server;
  let appServer: Server;
  let issuer: string;
  let app: string;
  let browser: LaunchedBrowser;
  let page: Page;

  beforeAll(async () => {
    const bundle = await build({
      entryPoints: [join(dirname(fileURLToPath(import.meta.url)), '../pages/oidc.ts')],
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      write: false,
    });
    const script = bundle.outputFiles[0]!.text;

    providerServer = createServer();
    issuer = await listen(providerServer);
    appServer = createServer((req, res) => {
      const path = new URL(req.url!, 'http://x').pathname;
      if (path === '/oidc.js') return void res.writeHead(200, { 'content-type': 'text/javascript' }).end(script);
      if (path === '/' || path === '/callback')
        return void res
          .writeHead(200, { 'content-type': 'text/html' })
          .end(`<!doctype html><title>oidc e2e</title><p id="status">loading</p><script>window.OIDC_ISSUER=${JSON.stringify(issuer)}</script><script type="module" src="/oidc.js"></script>`);
      res.writeHead(404).end();
    });
    app = await listen(appServer);

    const provider = new Provider(issuer, {
      clients: [
        {
          client_id: 'web',
          token_endpoint_auth_method: 'none',
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
          redirect_uris: [`${app}/callback`],
          post_logout_redirect_uris: [`${app}/`],
        },
      ],
      findAccount: (_ctx: unknown, id: string) => ({ accountId: id, claims: () => ({ sub: id, name: 'Ada Lovelace' }) }),
      claims: { openid: ['sub'], profile: ['name'] },
      features: { devInteractions: { enabled: true }, revocation: { enabled: true }, rpInitiatedLogout: { enabled: true } },
      rotateRefreshToken: true,
      issueRefreshToken: async (_ctx: unknown, client: { grantTypeAllowed(t: string): boolean }) => client.grantTypeAllowed('refresh_token'),
      ttl: { AccessToken: 60, AuthorizationCode: 60, IdToken: 60, RefreshToken: 3600, Interaction: 600, Session: 600, Grant: 3600 },
      cookies: { keys: ['tessera-e2e-cookie-key'] },
    });
    providerServer.on('request', provider.callback());

    browser = await launchBrowser();
    page = await browser.profile.newPage();
    page.setDefaultTimeout(10_000);
    // The page's own errors, for a readable failure.
    page.on('pageerror', (e) => console.error('page error:', e.message));
    page.on('console', (m) => m.type() === 'error' && !/Failed to load resource/.test(m.text()) && console.error('page console:', m.text()));
  });
  afterAll(async () => {
    await page?.close();
    await browser?.close();
    await Promise.all([providerServer, appServer].map((s) => s && new Promise<void>((r) => s.close(() => r()))));
  });

  it('login leaves for the provider, the user signs in and consents, and the callback page lands authenticated without a flash of unauthenticated', async () => {
    await page.goto(`${app}/`);
    await page.waitForFunction(() => window.oidcApp?.snapshot().status === 'unauthenticated');

    await page.evaluate(() => window.oidcApp.login());
    await signInAtProvider(page, issuer);

    await page.waitForURL(`${app}/callback**`);
    await page.waitForFunction(() => window.oidcApp);
    await page.evaluate(() => window.oidcApp.ready());
    const result = await page.evaluate(() => ({
      snapshot: window.oidcApp.snapshot(),
      statuses: window.oidcApp.statuses,
      href: location.href,
      pending: sessionStorage.getItem('tessera.oidc'),
    }));
    expect(result.snapshot).toMatchObject({ status: 'authenticated', user: { sub: 'ada', name: 'Ada Lovelace' }, error: null });
    expect(result.statuses).toEqual(['initializing', 'authenticated']);
    expect(result.href).toBe(`${app}/callback`); // code and state gone from the address bar
    expect(result.pending).toBeNull(); // the login state was single use

    // A reload keeps the session from sessionStorage and does not replay the callback.
    await page.reload();
    await page.waitForFunction(() => window.oidcApp);
    await page.evaluate(() => window.oidcApp.ready());
    expect(await page.evaluate(() => window.oidcApp.snapshot().status)).toBe('authenticated');
  });

  it('logout ends the provider session too and comes back to the app unauthenticated', async () => {
    await page.evaluate(() => void window.oidcApp.logout());
    await page.waitForURL(`${issuer}/session/end**`);
    await page.click('button[autofocus], button[type=submit]');
    await page.waitForURL(`${app}/`);
    await page.waitForFunction(() => window.oidcApp);
    await page.evaluate(() => window.oidcApp.ready());
    expect(await page.evaluate(() => window.oidcApp.snapshot())).toMatchObject({ status: 'unauthenticated', user: null });
  });
});
