/** A user row. `email` is stored normalised (trimmed, lower case). */
export interface UserRecord {
  id: string;
  email: string;
  name: string | null;
  roles: string[];
  passwordHash: string;
  createdAt: number;
}

/** A refresh token row. Only the SHA-256 hash of the token is stored. Times are ms since the epoch. */
export interface RefreshTokenRecord {
  id: string;
  tokenHash: string;
  familyId: string;
  parentId: string | null;
  userId: string;
  createdAt: number;
  idleExpiresAt: number;
  absoluteExpiresAt: number;
  usedAt: number | null;
  revokedAt: number | null;
  successorId: string | null;
  /** The successor pair sealed with a key derived from this token (grace window only). */
  successorSealed: string | null;
  /** The JWK thumbprint of the DPoP key the token is bound to (RFC 9449); null when it is not bound. */
  dpopJkt: string | null;
}

/** A refresh token to insert; unbound when `dpopJkt` is left out. */
export type NewRefreshToken = Omit<RefreshTokenRecord, 'usedAt' | 'revokedAt' | 'successorId' | 'successorSealed' | 'dpopJkt'> & {
  dpopJkt?: string | null;
};

/** A token-signing key. Private keys are JWK JSON; only the public half is ever published. Times in ms. */
export interface SigningKeyRecord {
  kid: string;
  privateJwk: string;
  publicJwk: string;
  createdAt: number;
  /** From this instant the key signs new tokens (until a newer key activates). */
  activatesAt: number;
  /** From this instant the key neither signs nor verifies; null while it is the newest key. */
  retiresAt: number | null;
}

/** A refresh token with the user it belongs to (one indexed lookup on the refresh path). */
export interface RefreshSession {
  token: RefreshTokenRecord;
  user: UserRecord;
}

/** A row of `security_events`. */
export interface SecurityEvent {
  id: string;
  kind: 'refresh_token_reuse' | string;
  userId: string | null;
  familyId: string | null;
  detail: Record<string, unknown>;
  createdAt: number;
}

/** A message waiting to be delivered (an e-mail in a real deployment). */
export interface OutboxMessage {
  id: string;
  kind: 'password_reset';
  recipient: string;
  /** For password resets: `{ link, token, expiresAt }`. */
  payload: Record<string, unknown>;
  createdAt: number;
}

/**
 * Persistence used by the server. PGlite and PostgreSQL share one SQL implementation.
 * @remarks Every method that changes a token's state is a single conditional statement or a transaction,
 * so concurrent server instances sharing one PostgreSQL stay consistent.
 */
export interface Store {
  readonly kind: 'pglite' | 'postgres';
  /** Applies pending migrations (idempotent; serialised with an advisory lock). */
  migrate(): Promise<void>;
  close(): Promise<void>;

  /** Inserts a user; resolves null when the e-mail is taken. */
  createUser(user: UserRecord): Promise<UserRecord | null>;
  findUserByEmail(email: string): Promise<UserRecord | null>;
  findUserById(id: string): Promise<UserRecord | null>;
  updatePasswordHash(userId: string, passwordHash: string): Promise<void>;

  insertRefreshToken(token: NewRefreshToken): Promise<void>;
  findRefreshToken(tokenHash: string): Promise<RefreshTokenRecord | null>;
  /** The refresh token with this hash and its user, in one query; null when unknown. */
  findRefreshSession(tokenHash: string): Promise<RefreshSession | null>;
  /**
   * Atomically marks `parentId` used (only if it is neither used nor revoked) and inserts `child`, in
   * one statement. Resolves false, changing nothing, when another rotation won.
   */
  rotateRefreshToken(parentId: string, usedAt: number, successorSealed: string | null, child: NewRefreshToken): Promise<boolean>;
  /**
   * The refresh fast path, one statement: when the token with this hash is unused, not revoked and not
   * expired at `now`, marks it used and inserts `child` as its successor (same family and absolute
   * expiry, created at `now`). A token bound to a DPoP key is only exchanged when `dpopJkt` is that key;
   * an unbound one is exchanged for a child bound to `dpopJkt` (when given). Resolves the user and when the child expires (ms); null, changing
   * nothing, otherwise (look the token up to say why). Atomic like {@link Store.rotateRefreshToken}.
   */
  exchangeRefreshToken(
    tokenHash: string,
    now: number,
    child: { id: string; tokenHash: string; idleExpiresAt: number },
    dpopJkt?: string | null,
  ): Promise<{ user: UserRecord; expiresAt: number } | null>;
  /** Revokes every not yet revoked token of a family; resolves how many were revoked. */
  revokeFamily(familyId: string, at: number): Promise<number>;
  /** Revokes every refresh token of a user; resolves how many were revoked. */
  revokeAllForUser(userId: string, at: number): Promise<number>;

  /** Keys that have not retired at `now`, oldest activation first. */
  listSigningKeys(now: number): Promise<SigningKeyRecord[]>;
  /** Inserts `key` unless a key that has not retired exists; serialised so instances starting together agree on one. */
  ensureSigningKey(key: SigningKeyRecord): Promise<void>;
  /** In one transaction: every key without a retirement time retires at `retiresAt`, and `next` is inserted. */
  rotateSigningKey(next: SigningKeyRecord, retiresAt: number): Promise<void>;

  /** Times of the failures recorded for `key` after `since`, newest first, at most `limit`. */
  recentLoginFailures(key: string, since: number, limit: number): Promise<number[]>;
  /** Records one failure at `at` for each key, and forgets every failure at or before `forgetBefore`. */
  recordLoginFailure(keys: string[], at: number, forgetBefore: number): Promise<void>;
  /** Forgets the failures of `key` (a successful login). */
  clearLoginFailures(key: string): Promise<void>;

  /**
   * Records a DPoP proof's `key` (its key's thumbprint and `jti`) until `expiresAt`; resolves false when it
   * was already recorded and has not expired at `now` (a replay). One conditional statement, so instances
   * on one database see each other's proofs. Expired entries are deleted now and then.
   */
  claimProofJti(key: string, expiresAt: number, now: number): Promise<boolean>;

  /** The secret stored under `name`, storing `candidate` first when there is none (instances agree on the first one). */
  sharedSecret(name: string, candidate: string): Promise<string>;

  insertSecurityEvent(event: SecurityEvent): Promise<void>;
  listSecurityEvents(filter?: { userId?: string; familyId?: string }): Promise<SecurityEvent[]>;

  insertPasswordReset(reset: { id: string; tokenHash: string; userId: string; createdAt: number; expiresAt: number }): Promise<void>;
  /** Marks an unused, unexpired reset token used; resolves its user id, or null. Single use even under races. */
  consumePasswordReset(tokenHash: string, now: number): Promise<string | null>;

  insertOutbox(message: OutboxMessage): Promise<void>;
  listOutbox(recipient?: string): Promise<OutboxMessage[]>;
}
