import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { linkAuditEntry } from './audit-hash.js';
import { decodeAuditHead } from './audit-row.js';
import { CREDENTIAL_COLUMNS, credentialValues, toCredential } from './credential-rows.js';
import { SqliteKbsState } from './kbs-state-sqlite.js';
import type { KbsStateStore } from './kbs-state-types.js';
import { type Migration, SQLITE_MIGRATIONS } from './migrations.js';
import { Mutex } from './mutex.js';
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
import { prepared } from './sqlite-statements.js';
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
import { WalSync } from './wal-sync.js';

export interface SqliteStoreOptions {
  /** Database file. Give this or `dataDir`. */
  readonly path?: string;
  /** Directory (created with mode 0700) holding `vouchsafe.db`. */
  readonly dataDir?: string;
  /** How long a writer waits for another process's write lock, in ms (default 10 000). */
  readonly busyTimeoutMs?: number;
}

type Row = Record<string, unknown>;

/**
 * Runs a challenge write without waiting for a flush of its own. Safe because nothing is released on the
 * strength of a challenge write alone: the release, or the refusal's audit entry, is a
 * {@link Store.transaction}, which returns only after a WAL flush that covers every earlier commit too
 * (wal-sync.ts). A challenge write lost in a crash only means the guest asks for a new challenge (an issue)
 * or the consume is redone before anything was decided (a consume).
 */
function withoutFsync<T>(_db: Database.Database, f: () => T): T {
  return f();
}

/**
 * Opens (creating if needed) the embedded SQLite store: WAL journal, every transaction flushed before it
 * resolves so a committed transaction survives power loss (grouped, off the event loop: wal-sync.ts),
 * busy_timeout so several processes can share the file. Applies pending migrations before returning.
 */
export function openSqliteStore(opts: SqliteStoreOptions): Promise<Store> {
  let path = opts.path;
  if (!path) {
    if (!opts.dataDir) throw new TypeError('openSqliteStore needs path or dataDir');
    mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
    path = join(opts.dataDir, 'vouchsafe.db');
  }
  const db = new Database(path);
  try {
    const busyMs = Math.trunc(opts.busyTimeoutMs ?? 10_000);
    db.pragma(`busy_timeout = ${busyMs}`);
    enableWal(db, busyMs);
    // NORMAL: COMMIT writes the WAL without flushing it; transaction() then awaits a grouped fdatasync off
    // the event loop before it resolves (wal-sync.ts), which makes it as durable as FULL.
    // Where WAL is unavailable (an in-memory database) FULL stays: NORMAL is only crash-safe with a WAL.
    const wal = db.pragma('journal_mode', { simple: true }) === 'wal';
    db.pragma(`synchronous = ${wal ? 'NORMAL' : 'FULL'}`);
    db.pragma('foreign_keys = ON');
    migrate(db, SQLITE_MIGRATIONS);
  } catch (e) {
    db.close();
    throw e;
  }
  return Promise.resolve(typedStoreErrors(new SqliteStore(db, new WalSync(`${path}-wal`))));
}

/**
 * Switches a connection to WAL. When several processes open a fresh database at once, the switch can
 * answer SQLITE_BUSY without waiting for the busy timeout (SQLite does not run the busy handler for that
 * lock upgrade), so it is retried here until the timeout.
 */
function enableWal(db: Database.Database, timeoutMs: number): void {
  const deadline = Date.now() + timeoutMs;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    try {
      db.pragma('journal_mode = WAL');
      return;
    } catch (e) {
      if ((e as { code?: string }).code !== 'SQLITE_BUSY' || Date.now() > deadline) throw e;
      Atomics.wait(pause, 0, 0, 10);
    }
  }
}

function migrate(db: Database.Database, migrations: readonly Migration[]): void {
  // BEGIN IMMEDIATE takes the write lock first, so two processes opening at once migrate one after the other.
  db.exec('BEGIN IMMEDIATE');
  try {
    db.exec(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)',
    );
    const done = new Set(
      db
        .prepare('SELECT version FROM schema_migrations')
        .all()
        .map((r) => num((r as Row).version)),
    );
    const record = db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
    // In version order whatever the list order, skipping applied ones: numbers may have gaps.
    for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
      if (done.has(m.version)) continue;
      db.exec(m.sql);
      record.run(m.version, m.name, Date.now());
    }
    db.exec('COMMIT');
  } catch (e) {
    if (db.inTransaction) db.exec('ROLLBACK');
    throw e;
  }
}

/** An instance by its registry TEE's identity value and that TEE (unique: host_data is). */
const INSTANCE_BY_IDENTITY = `SELECT ${INSTANCE_COLUMNS} FROM instances WHERE host_data = ? AND tee = ?`;

class SqliteStore implements Store {
  readonly engine = 'sqlite' as const;
  private readonly mutex = new Mutex();

  constructor(
    private readonly db: Database.Database,
    private readonly wal: WalSync,
  ) {}

  private one(sql: string, ...params: unknown[]): Row | undefined {
    return prepared(this.db, sql).get(...params) as Row | undefined;
  }

  private all(sql: string, ...params: unknown[]): Row[] {
    return prepared(this.db, sql).all(...params) as Row[];
  }

  insertChallenge(digest: Uint8Array, expiresAt: number): Promise<void> {
    return this.mutex.run(() => {
      withoutFsync(this.db, () =>
        prepared(this.db, 'INSERT INTO challenges (digest, expires_at) VALUES (?, ?)').run(
          buf(digest),
          expiresAt,
        ),
      );
    });
  }

  consumeChallenge(digest: Uint8Array): Promise<{ expiresAt: number } | undefined> {
    return this.mutex.run(() => {
      const r = withoutFsync(this.db, () =>
        this.one('DELETE FROM challenges WHERE digest = ? RETURNING expires_at', buf(digest)),
      );
      return r ? { expiresAt: num(r.expires_at) } : undefined;
    });
  }

  purgeChallenges(before: number): Promise<number> {
    return this.mutex.run(
      () => prepared(this.db, 'DELETE FROM challenges WHERE expires_at < ?').run(before).changes,
    );
  }

  getInstance(id: string): Promise<InstanceWithState | undefined> {
    return this.mutex.run(() => {
      const r = this.one(`SELECT ${INSTANCE_COLUMNS} FROM instances WHERE id = ?`, id);
      return r && toInstance(r);
    });
  }

  findInstanceByIdentity(tee: RegistryTee, value: Uint8Array): Promise<InstanceWithState | undefined> {
    return this.mutex.run(() => {
      const r = this.one(INSTANCE_BY_IDENTITY, buf(value), tee);
      return r && toInstance(r);
    });
  }

  listInstances(): Promise<InstanceWithState[]> {
    return this.mutex.run(() =>
      this.all(`SELECT ${INSTANCE_COLUMNS} FROM instances ORDER BY created_at, id`).map(toInstance),
    );
  }

  listKeys(instanceId: string): Promise<SealingKeyRecord[]> {
    return this.mutex.run(() =>
      this.all(
        `SELECT ${KEY_COLUMNS} FROM sealing_keys WHERE instance_id = ? ORDER BY version`,
        instanceId,
      ).map(toKey),
    );
  }

  readAudit(afterSeq: number, limit: number): Promise<AuditEntry[]> {
    return this.mutex.run(() =>
      this.all(
        `SELECT ${AUDIT_COLUMNS} FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?`,
        afterSeq,
        limit,
      ).map(toAudit),
    );
  }

  auditHead(): Promise<AuditHead> {
    return this.mutex.run(() => {
      const r = this.one('SELECT seq, hash FROM audit_head WHERE id = 1');
      return decodeAuditHead(r);
    });
  }

  getCredential(id: string): Promise<CredentialRecord | undefined> {
    return this.mutex.run(() => {
      const r = this.one(`SELECT ${CREDENTIAL_COLUMNS} FROM credentials WHERE id = ?`, id);
      return r && toCredential(r);
    });
  }

  listCredentials(): Promise<CredentialRecord[]> {
    return this.mutex.run(() =>
      this.all(`SELECT ${CREDENTIAL_COLUMNS} FROM credentials ORDER BY created_at, id`).map(toCredential),
    );
  }

  async transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    // Durable before it resolves: the WAL flush runs after the mutex is released, so the next transaction
    // proceeds meanwhile and shares the next flush (group commit, wal-sync.ts).
    const result = await this.mutex.run(async () => {
      // IMMEDIATE: take the write lock now rather than on the first write, so a read-then-write cannot
      // fail half way with SQLITE_BUSY; other processes wait up to busy_timeout.
      this.db.exec('BEGIN IMMEDIATE');
      const tx = new SqliteTx(this.db);
      try {
        const result = await fn(tx);
        tx.close();
        this.db.exec('COMMIT');
        return result;
      } catch (e) {
        tx.close();
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw e;
      }
    });
    await this.wal.sync();
    return result;
  }

  private kbs: KbsStateStore | undefined;

  kbsState(): KbsStateStore {
    this.kbs ??= typedStoreErrors(new SqliteKbsState(this.db, this.mutex, () => this.wal.sync()));
    return this.kbs;
  }

  async close(): Promise<void> {
    await this.mutex.run(() => {
      this.db.close();
    });
    await this.wal.close();
  }
}

class SqliteTx implements StoreTx {
  private open = true;

  constructor(private readonly db: Database.Database) {}

  close(): void {
    this.open = false;
  }

  private stmt(sql: string): Database.Statement {
    if (!this.open) throw new Error('store transaction used after it ended');
    return prepared(this.db, sql);
  }

  private instance(where: string, param: unknown): Promise<InstanceWithState | undefined> {
    const r = this.stmt(`SELECT ${INSTANCE_COLUMNS} FROM instances WHERE ${where} = ?`).get(param) as
      | Row
      | undefined;
    return Promise.resolve(r && toInstance(r));
  }

  insertInstance(rec: InstanceRecord): Promise<InsertInstanceResult> {
    const info = this.stmt(
      `INSERT INTO instances (id, project, zone, instance_id, instance_name, host_data, policy, created_at,
       new_launch, tee) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
    ).run(
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
    );
    if (info.changes === 1) return Promise.resolve('inserted');
    const clash = this.stmt('SELECT 1 FROM instances WHERE host_data = ?').get(buf(rec.hostData));
    return Promise.resolve(clash ? 'duplicate_host_data' : 'duplicate_identity');
  }

  lockInstance(id: string): Promise<InstanceWithState | undefined> {
    return this.instance('id', id);
  }

  /** SQLite: the transaction holds the one write lock already (`LockOptions` changes nothing). */
  lockInstanceByBoot(bootId: string, _o?: LockOptions): Promise<InstanceWithState | undefined> {
    return this.instance('boot_id', bootId);
  }

  async lockInstanceByIdentityWithLatestKey(
    tee: RegistryTee,
    value: Uint8Array,
  ): Promise<LockedInstance | undefined> {
    const r = this.stmt(INSTANCE_BY_IDENTITY).get(buf(value), tee) as Row | undefined;
    if (!r) return undefined;
    const instance = toInstance(r);
    return { instance, latestKey: await this.latestKey(instance.id) };
  }

  setBootState(id: string, s: BootState): Promise<void> {
    const b = s.activeBoot;
    this.stmt(
      `UPDATE instances SET committed_counter = ?, committed_digest = ?, boot_id = ?, boot_started_at = ?,
       boot_lease_expires_at = ?, boot_token_hash = ?, boot_launch_id = ? WHERE id = ?`,
    ).run(
      s.committedCounter,
      s.committedDigest ? buf(s.committedDigest) : null,
      b?.bootId ?? null,
      b?.startedAt ?? null,
      b?.leaseExpiresAt ?? null,
      b ? buf(b.tokenHash) : null,
      b?.launchId ? buf(b.launchId) : null,
      id,
    );
    return Promise.resolve();
  }

  setNewLaunch(id: string, policy: NewLaunchPolicy): Promise<void> {
    this.stmt('UPDATE instances SET new_launch = ? WHERE id = ?').run(policy, id);
    return Promise.resolve();
  }

  setPolicy(id: string, policy: JsonValue): Promise<void> {
    this.stmt('UPDATE instances SET policy = ? WHERE id = ?').run(JSON.stringify(policy), id);
    return Promise.resolve();
  }

  latestKey(instanceId: string): Promise<SealingKeyRecord | undefined> {
    const r = this.stmt(
      `SELECT ${KEY_COLUMNS} FROM sealing_keys WHERE instance_id = ? ORDER BY version DESC LIMIT 1`,
    ).get(instanceId) as Row | undefined;
    return Promise.resolve(r && toKey(r));
  }

  getKey(instanceId: string, version: number): Promise<SealingKeyRecord | undefined> {
    const r = this.stmt(`SELECT ${KEY_COLUMNS} FROM sealing_keys WHERE instance_id = ? AND version = ?`).get(
      instanceId,
      version,
    ) as Row | undefined;
    return Promise.resolve(r && toKey(r));
  }

  insertKeyIfAbsent(k: SealingKeyRecord): Promise<boolean> {
    const info = this.stmt(
      `INSERT INTO sealing_keys (${KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
    ).run(k.instanceId, k.version, buf(k.wrapped), k.kekId, k.createdAt);
    return Promise.resolve(info.changes === 1);
  }

  insertCredential(rec: CredentialRecord): Promise<boolean> {
    const info = this.stmt(
      `INSERT INTO credentials (${CREDENTIAL_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
    ).run(...credentialValues(rec));
    return Promise.resolve(info.changes === 1);
  }

  revokeCredential(id: string, at: number): Promise<CredentialRecord | undefined> {
    this.stmt('UPDATE credentials SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(at, id);
    const r = this.stmt(`SELECT ${CREDENTIAL_COLUMNS} FROM credentials WHERE id = ?`).get(id) as
      | Row
      | undefined;
    return Promise.resolve(r && toCredential(r));
  }

  async appendAudit(draft: AuditDraft, o: AuditWith = {}): Promise<AuditEntry> {
    if (o.bootState) await this.setBootState(o.bootState.instanceId, o.bootState.state);
    // The transaction already holds SQLite's single write lock, which serializes appends across processes.
    const head = this.stmt('SELECT seq, hash FROM audit_head WHERE id = 1').get() as Row;
    const entry = linkAuditEntry({ seq: num(head.seq), hash: head.hash as string }, draft);
    this.stmt(`INSERT INTO audit_log (${AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(
      ...auditValues(entry),
    );
    this.stmt('UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1').run(entry.seq, entry.hash);
    return entry;
  }
}
