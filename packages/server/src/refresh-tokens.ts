import { randomUUID } from 'node:crypto';
import type { ResolvedOptions } from './options.ts';
import type { Stats } from './stats.ts';
import type { RefreshTokenRecord, Store, UserRecord } from './store/types.ts';
import type { TokenSigner } from './tokens.ts';
import { hashToken, newOpaqueToken, seal, unseal } from './crypto-utils.ts';

/** What the token endpoints hand out. */
export interface IssuedTokens {
  accessToken: string;
  /** Access token expiry, seconds since the epoch. */
  accessExp: number;
  refreshToken: string;
  /** When the refresh token stops working (idle or absolute lifetime, whichever is first), ms. */
  refreshExpiresAt: number;
  user: UserRecord;
}

/** Why a refresh token was not exchanged (never shown to the client, which gets `invalid_grant`). */
export type RotationFailure = 'unknown' | 'revoked' | 'expired' | 'reused' | 'wrong_key';
export type RotationResult = { ok: true; tokens: IssuedTokens; replayed: boolean } | { ok: false; reason: RotationFailure };

interface Deps {
  store: Store;
  signer: TokenSigner;
  options: ResolvedOptions;
  stats: Stats;
}

interface SealedPair {
  refreshToken: string;
  accessToken: string;
  accessExp: number;
}

/** Issues, rotates and revokes refresh tokens. Rotation is single use; reuse revokes the family. */
export class RefreshTokens {
  readonly #d: Deps;

  constructor(deps: Deps) {
    this.#d = deps;
  }

  /** Starts a new family for `user` (login), bound to the DPoP key `jkt` when given. */
  async issue(user: UserRecord, jkt: string | null = null): Promise<IssuedTokens> {
    const now = this.#d.options.now();
    const refreshToken = newOpaqueToken();
    const familyId = randomUUID();
    const record = {
      id: randomUUID(),
      tokenHash: hashToken(refreshToken),
      familyId,
      parentId: null,
      userId: user.id,
      createdAt: now,
      idleExpiresAt: now + this.#d.options.refreshIdleTtl * 1000,
      absoluteExpiresAt: now + this.#d.options.refreshAbsoluteTtl * 1000,
      dpopJkt: jkt,
    };
    await this.#d.store.insertRefreshToken(record);
    const access = await this.#d.signer.sign(user.id, user.roles, now, this.#d.options.accessTokenTtl, jkt);
    return { accessToken: access.token, accessExp: access.exp, refreshToken, refreshExpiresAt: expiresAt(record), user };
  }

  /**
   * Exchanges a refresh token for a new pair. `jkt` is the key of the request's DPoP proof: a token bound
   * to a key is exchanged only with a proof of that key (else `wrong_key`, and the token stays usable by
   * its owner); an unbound one is exchanged for a pair bound to `jkt` when given.
   * @remarks Atomic across processes: of N concurrent calls with one token exactly one rotates; the others
   * see a used token and are treated as reuse (or, within `reuseGraceMs`, get the winner's pair).
   */
  async rotate(presented: string, jkt: string | null = null): Promise<RotationResult> {
    const { store, options } = this.#d;
    const tokenHash = hashToken(presented);
    // Without a grace window nothing has to be sealed before the update: one statement does it all.
    if (options.reuseGraceMs === 0) {
      const now = options.now();
      const refreshToken = newOpaqueToken();
      const child = { id: randomUUID(), tokenHash: hashToken(refreshToken), idleExpiresAt: now + options.refreshIdleTtl * 1000 };
      const exchanged = await store.exchangeRefreshToken(tokenHash, now, child, jkt);
      if (exchanged) {
        const { user } = exchanged;
        const access = await this.#d.signer.sign(user.id, user.roles, now, options.accessTokenTtl, jkt);
        return { ok: true, replayed: false, tokens: { accessToken: access.token, accessExp: access.exp, refreshToken, refreshExpiresAt: exchanged.expiresAt, user } };
      }
      // Not exchanged: the lookup below says why (reuse, revoked, expired or unknown).
    }
    let session = await store.findRefreshSession(tokenHash);
    for (let attempt = 0; attempt < 2 && session; attempt++) {
      const { token: record, user } = session;
      const now = options.now();
      // Before reuse: a stolen token shown with the thief's key must neither rotate nor end the owner's session.
      if (record.dpopJkt !== null && record.dpopJkt !== jkt) return this.#wrongKey(record, now);
      if (record.usedAt !== null) return this.#reusedOrGrace(presented, record, now);
      if (record.revokedAt !== null) return { ok: false, reason: 'revoked' };
      if (now >= expiresAt(record)) return { ok: false, reason: 'expired' };

      const refreshToken = newOpaqueToken();
      const child = {
        id: randomUUID(),
        tokenHash: hashToken(refreshToken),
        familyId: record.familyId,
        parentId: record.id,
        userId: record.userId,
        createdAt: now,
        idleExpiresAt: now + options.refreshIdleTtl * 1000,
        absoluteExpiresAt: record.absoluteExpiresAt,
        dpopJkt: record.dpopJkt ?? jkt,
      };
      const access = await this.#d.signer.sign(user.id, user.roles, now, options.accessTokenTtl, child.dpopJkt);
      const pair: SealedPair = { refreshToken, accessToken: access.token, accessExp: access.exp };
      const sealed = options.reuseGraceMs > 0 ? seal(presented, pair) : null;
      if (await store.rotateRefreshToken(record.id, now, sealed, child)) {
        return { ok: true, replayed: false, tokens: { ...pair, refreshExpiresAt: expiresAt(child), user } };
      }
      // Another request rotated (or revoked) this token between our read and our update: look again.
      session = await store.findRefreshSession(tokenHash);
    }
    return { ok: false, reason: session ? 'revoked' : 'unknown' };
  }

  async #wrongKey(record: RefreshTokenRecord, now: number): Promise<RotationResult> {
    const { store, options } = this.#d;
    const detail = { tokenId: record.id, proof: 'missing or from another key' };
    await store.insertSecurityEvent({ id: randomUUID(), kind: 'dpop_key_mismatch', userId: record.userId, familyId: record.familyId, detail, createdAt: now });
    options.logger.warn('security event: refresh token shown without its DPoP key', { userId: record.userId, familyId: record.familyId, tokenId: record.id });
    return { ok: false, reason: 'wrong_key' };
  }

  async #reusedOrGrace(presented: string, record: RefreshTokenRecord, now: number): Promise<RotationResult> {
    const { store, options, stats } = this.#d;
    if (options.reuseGraceMs > 0 && record.successorSealed && record.revokedAt === null && now - record.usedAt! <= options.reuseGraceMs) {
      const pair = unseal(presented, record.successorSealed) as SealedPair | undefined;
      const successor = pair && (await store.findRefreshSession(hashToken(pair.refreshToken)));
      // Only the latest rotation is replayable: once the successor itself was used, this is plain reuse.
      if (pair && successor && successor.token.usedAt === null && successor.token.revokedAt === null) {
        return { ok: true, replayed: true, tokens: { ...pair, refreshExpiresAt: expiresAt(successor.token), user: successor.user } };
      }
    }
    const revoked = await store.revokeFamily(record.familyId, now);
    stats.counters.refresh.reuseDetected++;
    const event = {
      id: randomUUID(),
      kind: 'refresh_token_reuse',
      userId: record.userId,
      familyId: record.familyId,
      detail: { tokenId: record.id, usedAt: record.usedAt, revokedTokens: revoked },
      createdAt: now,
    };
    await store.insertSecurityEvent(event);
    options.logger.warn('security event: refresh token reuse, family revoked', {
      userId: record.userId,
      familyId: record.familyId,
      tokenId: record.id,
      revokedTokens: revoked,
    });
    return { ok: false, reason: 'reused' };
  }

  /**
   * Revokes the family of `presented` (logout). Unknown tokens are ignored. A token bound to a DPoP key
   * is revoked only when `jkt` (the key of the request's proof) is that key: resolves false otherwise.
   */
  async revoke(presented: string, jkt: string | null = null): Promise<boolean> {
    const record = await this.#d.store.findRefreshToken(hashToken(presented));
    if (record?.dpopJkt && record.dpopJkt !== jkt) return false;
    if (record) await this.#d.store.revokeFamily(record.familyId, this.#d.options.now());
    return true;
  }
}

function expiresAt(t: { idleExpiresAt: number; absoluteExpiresAt: number }): number {
  return Math.min(t.idleExpiresAt, t.absoluteExpiresAt);
}
