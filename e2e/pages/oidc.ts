/**
 * The OIDC test page: an engine over `oidcAuthority` with the browser defaults (location.assign,
 * location.href, history.replaceState, sessionStorage), and `window.oidcApp` for the test to drive.
 * Bundled by e2e/test/oidc.test.ts (esbuild) and served at `/` and `/callback` of the app origin.
 */
import { createAuth, isTesseraError, sessionStorageStore, type AuthStatus } from '../../packages/tessera/src/index.ts';
import { oidcAuthority, type OidcUser } from '../../packages/tessera/src/authorities/oidc.ts';

export interface OidcAppSnapshot {
  status: AuthStatus;
  user: OidcUser | null;
  error: { code: string; field?: string; message: string } | null;
}

declare global {
  interface Window {
    /** Written by the page's HTML before this script runs. */
    OIDC_ISSUER: string;
    oidcApp: {
      /** Every status this page load went through, from the first snapshot on. */
      statuses: AuthStatus[];
      snapshot(): OidcAppSnapshot;
      /** Starts the redirect (the promise never settles: the page leaves). */
      login(): void;
      logout(): Promise<void>;
      /** Resolves once the page load's restore (the callback, here) is done, user included. */
      ready(): Promise<void>;
    };
  }
}

const auth = createAuth({
  key: 'oidc-e2e',
  storage: sessionStorageStore(),
  authority: oidcAuthority({
    issuer: window.OIDC_ISSUER,
    clientId: 'web',
    redirectUri: `${location.origin}/callback`,
    postLogoutRedirectUri: `${location.origin}/`,
    allowInsecureRequests: true, // the provider is on http://127.0.0.1 in this test
  }),
});

const statuses: AuthStatus[] = [auth.getSnapshot().status];
auth.subscribe(() => {
  const s = auth.getSnapshot().status;
  if (s !== statuses.at(-1)) statuses.push(s);
  document.getElementById('status')!.textContent = s;
});

window.oidcApp = {
  statuses,
  snapshot() {
    const { status, user, error } = auth.getSnapshot();
    return { status, user, error: isTesseraError(error) ? { code: error.code, field: error.field, message: error.message } : null };
  },
  login() {
    auth.login().catch(() => {});
  },
  logout: () => auth.logout(),
  ready: () => auth.ready(),
};
