export { createAuth } from './core/auth.js'
export { TesseraError, isTesseraError } from './core/errors.js'
export type { TesseraErrorCode, TesseraErrorDetails } from './core/errors.js'
export { transitions, transition, toMermaid } from './core/machine.js'
export type { AuthStatus, AuthEvent, AuthEventType, SessionState, Notice } from './core/machine.js'
export { parseTokenResponse, decodeJwt } from './core/tokens.js'
export type { TokenSet, JwtClaims } from './core/tokens.js'
export type { RetryPolicy } from './core/retry.js'
export type {
  Authority,
  Auth,
  AuthOptions,
  AuthSnapshot,
  AuthNotice,
  AuthEventName,
  ActionName,
  ActionState,
  Grant,
  GrantOptions,
  TokenRequest,
  ProofPort,
  TokenPlacement,
  AuthRequestInit,
  WaitOptions,
} from './core/types.js'
export { createAudiences } from './core/audiences.js'
export type { AudiencePort } from './core/audiences.js'
export { createAuthFetch } from './transports/fetch.js'
export type { AuthTransportApi } from './transports/fetch.js'
export { systemClock } from './ports/clock.js'
export type { Clock } from './ports/clock.js'
export { memoryStorage, localStorageStore, sessionStorageStore } from './ports/storage.js'
export type { StoragePort } from './ports/storage.js'
export { browserEnvironment } from './ports/environment.js'
export type { EnvironmentPort, EnvironmentSignal } from './ports/environment.js'
export { broadcastChannel } from './ports/channel.js'
export type { ChannelPort } from './ports/channel.js'
export { webLocks } from './ports/lock.js'
export type { LockPort } from './ports/lock.js'
export type { TabMessage } from './core/tabs.js'
