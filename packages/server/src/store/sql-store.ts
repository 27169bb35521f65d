import { migrations } from './migrations.ts';
import type {
  NewRefreshToken,
  OutboxMessage,
  RefreshSession,
  RefreshTokenRecord,
  SecurityEvent,
  SigningKeyRecord,
  Store,
  UserRecord,
} from './types.ts';

type Row = Record<string, unknown>;

/** Runs one parameterised statement and returns its rows. */
export interface Queryable {
  query(sql: string, params?: unknown[]): Promise<Row[]>;
}

/** What a database driver must provide for {@link SqlStore}. */
export interface Db extends Queryable {
  readonly kind: Store['kind'];
  /** Runs `fn` in one transaction (BEGIN … COMMIT, ROLLBACK on throw). */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** An arbitrary constant identifying Tessera's migration advisory lock. */
const MIGRATION_LOCK_KEY = 7_351_902_114;
/** Serialises the creation of the first signing key. */
const SIGNING_KEY_LOCK_KEY = 7_351_902_115;

const num = (v: unknown): number => Number(v);
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const str = (v: unknown): string => String(v);
const strOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

function toUser(r: Row): UserRecord {
  return {
    id: str(r.id),
    email: str(r.email),
    name: strOrNull(r.name),
    roles: JSON.parse(str(r.roles)) as string[],
    passwordHash: str(r.password_hash),
    createdAt: num(r.created_at),
  };
}

function toSigningKey(r: Row): SigningKeyRecord {
  return {
    kid: str(r.kid),
    privateJwk: str(r.private_jwk),
    publicJwk: str(r.public_jwk),
    createdAt: num(r.created_at),
    activatesAt: num(r.activates_at),
    retiresAt: numOrNull(r.retires_at),
  };
}

function toRefreshToken(r: Row): RefreshTokenRecord {
  return {
    id: str(r.id),
    tokenHash: str(r.token_hash),
    familyId: str(r.family_id),
    parentId: strOrNull(r.parent_id),
    userId: str(r.user_id),
    createdAt: num(r.created_at),
    idleExpiresAt: num(r.idle_expires_at),
    absoluteExpiresAt: num(r.absolute_expires_at),
    usedAt: numOrNull(r.used_at),
    revokedAt: numOrNull(r.revoked_at),
    successorId: strOrNull(r.successor_id),
    successorSealed: strOrNull(r.successor_sealed),
    dpopJkt: strOrNull(r.dpop_jkt),
  };
}

const INSERT_REFRESH = `INSERT INTO refresh_tokens
  (id, token_hash, family_id, parent_id, user_id, created_at, idle_expires_at, absolute_expires_at, dpop_jkt)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`;

// One statement, so one round trip and no BEGIN/COMMIT: the UPDATE's row lock makes concurrent rotations
// of one token queue up; under READ COMMITTED the losers re-check `used_at IS NULL` after the winner
// commits, match nothing, and so insert nothing.
const ROTATE_REFRESH = `WITH won AS (
    UPDATE refresh_tokens SET used_at = $10, successor_id = $1, successor_sealed = $11
    WHERE id = $4 AND used_at IS NULL AND revoked_at IS NULL RETURNING id)
  INSERT INTO refresh_tokens
    (id, token_hash, family_id, parent_id, user_id, created_at, idle_expires_at, absolute_expires_at, dpop_jkt)
  SELECT $1, $2, $3, won.id, $5, $6::bigint, $7::bigint, $8::bigint, $9::text FROM won RETURNING id`;

// Lookup, conditional UPDATE and INSERT in one statement: one round trip for a successful refresh.
const EXCHANGE_REFRESH = `WITH won AS (
    UPDATE refresh_tokens SET used_at = $2, successor_id = $3
    WHERE token_hash = $1 AND used_at IS NULL AND revoked_at IS NULL
      AND idle_expires_at > $2 AND absolute_expires_at > $2 AND (dpop_jkt IS NULL OR dpop_jkt = $6::text)
    RETURNING id, family_id, user_id, absolute_expires_at, dpop_jkt),
  child AS (
    INSERT INTO refresh_tokens
      (id, token_hash, family_id, parent_id, user_id, created_at, idle_expires_at, absolute_expires_at, dpop_jkt)
    SELECT $3, $4, won.family_id, won.id, won.user_id, $2::bigint, $5::bigint, won.absolute_expires_at,
      COALESCE(won.dpop_jkt, $6::text) FROM won
    RETURNING idle_expires_at, absolute_expires_at)
  SELECT u.*, LEAST(child.idle_expires_at, child.absolute_expires_at) AS child_expires_at
  FROM won JOIN users u ON u.id = won.user_id CROSS JOIN child`;

const SELECT_SESSION = `SELECT t.id, t.token_hash, t.family_id, t.parent_id, t.user_id, t.created_at, t.idle_expires_at,
    t.absolute_expires_at, t.used_at, t.revoked_at, t.successor_id, t.successor_sealed, t.dpop_jkt,
    u.email, u.name, u.roles, u.password_hash, u.created_at AS user_created_at
  FROM refresh_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1`;

function refreshParams(t: NewRefreshToken): unknown[] {
  return [t.id, t.tokenHash, t.familyId, t.parentId, t.userId, t.createdAt, t.idleExpiresAt, t.absoluteExpiresAt, t.dpopJkt ?? null];
}

// A replayed proof conflicts and returns nothing; an expired entry with the same key is taken over.
const CLAIM_PROOF = `INSERT INTO dpop_proofs (key, expires_at) VALUES ($1, $2)
  ON CONFLICT (key) DO UPDATE SET expires_at = EXCLUDED.expires_at WHERE dpop_proofs.expires_at <= $3
  RETURNING key`;
/** Expired proof entries are deleted at most this often per store. */
const PROOF_PRUNE_MS = 60_000;

function insertSigningKey(tx: Queryable, k: SigningKeyRecord): Promise<Row[]> {
  return tx.query(
    'INSERT INTO signing_keys (kid, private_jwk, public_jwk, created_at, activates_at, retires_at) VALUES ($1, $2, $3, $4, $5, $6)',
    [k.kid, k.privateJwk, k.publicJwk, k.createdAt, k.activatesAt, k.retiresAt],
  );
}

/** The {@link Store} implementation shared by PGlite and PostgreSQL; every query is parameterised. */
export class SqlStore implements Store {
  readonly kind: Store['kind'];
  readonly #db: Db;
  #prunedProofsAt = 0;

  constructor(db: Db) {
    this.#db = db;
    this.kind = db.kind;
  }

  async migrate(): Promise<void> {
    await this.#db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY]);
      await tx.query(`CREATE TABLE IF NOT EXISTS migrations (
        id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`);
      const applied = new Set((await tx.query('SELECT id FROM migrations')).map((r) => num(r.id)));
      for (const m of migrations) {
        if (applied.has(m.id)) continue;
        for (const statement of m.sql.split(/;\s*\n/).map((s) => s.trim()).filter(Boolean)) {
          await tx.query(statement);
        }
        await tx.query('INSERT INTO migrations (id, name) VALUES ($1, $2)', [m.id, m.name]);
      }
    });
  }

  close(): Promise<void> {
    return this.#db.close();
  }

  async createUser(user: UserRecord): Promise<UserRecord | null> {
    const rows = await this.#db.query(
      `INSERT INTO users (id, email, name, roles, password_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (email) DO NOTHING RETURNING *`,
      [user.id, user.email, user.name, JSON.stringify(user.roles), user.passwordHash, user.createdAt],
    );
    return rows[0] ? toUser(rows[0]) : null;
  }

  async findUserByEmail(email: string): Promise<UserRecord | null> {
    const rows = await this.#db.query('SELECT * FROM users WHERE email = $1', [email]);
    return rows[0] ? toUser(rows[0]) : null;
  }

  async findUserById(id: string): Promise<UserRecord | null> {
    const rows = await this.#db.query('SELECT * FROM users WHERE id = $1', [id]);
    return rows[0] ? toUser(rows[0]) : null;
  }

  async updatePasswordHash(userId: string, passwordHash: string): Promise<void> {
    await this.#db.query('UPDATE users SET password_hash = $2 WHERE id = $1', [userId, passwordHash]);
  }

  async insertRefreshToken(token: NewRefreshToken): Promise<void> {
    await this.#db.query(INSERT_REFRESH, refreshParams(token));
  }

  async findRefreshToken(tokenHash: string): Promise<RefreshTokenRecord | null> {
    const rows = await this.#db.query('SELECT * FROM refresh_tokens WHERE token_hash = $1', [tokenHash]);
    return rows[0] ? toRefreshToken(rows[0]) : null;
  }

  async findRefreshSession(tokenHash: string): Promise<RefreshSession | null> {
    const r = (await this.#db.query(SELECT_SESSION, [tokenHash]))[0];
    if (!r) return null;
    return { token: toRefreshToken(r), user: toUser({ ...r, id: r.user_id, created_at: r.user_created_at }) };
  }

  async rotateRefreshToken(parentId: string, usedAt: number, successorSealed: string | null, child: NewRefreshToken): Promise<boolean> {
    if (child.parentId !== parentId) throw new TypeError('rotateRefreshToken: child.parentId must be parentId');
    const rows = await this.#db.query(ROTATE_REFRESH, [...refreshParams(child), usedAt, successorSealed]);
    return rows.length === 1;
  }

  async exchangeRefreshToken(
    tokenHash: string,
    now: number,
    child: { id: string; tokenHash: string; idleExpiresAt: number },
    dpopJkt?: string | null,
  ): Promise<{ user: UserRecord; expiresAt: number } | null> {
    const params = [tokenHash, now, child.id, child.tokenHash, child.idleExpiresAt, dpopJkt ?? null];
    const r = (await this.#db.query(EXCHANGE_REFRESH, params))[0];
    return r ? { user: toUser(r), expiresAt: num(r.child_expires_at) } : null;
  }

  async revokeFamily(familyId: string, at: number): Promise<number> {
    const rows = await this.#db.query(
      'UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL RETURNING id',
      [familyId, at],
    );
    return rows.length;
  }

  async revokeAllForUser(userId: string, at: number): Promise<number> {
    const rows = await this.#db.query(
      'UPDATE refresh_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL RETURNING id',
      [userId, at],
    );
    return rows.length;
  }

  async listSigningKeys(now: number): Promise<SigningKeyRecord[]> {
    const rows = await this.#db.query(
      'SELECT * FROM signing_keys WHERE retires_at IS NULL OR retires_at > $1 ORDER BY activates_at, kid',
      [now],
    );
    return rows.map(toSigningKey);
  }

  async ensureSigningKey(k: SigningKeyRecord): Promise<void> {
    await this.#db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [SIGNING_KEY_LOCK_KEY]);
      const current = await tx.query('SELECT kid FROM signing_keys WHERE retires_at IS NULL LIMIT 1');
      if (current.length === 0) await insertSigningKey(tx, k);
    });
  }

  async rotateSigningKey(next: SigningKeyRecord, retiresAt: number): Promise<void> {
    await this.#db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [SIGNING_KEY_LOCK_KEY]);
      await tx.query('UPDATE signing_keys SET retires_at = $1 WHERE retires_at IS NULL', [retiresAt]);
      await insertSigningKey(tx, next);
    });
  }

  async recentLoginFailures(key: string, since: number, limit: number): Promise<number[]> {
    const rows = await this.#db.query(
      'SELECT at FROM login_failures WHERE key = $1 AND at > $2 ORDER BY at DESC LIMIT $3',
      [key, since, limit],
    );
    return rows.map((r) => num(r.at));
  }

  async recordLoginFailure(keys: string[], at: number, forgetBefore: number): Promise<void> {
    await this.#db.query(
      `WITH forgotten AS (DELETE FROM login_failures WHERE at <= $2)
       INSERT INTO login_failures (key, at) SELECT k, $1::bigint FROM unnest($3::text[]) AS k`,
      [at, forgetBefore, keys],
    );
  }

  async clearLoginFailures(key: string): Promise<void> {
    await this.#db.query('DELETE FROM login_failures WHERE key = $1', [key]);
  }

  async claimProofJti(key: string, expiresAt: number, now: number): Promise<boolean> {
    if (now - this.#prunedProofsAt >= PROOF_PRUNE_MS) {
      this.#prunedProofsAt = now;
      await this.#db.query('DELETE FROM dpop_proofs WHERE expires_at <= $1', [now]);
    }
    return (await this.#db.query(CLAIM_PROOF, [key, expiresAt, now])).length === 1;
  }

  async sharedSecret(name: string, candidate: string): Promise<string> {
    const rows = await this.#db.query(
      `WITH added AS (INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING RETURNING value)
       SELECT value FROM added UNION ALL SELECT value FROM server_secrets WHERE name = $1`,
      [name, candidate],
    );
    return str(rows[0]!.value);
  }

  async insertSecurityEvent(e: SecurityEvent): Promise<void> {
    await this.#db.query(
      'INSERT INTO security_events (id, kind, user_id, family_id, detail, created_at) VALUES ($1, $2, $3, $4, $5, $6)',
      [e.id, e.kind, e.userId, e.familyId, JSON.stringify(e.detail), e.createdAt],
    );
  }

  async listSecurityEvents(filter: { userId?: string; familyId?: string } = {}): Promise<SecurityEvent[]> {
    const rows = await this.#db.query(
      `SELECT * FROM security_events WHERE ($1::text IS NULL OR user_id = $1) AND ($2::text IS NULL OR family_id = $2)
       ORDER BY created_at, id`,
      [filter.userId ?? null, filter.familyId ?? null],
    );
    return rows.map((r) => ({
      id: str(r.id),
      kind: str(r.kind),
      userId: strOrNull(r.user_id),
      familyId: strOrNull(r.family_id),
      detail: JSON.parse(str(r.detail)) as Record<string, unknown>,
      createdAt: num(r.created_at),
    }));
  }

  async insertPasswordReset(r: { id: string; tokenHash: string; userId: string; createdAt: number; expiresAt: number }): Promise<void> {
    await this.#db.query(
      'INSERT INTO password_resets (id, token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)',
      [r.id, r.tokenHash, r.userId, r.createdAt, r.expiresAt],
    );
  }

  async consumePasswordReset(tokenHash: string, now: number): Promise<string | null> {
    const rows = await this.#db.query(
      `UPDATE password_resets SET used_at = $2
       WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING user_id`,
      [tokenHash, now],
    );
    return rows[0] ? str(rows[0].user_id) : null;
  }

  async insertOutbox(m: OutboxMessage): Promise<void> {
    await this.#db.query(
      'INSERT INTO outbox (id, kind, recipient, payload, created_at) VALUES ($1, $2, $3, $4, $5)',
      [m.id, m.kind, m.recipient, JSON.stringify(m.payload), m.createdAt],
    );
  }

  async listOutbox(recipient?: string): Promise<OutboxMessage[]> {
    const rows = await this.#db.query(
      'SELECT * FROM outbox WHERE ($1::text IS NULL OR recipient = $1) ORDER BY created_at, id',
      [recipient ?? null],
    );
    return rows.map((r) => ({
      id: str(r.id),
      kind: str(r.kind) as OutboxMessage['kind'],
      recipient: str(r.recipient),
      payload: JSON.parse(str(r.payload)) as Record<string, unknown>,
      createdAt: num(r.created_at),
    }));
  }
}
