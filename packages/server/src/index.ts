/**
 * The Tessera reference token server.
 * @packageDocumentation
 */
export { createApp, type TesseraApp } from './app.ts';
export { startServer, type RunningServer } from './server.ts';
export { consoleLogger, silentLogger, resolveOptions, type Logger, type ServerOptions, type ResolvedOptions, type ThrottleOptions } from './options.ts';
export { Stats, type StatsSnapshot } from './stats.ts';
export type { FaultSettings } from './faults.ts';
export { openStore, openPgliteStore, openPostgresStore } from './store/index.ts';
export type { Store, UserRecord, RefreshTokenRecord, SecurityEvent, OutboxMessage, SigningKeyRecord } from './store/types.ts';
export { ensureUser, createUser, normalizeEmail, type PublicUser } from './users.ts';
export { hashPassword, verifyPassword } from './passwords.ts';
export { hashToken } from './crypto-utils.ts';
export { REFRESH_COOKIE } from './auth-routes.ts';
export { rotateSigningKey } from './tokens.ts';
export type { DpopMode } from './options.ts';
export { checkProof, memoryReplayCache, hmacNonces, type ProofFailure, type ProofResult, type ReplayCache, type NonceSource } from './dpop.ts';
