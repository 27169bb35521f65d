import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import type { Server } from 'node:http';
import { createApp, type TesseraApp } from './app.ts';
import type { ResolvedOptions, ServerOptions } from './options.ts';
import type { Stats } from './stats.ts';
import type { Store } from './store/types.ts';

/** A running server. */
export interface RunningServer {
  /** e.g. `http://127.0.0.1:8787` */
  url: string;
  port: number;
  store: Store;
  stats: Stats;
  options: ResolvedOptions;
  app: TesseraApp;
  /** Stops listening, drops open connections (including requests held by faults) and closes the store. */
  close(): Promise<void>;
}

/**
 * Starts the server on `host` (default 127.0.0.1) and `port` (default 0 = a free port).
 * @example const server = await startServer({ scryptCost: 1024 }); await fetch(`${server.url}/auth/me`); await server.close();
 */
export async function startServer(options: ServerOptions = {}): Promise<RunningServer> {
  const tessera = await createApp(options);
  const { host, port } = tessera.options;
  let server: ServerType;
  const info = await new Promise<AddressInfo>((resolve, reject) => {
    server = serve({ fetch: tessera.app.fetch, hostname: host, port }, resolve);
    server.once('error', reject);
  }).catch(async (error: unknown) => {
    await tessera.close();
    throw error;
  });
  const http = server! as Server;
  // Longer than the idle timeouts of clients and proxies (undici ~4 s, load balancers 60 s): whoever
  // reuses a connection must never race the server closing it ("other side closed" under load).
  http.keepAliveTimeout = 65_000;
  http.headersTimeout = 66_000;
  const urlHost = info.family === 'IPv6' ? `[${info.address}]` : info.address;
  const url = `http://${urlHost}:${info.port}`;
  // Reset links must not be built from the request's Host header (an attacker could point them elsewhere).
  tessera.options.publicUrl ??= url;
  let closing: Promise<void> | undefined;
  return {
    url,
    port: info.port,
    store: tessera.store,
    stats: tessera.stats,
    options: tessera.options,
    app: tessera,
    close() {
      closing ??= (async () => {
        const stopped = new Promise<void>((resolve) => http.close(() => resolve()));
        tessera.faults.release();
        http.closeAllConnections();
        await stopped;
        await tessera.close();
      })();
      return closing;
    },
  };
}
