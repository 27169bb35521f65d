/**
 * The silent renew test page (issue 16): an engine over `oidcAuthority` with the browser defaults
 * (a real hidden iframe for silent renew) against a provider that issues no refresh token, and
 * `window.silentApp` for the test. Served at `/` and `/callback` of the app origin; `/callback` is
 * also the default silent redirect URI, so this very page loads in the renewal frame too, where
 * its engine's `restore()` hands the answer to the parent and starts nothing.
 */
import { createAuth, isTesseraError, sessionStorageStore, type AuthStatus } from '../../packages/tessera/src/index.ts';
import { oidcAuthority, type OidcUser } from '../../packages/tessera/src/authorities/oidc.ts';

/** A TesseraError as plain data, with its chain of causes (the provider's words at the end). */
export interface ErrorData {
  code?: string;
  message?: string;
  field?: string;
  error?: string;
  cause?: ErrorData;
}

export interface SilentConfig {
  issuer: string;
  /** Answer at `/silent` (a page that only calls handleSilentCallback) instead of `/callback`. */
  silentPage: boolean;
  retry: { attempts: number; timeout: number; cooldown: number };
}

declare global {
  interface Window {
    /** Written by the page's HTML before this script runs. */
    SILENT_CONFIG: SilentConfig;
    silentApp: {
      snapshot(): { status: AuthStatus; generation: number; user: OidcUser | null; error: ErrorData | null };
      /** `refresh`, `refresh-error` and `expired` events, with their errors. */
      events: Array<{ type: string; error?: ErrorData }>;
      /** How many renewal frames this page made, and how many are in it now. */
      framesMade(): number;
      framesNow(): number;
      login(): void;
      ready(): Promise<void>;
      /** `auth.refresh()`: resolves `null`, or the error it rejected with, and how long it took. */
      refresh(): Promise<{ error: ErrorData | null; ms: number }>;
      /** The provider's userinfo through `auth.fetch` (the access token attached by the engine). */
      me(): Promise<{ status: number; sub?: string }>;
    };
  }
}

const data = (e: unknown): ErrorData | undefined => {
  if (!e || typeof e !== 'object') return undefined;
  const x = e as { code?: string; message?: string; field?: string; error?: string; cause?: unknown };
  return { code: x.code, message: x.message, field: x.field, error: x.error, cause: data(x.cause) };
};

const config = window.SILENT_CONFIG;
const auth = createAuth({
  key: 'silent-e2e',
  storage: sessionStorageStore(),
  allowedOrigins: [config.issuer],
  retry: config.retry,
  authority: oidcAuthority({
    issuer: config.issuer,
    clientId: 'web',
    redirectUri: `${location.origin}/callback`,
    postLogoutRedirectUri: `${location.origin}/`,
    allowInsecureRequests: true, // the provider is on http://127.0.0.1 in this test
    silentRenew: config.silentPage ? { redirectUri: `${location.origin}/silent` } : {},
  }),
});

const events: Window['silentApp']['events'] = [];
for (const type of ['refresh', 'refresh-error', 'expired'] as const) auth.on(type, (n) => events.push({ type, error: data(n.error) }));
auth.subscribe(() => void (document.getElementById('status')!.textContent = auth.getSnapshot().status));

let made = 0;
const isFrame = (n: Node) => n instanceof HTMLIFrameElement && n.name === 'tessera-silent-renew';
new MutationObserver((records) => records.forEach((r) => r.addedNodes.forEach((n) => isFrame(n) && made++))).observe(document, { childList: true, subtree: true });

window.silentApp = {
  snapshot() {
    const { status, generation, user, error } = auth.getSnapshot();
    return { status, generation, user: user as OidcUser | null, error: isTesseraError(error) ? data(error)! : null };
  },
  events,
  framesMade: () => made,
  framesNow: () => [...document.querySelectorAll('iframe')].filter(isFrame).length,
  login() {
    auth.login().catch(() => {});
  },
  ready: () => auth.ready(),
  async refresh() {
    const start = performance.now();
    const error = await auth.refresh().then(() => null, data);
    return { error: error ?? null, ms: performance.now() - start };
  },
  async me() {
    const res = await auth.fetch(`${config.issuer}/me`);
    return { status: res.status, sub: res.ok ? ((await res.json()) as { sub: string }).sub : undefined };
  },
};
