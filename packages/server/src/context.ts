import type { Context } from 'hono';
import type { HttpBindings } from '@hono/node-server';
import type { NonceSource } from './dpop.ts';
import type { Faults } from './faults.ts';
import type { ResolvedOptions } from './options.ts';
import type { RefreshTokens } from './refresh-tokens.ts';
import type { Stats } from './stats.ts';
import type { Store } from './store/types.ts';
import type { LoginThrottle } from './throttle.ts';
import type { AccessClaims, TokenSigner } from './tokens.ts';

/** Everything the route modules share; one per app. */
export interface AppContext {
  options: ResolvedOptions;
  store: Store;
  signer: TokenSigner;
  stats: Stats;
  refreshTokens: RefreshTokens;
  throttle: LoginThrottle;
  faults: Faults;
  /** DPoP server nonces, when `dpopNonces` is on. */
  nonces: NonceSource | null;
  /** A hash verified for unknown e-mails so login timing does not reveal accounts. */
  dummyPasswordHash: string;
}

/** Hono environment of the app: Node bindings when served, none under `app.request()`. */
export type Env = { Bindings: Partial<HttpBindings>; Variables: { claims: AccessClaims } };
export type C = Context<Env>;

/** The client address (socket peer), `unknown` when not served over a socket. */
export function clientAddress(c: C): string {
  return c.env?.incoming?.socket?.remoteAddress ?? 'unknown';
}

