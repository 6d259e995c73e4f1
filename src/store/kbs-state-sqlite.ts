import type Database from 'better-sqlite3';
import { toGrant, toSession, toTokenKeys } from './kbs-state-rows.js';
import type {
  CreateSessionResult,
  KbsGrantRow,
  KbsSessionLimits,
  KbsSessionRow,
  KbsStateStore,
  KbsTokenKeysRow,
} from './kbs-state-types.js';
import type { Mutex } from './mutex.js';
import { buf } from './rows.js';
import { prepared } from './sqlite-statements.js';

type Row = Record<string, unknown>;

/**
 * The KBS's state on SQLite (see kbs-state-types.ts), on the store's one connection: every call queues on
 * the store's mutex (a statement run while another call's transaction is open would join it). Several
 * processes on one file are kept apart by SQLite's write lock: session creation runs in BEGIN IMMEDIATE,
 * and the one-statement updates are atomic on their own.
 */
export class SqliteKbsState implements KbsStateStore {
  constructor(
    private readonly db: Database.Database,
    private readonly mutex: Mutex,
    /** Resolves once the WAL is flushed (wal-sync.ts); the token keys wait for it. */
    private readonly flush: () => Promise<void>,
  ) {}

  private run<T>(fn: () => T): Promise<T> {
    return this.mutex.run(fn);
  }

  createSession(
    row: Omit<KbsSessionRow, 'phase' | 'tokenWrapped' | 'kekId'>,
    limits: KbsSessionLimits,
  ): Promise<CreateSessionResult> {
    return this.run(() => {
      const db = this.db;
      const n = (sql: string, ...p: unknown[]) => Number((prepared(db, sql).get(...p) as Row).n);
      const dropOldestPending = (source: unknown) =>
        prepared(
          db,
          `DELETE FROM kbs_sessions WHERE id_digest = (SELECT id_digest FROM kbs_sessions
             WHERE source = ? AND phase = 'authed' ORDER BY created_at, rowid LIMIT 1)`,
        ).run(source);
      const total = () => n('SELECT count(*) AS n FROM kbs_sessions');
      db.exec('BEGIN IMMEDIATE');
      try {
        const pending = n(
          `SELECT count(*) AS n FROM kbs_sessions WHERE source = ? AND phase = 'authed'`,
          row.source,
        );
        if (pending >= limits.maxPendingPerSource) dropOldestPending(row.source);
        if (total() >= limits.maxSessions) {
          prepared(db, 'DELETE FROM kbs_sessions WHERE expires_at <= ?').run(limits.now);
          if (total() >= limits.maxSessions) {
            const heaviest = prepared(
              db,
              `SELECT source FROM kbs_sessions WHERE phase = 'authed' GROUP BY source
                 ORDER BY count(*) DESC, (source = ?) DESC LIMIT 1`,
            ).get(row.source) as Row | undefined;
            if (heaviest) dropOldestPending(heaviest.source);
            if (total() >= limits.maxSessions) {
              db.exec('ROLLBACK');
              return 'full';
            }
          }
        }
        prepared(
          db,
          `INSERT INTO kbs_sessions (id_digest, source, tee, nonce, phase, created_at, expires_at)
           VALUES (?, ?, ?, ?, 'authed', ?, ?)`,
        ).run(buf(row.idDigest), row.source, row.tee, row.nonce, row.createdAt, row.expiresAt);
        db.exec('COMMIT');
        return 'created';
      } catch (e) {
        if (db.inTransaction) db.exec('ROLLBACK');
        throw e;
      }
    });
  }

  getSession(idDigest: Uint8Array): Promise<KbsSessionRow | undefined> {
    return this.run(() => {
      const r = prepared(
        this.db,
        `SELECT id_digest, source, tee, nonce, phase, token_wrapped, kek_id, created_at, expires_at
           FROM kbs_sessions WHERE id_digest = ?`,
      ).get(buf(idDigest)) as Row | undefined;
      return r && toSession(r);
    });
  }

  attestSession(idDigest: Uint8Array, tokenWrapped: Uint8Array, kekId: string, now: number) {
    return this.run(
      () =>
        prepared(
          this.db,
          `UPDATE kbs_sessions SET phase = 'attested', token_wrapped = ?, kek_id = ?
             WHERE id_digest = ? AND phase = 'authed' AND expires_at > ?`,
        ).run(buf(tokenWrapped), kekId, buf(idDigest), now).changes === 1,
    );
  }

  purgeSessions(before: number): Promise<number> {
    return this.run(
      () => prepared(this.db, 'DELETE FROM kbs_sessions WHERE expires_at < ?').run(before).changes,
    );
  }

  insertGrant(g: KbsGrantRow): Promise<void> {
    return this.run(() => {
      prepared(
        this.db,
        'INSERT INTO kbs_grants (grant_id, instance_id, wrapped, kek_id, expires_at) VALUES (?, ?, ?, ?, ?)',
      ).run(g.grantId, g.instanceId, buf(g.wrapped), g.kekId, g.expiresAt);
    });
  }

  getGrant(grantId: string): Promise<KbsGrantRow | undefined> {
    return this.run(() => {
      const r = prepared(
        this.db,
        'SELECT grant_id, instance_id, wrapped, kek_id, expires_at FROM kbs_grants WHERE grant_id = ?',
      ).get(grantId) as Row | undefined;
      return r && toGrant(r);
    });
  }

  purgeGrants(before: number): Promise<number> {
    return this.run(
      () => prepared(this.db, 'DELETE FROM kbs_grants WHERE expires_at < ?').run(before).changes,
    );
  }

  readTokenKeys(): Promise<KbsTokenKeysRow | undefined> {
    return this.run(() => {
      const r = prepared(
        this.db,
        'SELECT generation, wrapped, kek_id FROM kbs_token_keys WHERE id = 1',
      ).get() as Row | undefined;
      return r && toTokenKeys(r);
    });
  }

  async writeTokenKeys(k: KbsTokenKeysRow, now: number): Promise<boolean> {
    const wrote = await this.run(() =>
      k.generation === 1
        ? prepared(
            this.db,
            `INSERT INTO kbs_token_keys (id, generation, wrapped, kek_id, updated_at) VALUES (1, 1, ?, ?, ?)
               ON CONFLICT DO NOTHING`,
          ).run(buf(k.wrapped), k.kekId, now).changes === 1
        : prepared(
            this.db,
            `UPDATE kbs_token_keys SET generation = ?, wrapped = ?, kek_id = ?, updated_at = ?
               WHERE id = 1 AND generation = ?`,
          ).run(k.generation, buf(k.wrapped), k.kekId, now, k.generation - 1).changes === 1,
    );
    // synchronous = NORMAL leaves the commit unflushed: a signing key must survive power loss.
    if (wrote) await this.flush();
    return wrote;
  }
}
