/**
 * The KBS's state in the store (migration 7, kbs-migration.ts): RCAR sessions, released keys held for
 * resource reads (grants) and the token signing keys, on either engine, so that broker replicas sharing one
 * database are interchangeable. The store holds only ciphertext for secrets (the KBS encrypts under the KEK
 * before it calls here) and digests for the session ids. Times are the caller's, in ms.
 *
 * Every "once" is decided by the database in one statement, never by a read followed by a write in the
 * process: a session becomes attested by `UPDATE ... WHERE phase = 'authed'` (of two replicas attesting the
 * same session, one updates the row and the other sees 0 rows), and the token keys move by
 * `UPDATE ... WHERE generation = <the one read>`.
 */

export type KbsSessionPhase = 'authed' | 'attested';

export interface KbsSessionRow {
  /** SHA-256 of the session id (the cookie value). */
  readonly idDigest: Uint8Array;
  /** The client's address as the KBS counts it (client-source.ts). */
  readonly source: string;
  /** The TEE /auth named. */
  readonly tee: string;
  /** The challenge, base64 (what /auth sent; not secret). */
  readonly nonce: string;
  readonly phase: KbsSessionPhase;
  /** The attested session's token, encrypted under the KEK; null while `authed`. */
  readonly tokenWrapped: Uint8Array | null;
  readonly kekId: string | null;
  readonly createdAt: number;
  readonly expiresAt: number;
}

export interface KbsSessionLimits {
  /** Sessions held at once, all sources together. */
  readonly maxSessions: number;
  /** Pending (`authed`) sessions one source may hold. */
  readonly maxPendingPerSource: number;
  /**
   * The time now: at the limit, sessions expired by then (`expiresAt <= now`) are deleted first; they would
   * only have answered "expired" rather than "unknown".
   */
  readonly now: number;
}

/** What {@link KbsStateStore.createSession} did. */
export type CreateSessionResult = 'created' | 'full';

export interface KbsGrantRow {
  readonly grantId: string;
  readonly instanceId: string;
  /** The released sealing key, encrypted under the KEK. */
  readonly wrapped: Uint8Array;
  readonly kekId: string;
  readonly expiresAt: number;
}

export interface KbsTokenKeysRow {
  /** 1 for the first ring written; each rotation adds one. */
  readonly generation: number;
  /** The key ring (token-keys.ts encoding), encrypted under the KEK. */
  readonly wrapped: Uint8Array;
  readonly kekId: string;
}

export interface KbsStateStore {
  /**
   * Inserts an `authed` session, within the limits: a source at `maxPendingPerSource` loses its own oldest
   * pending session; when `maxSessions` are held, the oldest pending session of the source holding the most
   * pending ones goes (the caller's own on a tie). 'full' only when every session held is attested.
   * The per-source count is exact across replicas (the source's sessions are locked while counting); the
   * total is a bound that concurrent creations on several replicas may pass by at most their number.
   */
  createSession(
    row: Omit<KbsSessionRow, 'phase' | 'tokenWrapped' | 'kekId'>,
    limits: KbsSessionLimits,
  ): Promise<CreateSessionResult>;
  getSession(idDigest: Uint8Array): Promise<KbsSessionRow | undefined>;
  /**
   * `authed` -> `attested` with its token, in one conditional statement: true for exactly one caller per
   * session, false when the session is gone, already attested or expired at `now`.
   */
  attestSession(idDigest: Uint8Array, tokenWrapped: Uint8Array, kekId: string, now: number): Promise<boolean>;
  /** Deletes sessions that expired before `before`; returns how many. */
  purgeSessions(before: number): Promise<number>;

  insertGrant(row: KbsGrantRow): Promise<void>;
  /** The grant, expired or not (the caller compares the time), or undefined. */
  getGrant(grantId: string): Promise<KbsGrantRow | undefined>;
  /** Deletes grants that expired before `before`; returns how many. */
  purgeGrants(before: number): Promise<number>;

  /** The token key ring, or undefined before the first replica wrote it. */
  readTokenKeys(): Promise<KbsTokenKeysRow | undefined>;
  /**
   * Writes the ring as generation `generation`: the first ring when `generation` is 1 (only if there is
   * none), else only over generation `generation - 1`. False when another writer got there first (read it
   * again). Flushed before it resolves: a key that signs is never lost in a crash.
   */
  writeTokenKeys(row: KbsTokenKeysRow, now: number): Promise<boolean>;
}
