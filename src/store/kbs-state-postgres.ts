import type pg from 'pg';
import { toGrant, toSession, toTokenKeys } from './kbs-state-rows.js';
import type {
  CreateSessionResult,
  KbsGrantRow,
  KbsSessionLimits,
  KbsSessionRow,
  KbsStateStore,
  KbsTokenKeysRow,
} from './kbs-state-types.js';
import { buf } from './rows.js';

type Row = Record<string, unknown>;
type Queryable = Pick<pg.PoolClient, 'query'>;

/** First key of the two-key advisory lock a source's session creation holds (any constant: "kbss"). */
const SOURCE_LOCK = 0x6b627373;

const one = async (q: Queryable, sql: string, params: unknown[] = []): Promise<Row | undefined> =>
  (await q.query(sql, params)).rows[0] as Row | undefined;

const count = async (q: Queryable, sql: string, params: unknown[] = []): Promise<number> =>
  Number((await one(q, sql, params))?.n ?? 0);

/**
 * The KBS's state on PostgreSQL (see kbs-state-types.ts). Sessions and grants are written on `fast`, the
 * store's challenge pool, whose sessions commit with `synchronous_commit = off` (postgres.ts
 * challengePool): visible to every replica at once, durable with the next synchronous commit. Safe for the
 * same reason as challenges: nothing is released on the strength of these rows alone (the release and its
 * audit entry commit synchronously before the grant is written), and a row lost in a crash only means the
 * client authenticates or attests again (`kbs.session.unknown`, `grant-gone`). The token keys are written on
 * `pool` (synchronous): a key that signs is never lost.
 */
export class PostgresKbsState implements KbsStateStore {
  constructor(
    private readonly pool: pg.Pool,
    private readonly fast: pg.Pool = pool,
  ) {}

  async createSession(
    row: Omit<KbsSessionRow, 'phase' | 'tokenWrapped' | 'kekId'>,
    limits: KbsSessionLimits,
  ): Promise<CreateSessionResult> {
    const c = await this.fast.connect();
    let broken = false;
    try {
      await c.query('BEGIN');
      try {
        const r = await createIn(c, row, limits);
        await c.query(r === 'created' ? 'COMMIT' : 'ROLLBACK');
        return r;
      } catch (e) {
        await c.query('ROLLBACK').catch(() => {
          broken = true;
        });
        throw e;
      }
    } finally {
      c.release(broken);
    }
  }

  async getSession(idDigest: Uint8Array): Promise<KbsSessionRow | undefined> {
    const r = await one(
      this.pool,
      `SELECT id_digest, source, tee, nonce, phase, token_wrapped, kek_id, created_at, expires_at
       FROM kbs_sessions WHERE id_digest = $1`,
      [buf(idDigest)],
    );
    return r && toSession(r);
  }

  async attestSession(idDigest: Uint8Array, tokenWrapped: Uint8Array, kekId: string, now: number) {
    // One statement: of two replicas attesting one session, the second waits for the first's row lock,
    // then re-checks the WHERE against the new row (phase is attested) and updates nothing.
    const r = await this.fast.query(
      `UPDATE kbs_sessions SET phase = 'attested', token_wrapped = $2, kek_id = $3
       WHERE id_digest = $1 AND phase = 'authed' AND expires_at > $4`,
      [buf(idDigest), buf(tokenWrapped), kekId, now],
    );
    return r.rowCount === 1;
  }

  async purgeSessions(before: number): Promise<number> {
    return (await this.fast.query('DELETE FROM kbs_sessions WHERE expires_at < $1', [before])).rowCount ?? 0;
  }

  async insertGrant(g: KbsGrantRow): Promise<void> {
    await this.fast.query(
      'INSERT INTO kbs_grants (grant_id, instance_id, wrapped, kek_id, expires_at) VALUES ($1, $2, $3, $4, $5)',
      [g.grantId, g.instanceId, buf(g.wrapped), g.kekId, g.expiresAt],
    );
  }

  async getGrant(grantId: string): Promise<KbsGrantRow | undefined> {
    const r = await one(
      this.pool,
      'SELECT grant_id, instance_id, wrapped, kek_id, expires_at FROM kbs_grants WHERE grant_id = $1',
      [grantId],
    );
    return r && toGrant(r);
  }

  async purgeGrants(before: number): Promise<number> {
    return (await this.fast.query('DELETE FROM kbs_grants WHERE expires_at < $1', [before])).rowCount ?? 0;
  }

  async readTokenKeys(): Promise<KbsTokenKeysRow | undefined> {
    const r = await one(this.pool, 'SELECT generation, wrapped, kek_id FROM kbs_token_keys WHERE id = 1');
    return r && toTokenKeys(r);
  }

  async writeTokenKeys(k: KbsTokenKeysRow, now: number): Promise<boolean> {
    // The pool's sessions commit synchronously: the row is on disk when this resolves.
    const r =
      k.generation === 1
        ? await this.pool.query(
            `INSERT INTO kbs_token_keys (id, generation, wrapped, kek_id, updated_at) VALUES (1, 1, $1, $2, $3)
             ON CONFLICT DO NOTHING`,
            [buf(k.wrapped), k.kekId, now],
          )
        : await this.pool.query(
            `UPDATE kbs_token_keys SET generation = $1, wrapped = $2, kek_id = $3, updated_at = $4
             WHERE id = 1 AND generation = $5`,
            [k.generation, buf(k.wrapped), k.kekId, now, k.generation - 1],
          );
    return r.rowCount === 1;
  }
}

async function createIn(
  c: Queryable,
  row: Omit<KbsSessionRow, 'phase' | 'tokenWrapped' | 'kekId'>,
  limits: KbsSessionLimits,
): Promise<CreateSessionResult> {
  // The source's sessions are counted and trimmed by one replica at a time (held to COMMIT).
  await c.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [SOURCE_LOCK, row.source]);
  const oldestPendingOf = `DELETE FROM kbs_sessions WHERE id_digest = (SELECT id_digest FROM kbs_sessions
    WHERE source = $1 AND phase = 'authed' ORDER BY created_at, id_digest LIMIT 1)`;
  const pending = await count(
    c,
    `SELECT count(*) AS n FROM kbs_sessions WHERE source = $1 AND phase = 'authed'`,
    [row.source],
  );
  if (pending >= limits.maxPendingPerSource) await c.query(oldestPendingOf, [row.source]);
  const total = () => count(c, 'SELECT count(*) AS n FROM kbs_sessions');
  if ((await total()) >= limits.maxSessions) {
    await c.query('DELETE FROM kbs_sessions WHERE expires_at <= $1', [limits.now]);
    if ((await total()) >= limits.maxSessions) {
      const heaviest = await one(
        c,
        `SELECT source FROM kbs_sessions WHERE phase = 'authed' GROUP BY source
         ORDER BY count(*) DESC, (source = $1) DESC LIMIT 1`,
        [row.source],
      );
      if (heaviest) await c.query(oldestPendingOf, [heaviest.source]);
      if ((await total()) >= limits.maxSessions) return 'full';
    }
  }
  await c.query(
    `INSERT INTO kbs_sessions (id_digest, source, tee, nonce, phase, created_at, expires_at)
     VALUES ($1, $2, $3, $4, 'authed', $5, $6)`,
    [buf(row.idDigest), row.source, row.tee, row.nonce, row.createdAt, row.expiresAt],
  );
  return 'created';
}
