import pg from 'pg';
import { linkAuditEntry } from './audit-hash.js';
import { decodeAuditHead } from './audit-row.js';
import { CREDENTIAL_COLUMNS, credentialValues, toCredential } from './credential-rows.js';
import { PostgresKbsState } from './kbs-state-postgres.js';
import type { KbsStateStore } from './kbs-state-types.js';
import { type Migration, POSTGRES_MIGRATIONS } from './migrations.js';
import { type MemberTx, PgGroupCommit } from './pg-group-commit.js';
import type { MemberConnection } from './pg-member-connection.js';
import {
  AUDIT_COLUMNS,
  auditValues,
  buf,
  INSTANCE_COLUMNS,
  KEY_COLUMNS,
  num,
  toAudit,
  toInstance,
  toKey,
} from './rows.js';
import type {
  AuditDraft,
  AuditEntry,
  AuditHead,
  AuditWith,
  BootState,
  CredentialRecord,
  InsertInstanceResult,
  InstanceRecord,
  InstanceWithState,
  JsonValue,
  LockedInstance,
  LockOptions,
  NewLaunchPolicy,
  RegistryTee,
  SealingKeyRecord,
  Store,
  StoreTx,
} from './types.js';
import { typedStoreErrors } from './unavailable.js';

export interface PostgresStoreOptions {
  readonly connectionString: string;
  /** Pool size (default 10). */
  readonly max?: number;
}

type Row = Record<string, unknown>;
type Queryable = Pick<pg.PoolClient, 'query'>;

/** Key of the session advisory lock held while migrating (any constant; "vouchsafe" in ASCII, truncated). */
const MIGRATION_LOCK = 0x766f7563;

/**
 * Opens the PostgreSQL store on a connection pool, applying pending migrations under an advisory lock so
 * that several broker replicas starting together migrate once.
 */
export async function openPostgresStore(opts: PostgresStoreOptions): Promise<Store> {
  // Pipeline mode lets a group-commit batch send a statement before the one ahead of it is answered
  // (pg-member-connection.ts). Code that awaits each query, as the rest of the store does, is unaffected.
  const pool = new pg.Pool({ connectionString: opts.connectionString, max: opts.max ?? 10, pipeline: true });
  // An idle client that errors (server restart) must not crash the process; the next query reconnects.
  pool.on('error', () => {});
  try {
    await migrate(pool, POSTGRES_MIGRATIONS);
  } catch (e) {
    await pool.end();
    throw e;
  }
  return typedStoreErrors(new PostgresStore(pool, challengePool(opts.connectionString)));
}

/**
 * A small pool for challenge writes, whose sessions commit with `synchronous_commit = off`: the commit does
 * not wait for its WAL record to be flushed. Safe for the same reason as SQLite's challenge writes (see
 * sqlite.ts): nothing is released on the strength of a challenge write alone, and the release, or the
 * refusal's audit entry, commits synchronously later, which flushes the WAL up to its own commit record and
 * so every record written before it, the challenge's included (the WAL is one sequence). A challenge write
 * lost in a crash only means the guest asks for a new challenge, or the consume is redone before anything
 * was decided. This takes two of the three WAL flushes a release waited for off its path.
 */
function challengePool(connectionString: string): pg.Pool {
  const pool = new pg.Pool({ connectionString: challengeConnectionString(connectionString), max: 4 });
  pool.on('error', () => {});
  return pool;
}

/**
 * The challenge pool's connection string: the store's, with `-c synchronous_commit=off` added to its
 * `options` (the session's startup parameters, after any already there, such as a search_path). Set at
 * connect time rather than by a SET on each new session, which would race the pool's first query on it.
 * A string that is not a URL is returned unchanged: those sessions then commit synchronously (slower,
 * never less durable).
 */
export function challengeConnectionString(connectionString: string): string {
  let url: URL;
  try {
    url = new URL(connectionString);
  } catch {
    return connectionString;
  }
  const options = url.searchParams.get('options');
  url.searchParams.set('options', `${options ? `${options} ` : ''}-c synchronous_commit=off`);
  return url.toString();
}

async function migrate(pool: pg.Pool, migrations: readonly Migration[]): Promise<void> {
  const c = await pool.connect();
  try {
    await c.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    try {
      await c.query(
        'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)',
      );
      const done = new Set(
        (await c.query('SELECT version FROM schema_migrations')).rows.map((r: Row) => num(r.version)),
      );
      // In version order whatever the list order, skipping applied ones: numbers may have gaps.
      for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
        if (done.has(m.version)) continue;
        await c.query('BEGIN');
        try {
          await c.query(m.sql);
          await c.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [
            m.version,
            m.name,
            Date.now(),
          ]);
          await c.query('COMMIT');
        } catch (e) {
          await c.query('ROLLBACK');
          throw e;
        }
      }
    } finally {
      await c.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]);
    }
  } finally {
    c.release();
  }
}

/**
 * A statement on a release's path, prepared once per connection under `name` (pg's named statements): the
 * server parses and plans it once per session instead of at every execution.
 */
interface Prepared {
  readonly name: string;
  readonly text: string;
}

const prepared = (name: string, text: string): Prepared => ({ name, text });

async function one(q: Queryable, sql: string | Prepared, params: unknown[] = []): Promise<Row | undefined> {
  const r = typeof sql === 'string' ? await q.query(sql, params) : await q.query({ ...sql, values: params });
  return r.rows[0] as Row | undefined;
}

async function exec(q: Queryable, sql: Prepared, params: unknown[]): Promise<pg.QueryResult> {
  return q.query({ ...sql, values: params });
}

/** An instance's newest sealing key, its columns renamed apart from the instance's (none: all null). */
const LATEST_KEY_JOIN = `LEFT JOIN LATERAL (
  SELECT version AS key_version, wrapped AS key_wrapped, kek_id AS key_kek_id, created_at AS key_created_at
  FROM sealing_keys WHERE instance_id = instances.id ORDER BY version DESC LIMIT 1) k ON true`;
const LATEST_KEY_COLUMNS = 'k.key_version, k.key_wrapped, k.key_kek_id, k.key_created_at';

/**
 * An instance statement that also locks and reads the audit head, after the instance row: rows are locked in
 * the order FOR UPDATE OF names their tables, so the one lock order every transaction keeps (instance, then
 * head; see appendAudit) holds. `join` may add more tables after the head; `where` is on `instances`.
 */
const withAuditHead = (extraColumns: string, join: string, where: string) =>
  `SELECT ${INSTANCE_COLUMNS.split(', ')
    .map((c) => `instances.${c}`)
    .join(', ')}${extraColumns}, audit_head.seq AS head_seq, audit_head.hash AS head_hash
   FROM instances CROSS JOIN audit_head ${join}
   WHERE ${where} AND audit_head.id = 1 FOR UPDATE OF instances, audit_head`;

/** An instance by its registry TEE's identity value ($1) and that TEE ($2): unique (host_data is). */
const BY_IDENTITY = 'instances.host_data = $1 AND instances.tee = $2';

/** The release and commit paths' statements (every other statement is parsed per execution). */
const SQL = {
  insertChallenge: prepared(
    'vs_insert_challenge',
    'INSERT INTO challenges (digest, expires_at) VALUES ($1, $2)',
  ),
  consumeChallenge: prepared(
    'vs_consume_challenge',
    'DELETE FROM challenges WHERE digest = $1 RETURNING expires_at',
  ),
  instanceByIdentity: prepared(
    'vs_instance_by_identity',
    `SELECT ${INSTANCE_COLUMNS} FROM instances WHERE ${BY_IDENTITY}`,
  ),
  lockInstance: prepared(
    'vs_lock_instance',
    `SELECT ${INSTANCE_COLUMNS} FROM instances WHERE id = $1 FOR UPDATE`,
  ),
  lockInstanceByBoot: prepared(
    'vs_lock_instance_by_boot',
    `SELECT ${INSTANCE_COLUMNS} FROM instances WHERE boot_id = $1 FOR UPDATE`,
  ),
  lockInstanceByBootAndHead: prepared(
    'vs_lock_instance_by_boot_and_head',
    withAuditHead('', '', 'instances.boot_id = $1'),
  ),
  setBootState: prepared(
    'vs_set_boot_state',
    `UPDATE instances SET committed_counter = $1, boot_id = $2, boot_started_at = $3,
     boot_lease_expires_at = $4, boot_token_hash = $5, committed_digest = $7, boot_launch_id = $8
     WHERE id = $6`,
  ),
  latestKey: prepared(
    'vs_latest_key',
    `SELECT ${KEY_COLUMNS} FROM sealing_keys WHERE instance_id = $1 ORDER BY version DESC LIMIT 1`,
  ),
  // A release's instance, found by its identity value, locked (FOR UPDATE OF: not the key row), with its
  // newest key if any, in one round trip.
  lockInstanceByIdentityWithLatestKey: prepared(
    'vs_lock_instance_by_identity_with_latest_key',
    `SELECT ${INSTANCE_COLUMNS}, ${LATEST_KEY_COLUMNS} FROM instances ${LATEST_KEY_JOIN}
     WHERE ${BY_IDENTITY} FOR UPDATE OF instances`,
  ),
  lockInstanceByIdentityWithLatestKeyAndHead: prepared(
    'vs_lock_instance_by_identity_with_latest_key_and_head',
    withAuditHead(`, ${LATEST_KEY_COLUMNS}`, LATEST_KEY_JOIN, BY_IDENTITY),
  ),
  lockAuditHead: prepared('vs_lock_audit_head', 'SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE'),
  // One round trip for the entry and the head it becomes (a data-modifying CTE runs exactly once).
  appendAudit: prepared(
    'vs_append_audit',
    `WITH entry AS (INSERT INTO audit_log (${AUDIT_COLUMNS})
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING seq, hash)
     UPDATE audit_head SET seq = entry.seq, hash = entry.hash FROM entry WHERE audit_head.id = 1`,
  ),
  // A decision's writes in one round trip: the boot state ($11-$18, as setBootState's $1-$8), the entry and
  // its head. Every data-modifying CTE runs exactly once, whether or not the outer statement reads it.
  appendAuditWithBootState: prepared(
    'vs_append_audit_with_boot_state',
    `WITH boot AS (UPDATE instances SET committed_counter = $11, boot_id = $12, boot_started_at = $13,
       boot_lease_expires_at = $14, boot_token_hash = $15, committed_digest = $17, boot_launch_id = $18
       WHERE id = $16),
     entry AS (INSERT INTO audit_log (${AUDIT_COLUMNS})
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING seq, hash)
     UPDATE audit_head SET seq = entry.seq, hash = entry.hash FROM entry WHERE audit_head.id = 1`,
  ),
} as const;

/** setBootState's parameters, in the order of its statement's $1-$8. */
function bootStateValues(id: string, s: BootState): unknown[] {
  const b = s.activeBoot;
  return [
    s.committedCounter,
    b?.bootId ?? null,
    b?.startedAt ?? null,
    b?.leaseExpiresAt ?? null,
    b ? buf(b.tokenHash) : null,
    id,
    s.committedDigest ? buf(s.committedDigest) : null,
    b?.launchId ? buf(b.launchId) : null,
  ];
}

async function all(q: Queryable, sql: string, params: unknown[] = []): Promise<Row[]> {
  return (await q.query(sql, params)).rows as Row[];
}

class PostgresStore implements Store {
  readonly engine = 'postgres' as const;

  constructor(
    private readonly pool: pg.Pool,
    /** Challenge writes only (see {@link challengePool}). */
    private readonly challenges: pg.Pool,
  ) {
    this.group = new PgGroupCommit(
      pool,
      (c, shared) => new PostgresTx(c, shared),
      () => ({}),
    );
  }

  private readonly group: PgGroupCommit<TxShared>;

  async insertChallenge(digest: Uint8Array, expiresAt: number): Promise<void> {
    await exec(this.challenges, SQL.insertChallenge, [buf(digest), expiresAt]);
  }

  async consumeChallenge(digest: Uint8Array): Promise<{ expiresAt: number } | undefined> {
    // A concurrent DELETE of the same row waits for the first to commit and then finds nothing.
    const r = await one(this.challenges, SQL.consumeChallenge, [buf(digest)]);
    return r ? { expiresAt: num(r.expires_at) } : undefined;
  }

  async purgeChallenges(before: number): Promise<number> {
    return (await this.pool.query('DELETE FROM challenges WHERE expires_at < $1', [before])).rowCount ?? 0;
  }

  async getInstance(id: string): Promise<InstanceWithState | undefined> {
    const r = await one(this.pool, `SELECT ${INSTANCE_COLUMNS} FROM instances WHERE id = $1`, [id]);
    return r && toInstance(r);
  }

  async findInstanceByIdentity(tee: RegistryTee, value: Uint8Array): Promise<InstanceWithState | undefined> {
    const r = await one(this.pool, SQL.instanceByIdentity, [buf(value), tee]);
    return r && toInstance(r);
  }

  async listInstances(): Promise<InstanceWithState[]> {
    return (await all(this.pool, `SELECT ${INSTANCE_COLUMNS} FROM instances ORDER BY created_at, id`)).map(
      toInstance,
    );
  }

  async listKeys(instanceId: string): Promise<SealingKeyRecord[]> {
    return (
      await all(
        this.pool,
        `SELECT ${KEY_COLUMNS} FROM sealing_keys WHERE instance_id = $1 ORDER BY version`,
        [instanceId],
      )
    ).map(toKey);
  }

  async readAudit(afterSeq: number, limit: number): Promise<AuditEntry[]> {
    return (
      await all(this.pool, `SELECT ${AUDIT_COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2`, [
        afterSeq,
        limit,
      ])
    ).map(toAudit);
  }

  async auditHead(): Promise<AuditHead> {
    const r = await one(this.pool, 'SELECT seq, hash FROM audit_head WHERE id = 1');
    return decodeAuditHead(r);
  }

  async getCredential(id: string): Promise<CredentialRecord | undefined> {
    const r = await one(this.pool, `SELECT ${CREDENTIAL_COLUMNS} FROM credentials WHERE id = $1`, [id]);
    return r && toCredential(r);
  }

  async listCredentials(): Promise<CredentialRecord[]> {
    return (
      await all(this.pool, `SELECT ${CREDENTIAL_COLUMNS} FROM credentials ORDER BY created_at, id`)
    ).map(toCredential);
  }

  /**
   * Transactions asked for while one is committing share the next COMMIT, each under its own savepoint
   * (pg-group-commit.ts): one WAL flush and one hold of the audit head per group instead of per decision.
   */
  transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    return this.group.run(fn);
  }

  private kbs: KbsStateStore | undefined;

  kbsState(): KbsStateStore {
    this.kbs ??= typedStoreErrors(new PostgresKbsState(this.pool, this.challenges));
    return this.kbs;
  }

  /** Transactions asked for and not yet settled (tests wait on it: only a batch's first waits in the server). */
  get pendingTransactions(): number {
    return this.group.pending;
  }

  async close(): Promise<void> {
    await Promise.all([this.pool.end(), this.challenges.end()]);
  }
}

/**
 * What the members of one PostgreSQL transaction (a group-commit batch) share: the audit head once a member
 * that locked it (SELECT ... FOR UPDATE) and appended was kept. The row stays locked by this transaction until
 * COMMIT, so no other transaction can move it, and the members after that one link their entries to it
 * without locking and reading it again (one round trip fewer per decision in a batch).
 */
interface TxShared {
  auditHead?: { readonly seq: number; readonly hash: string };
}

class PostgresTx implements MemberTx {
  /** The head after this member's own latest append (shared only once the member is kept). */
  private appended: { readonly seq: number; readonly hash: string } | undefined;
  /** The head as this member locked it with its instance (a lock statement with the head), before any append. */
  private lockedHead: { readonly seq: number; readonly hash: string } | undefined;

  constructor(
    private readonly c: MemberConnection,
    private readonly shared: TxShared = {},
  ) {}

  kept(): void {
    if (this.appended) this.shared.auditHead = this.appended;
  }

  private async row(sql: string | Prepared, params: unknown[] = []): Promise<Row | undefined> {
    return (await this.c.read(sql, params)).rows[0] as Row | undefined;
  }

  async insertInstance(rec: InstanceRecord): Promise<InsertInstanceResult> {
    // ON CONFLICT DO NOTHING: a unique violation would abort the whole transaction.
    const r = await this.c.write(
      `INSERT INTO instances (id, project, zone, instance_id, instance_name, host_data, policy, created_at,
       new_launch, tee) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING`,
      [
        rec.id,
        rec.project,
        rec.zone,
        rec.instanceId,
        rec.instanceName,
        buf(rec.hostData),
        JSON.stringify(rec.policy),
        rec.createdAt,
        rec.newLaunch ?? 'takeover',
        rec.tee ?? 'snp',
      ],
    );
    if (r.rowCount === 1) return 'inserted';
    const clash = await this.row('SELECT 1 FROM instances WHERE host_data = $1', [buf(rec.hostData)]);
    return clash ? 'duplicate_host_data' : 'duplicate_identity';
  }

  async lockInstance(id: string): Promise<InstanceWithState | undefined> {
    const r = await this.row(SQL.lockInstance, [id]);
    return r && toInstance(r);
  }

  async lockInstanceByBoot(bootId: string, o: LockOptions = {}): Promise<InstanceWithState | undefined> {
    const r = await this.lockRow(
      SQL.lockInstanceByBoot,
      SQL.lockInstanceByBootAndHead,
      [bootId],
      o.auditHead,
    );
    // The row may have changed while we waited for its lock; FOR UPDATE returns the new version, which
    // must still carry this boot id.
    return r && r.boot_id === bootId ? toInstance(r) : undefined;
  }

  /**
   * Locks one instance row with `plain`, or, when the caller will append (`appends`) and this transaction
   * does not hold the audit head yet, with `headed`, which also locks and reads the head: appendAudit then
   * links to it without a round trip of its own.
   */
  private async lockRow(
    plain: Prepared,
    headed: Prepared,
    params: unknown[],
    appends: boolean | undefined,
  ): Promise<Row | undefined> {
    const withHead = appends === true && !this.appended && !this.lockedHead && !this.shared.auditHead;
    const r = await this.row(withHead ? headed : plain, params);
    if (r && withHead) this.lockedHead = { seq: num(r.head_seq), hash: r.head_hash as string };
    return r;
  }

  /** A release always appends an audit entry when it succeeds, so its lock takes the head too (lockRow). */
  async lockInstanceByIdentityWithLatestKey(
    tee: RegistryTee,
    value: Uint8Array,
  ): Promise<LockedInstance | undefined> {
    const r = await this.lockRow(
      SQL.lockInstanceByIdentityWithLatestKey,
      SQL.lockInstanceByIdentityWithLatestKeyAndHead,
      [buf(value), tee],
      true,
    );
    if (!r) return undefined;
    const latestKey =
      r.key_version === null
        ? undefined
        : toKey({
            instance_id: r.id,
            version: r.key_version,
            wrapped: r.key_wrapped,
            kek_id: r.key_kek_id,
            created_at: r.key_created_at,
          });
    return { instance: toInstance(r), latestKey };
  }

  async setBootState(id: string, s: BootState): Promise<void> {
    await this.c.send(SQL.setBootState, bootStateValues(id, s));
  }

  async setNewLaunch(id: string, policy: NewLaunchPolicy): Promise<void> {
    await this.c.send('UPDATE instances SET new_launch = $1 WHERE id = $2', [policy, id]);
  }

  async setPolicy(id: string, policy: JsonValue): Promise<void> {
    await this.c.send('UPDATE instances SET policy = $1 WHERE id = $2', [JSON.stringify(policy), id]);
  }

  async latestKey(instanceId: string): Promise<SealingKeyRecord | undefined> {
    const r = await this.row(SQL.latestKey, [instanceId]);
    return r && toKey(r);
  }

  async getKey(instanceId: string, version: number): Promise<SealingKeyRecord | undefined> {
    const r = await this.row(
      `SELECT ${KEY_COLUMNS} FROM sealing_keys WHERE instance_id = $1 AND version = $2`,
      [instanceId, version],
    );
    return r && toKey(r);
  }

  async insertKeyIfAbsent(k: SealingKeyRecord): Promise<boolean> {
    const r = await this.c.write(
      `INSERT INTO sealing_keys (${KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
      [k.instanceId, k.version, buf(k.wrapped), k.kekId, k.createdAt],
    );
    return r.rowCount === 1;
  }

  async insertCredential(rec: CredentialRecord): Promise<boolean> {
    const r = await this.c.write(
      `INSERT INTO credentials (${CREDENTIAL_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
      credentialValues(rec),
    );
    return r.rowCount === 1;
  }

  async revokeCredential(id: string, at: number): Promise<CredentialRecord | undefined> {
    await this.c.send('UPDATE credentials SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL', [
      at,
      id,
    ]);
    const r = await this.row(`SELECT ${CREDENTIAL_COLUMNS} FROM credentials WHERE id = $1`, [id]);
    return r && toCredential(r);
  }

  async appendAudit(draft: AuditDraft, o: AuditWith = {}): Promise<AuditEntry> {
    // The head row lock serializes appends across every process sharing the database: no fork.
    let head = this.appended ?? this.lockedHead ?? this.shared.auditHead;
    if (!head) {
      const row = (await this.row(SQL.lockAuditHead))!;
      head = { seq: num(row.seq), hash: row.hash as string };
    }
    const entry = linkAuditEntry(head, draft);
    const boot = o.bootState;
    // Sent, not awaited: the entry is linked here, so nothing in the answer is needed, and COMMIT may follow
    // it on the wire (pg-member-connection.ts).
    if (boot) {
      await this.c.send(SQL.appendAuditWithBootState, [
        ...auditValues(entry),
        ...bootStateValues(boot.instanceId, boot.state),
      ]);
    } else {
      await this.c.send(SQL.appendAudit, auditValues(entry));
    }
    this.appended = { seq: entry.seq, hash: entry.hash };
    return entry;
  }
}
