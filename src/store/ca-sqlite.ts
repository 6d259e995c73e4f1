import { chmodSync, closeSync, existsSync, openSync } from 'node:fs';
import Database from 'better-sqlite3';
import { linkAuditEntry } from './audit-hash.js';
import { decodeAuditHead } from './audit-row.js';
import {
  ACTIVATION_COLUMNS,
  activationValues,
  CERTIFICATE_COLUMNS,
  CRL_COLUMNS,
  certificateValues,
  placeholders,
  toActivation,
  toCertificate,
  toCrl,
} from './ca-rows.js';
import type {
  ActivationRecord,
  CaRepository,
  CertificateKind,
  CertificateRecord,
  CrlRecord,
  RevokeResult,
} from './ca-types.js';
import { AUDIT_COLUMNS, auditValues, buf, num, toAudit } from './rows.js';
import { openSqliteStore } from './sqlite.js';
import type { AuditDraft, AuditEntry, AuditHead } from './types.js';

export interface SqliteCaRepositoryOptions {
  /** Database file: a CA directory's `ca.db`, or the broker's `vouchsafe.db` (the tables do not clash). */
  readonly path: string;
  /** How long a writer waits for another process's write lock, in ms (default 10 000). */
  readonly busyTimeoutMs?: number;
}

type Row = Record<string, unknown>;

/**
 * Opens the CA's repository on SQLite. A new file is created with mode 0600. The broker's store opener
 * applies the migrations (the CA's tables are migration 3; its lock and gap handling are the store's), then
 * the repository keeps its own connection: WAL, synchronous=FULL, busy_timeout, as the broker's store.
 */
export async function openSqliteCaRepository(opts: SqliteCaRepositoryOptions): Promise<CaRepository> {
  if (!existsSync(opts.path)) {
    // A zero-length file is an empty SQLite database; creating it here sets its mode before any data.
    closeSync(openSync(opts.path, 'a', 0o600));
    chmodSync(opts.path, 0o600);
  }
  const busyMs = Math.trunc(opts.busyTimeoutMs ?? 10_000);
  await (await openSqliteStore({ path: opts.path, busyTimeoutMs: busyMs })).close();
  const db = new Database(opts.path);
  try {
    db.pragma(`busy_timeout = ${busyMs}`);
    db.pragma('journal_mode = WAL'); // already WAL: the store opener switched the file
    db.pragma('synchronous = FULL');
  } catch (e) {
    db.close();
    throw e;
  }
  return new SqliteCaRepository(db);
}

/** Every method runs synchronously inside one better-sqlite3 call, so calls never interleave. */
class SqliteCaRepository implements CaRepository {
  readonly engine = 'sqlite' as const;
  private readonly statements = new Map<string, Database.Statement>();

  constructor(private readonly db: Database.Database) {}

  private stmt(sql: string): Database.Statement {
    let st = this.statements.get(sql);
    if (!st) {
      st = this.db.prepare(sql);
      this.statements.set(sql, st);
    }
    return st;
  }

  /** BEGIN IMMEDIATE: the write lock first, so a read-then-write never fails half way with SQLITE_BUSY. */
  private async write<T>(fn: () => T): Promise<T> {
    return this.db.transaction(fn).immediate();
  }

  /** Appends to the issuance log; called inside a write transaction, whose lock serializes appends. */
  private append(draft: AuditDraft): AuditEntry {
    const head = decodeAuditHead(this.stmt('SELECT seq, hash FROM ca_log_head WHERE id = 1').get() as Row);
    const entry = linkAuditEntry(head, draft);
    this.stmt(`INSERT INTO ca_log (${AUDIT_COLUMNS}) VALUES (${placeholders(10, 'sqlite')})`).run(
      ...auditValues(entry),
    );
    this.stmt('UPDATE ca_log_head SET seq = ?, hash = ? WHERE id = 1').run(entry.seq, entry.hash);
    return entry;
  }

  async insertCertificate(rec: CertificateRecord, log: AuditDraft): Promise<AuditEntry> {
    return this.write(() => {
      this.stmt(
        `INSERT INTO ca_certificates (${CERTIFICATE_COLUMNS}) VALUES (${placeholders(13, 'sqlite')})`,
      ).run(...certificateValues(rec));
      return this.append(log);
    });
  }

  async getCertificate(serial: string): Promise<CertificateRecord | undefined> {
    const r = this.stmt(`SELECT ${CERTIFICATE_COLUMNS} FROM ca_certificates WHERE serial = ?`).get(serial) as
      | Row
      | undefined;
    return r && toCertificate(r);
  }

  async listCertificates(
    filter: { kind?: CertificateKind; instanceId?: string } = {},
  ): Promise<CertificateRecord[]> {
    // NULL parameters switch a condition off, so one prepared statement serves every filter.
    const rows = this.stmt(
      `SELECT ${CERTIFICATE_COLUMNS} FROM ca_certificates
       WHERE (@kind IS NULL OR kind = @kind) AND (@instanceId IS NULL OR instance_id = @instanceId)
       ORDER BY issued_at, serial`,
    ).all({ kind: filter.kind ?? null, instanceId: filter.instanceId ?? null }) as Row[];
    return rows.map(toCertificate);
  }

  async revoke(serial: string, at: number, reason: number, log: AuditDraft): Promise<RevokeResult> {
    return this.write((): RevokeResult => {
      const r = this.stmt('SELECT revoked_at FROM ca_certificates WHERE serial = ?').get(serial) as
        | Row
        | undefined;
      if (!r) return 'unknown';
      if (r.revoked_at !== null) return 'already_revoked';
      this.stmt('UPDATE ca_certificates SET revoked_at = ?, revocation_reason = ? WHERE serial = ?').run(
        at,
        reason,
        serial,
      );
      this.append(log);
      return 'revoked';
    });
  }

  async listRevoked(): Promise<CertificateRecord[]> {
    const rows = this.stmt(
      `SELECT ${CERTIFICATE_COLUMNS} FROM ca_certificates WHERE revoked_at IS NOT NULL ORDER BY revoked_at, serial`,
    ).all() as Row[];
    return rows.map(toCertificate);
  }

  async nextCrlNumber(): Promise<number> {
    const r = this.stmt(
      "UPDATE ca_counters SET value = value + 1 WHERE name = 'crl_number' RETURNING value",
    ).get() as Row;
    return num(r.value);
  }

  async insertCrl(rec: CrlRecord, log: AuditDraft): Promise<AuditEntry> {
    return this.write(() => {
      this.stmt(`INSERT INTO ca_crls (${CRL_COLUMNS}) VALUES (?, ?, ?, ?)`).run(
        rec.number,
        rec.thisUpdate,
        rec.nextUpdate,
        buf(rec.der),
      );
      return this.append(log);
    });
  }

  async latestCrl(): Promise<CrlRecord | undefined> {
    const r = this.stmt(`SELECT ${CRL_COLUMNS} FROM ca_crls ORDER BY number DESC LIMIT 1`).get() as
      | Row
      | undefined;
    return r && toCrl(r);
  }

  async insertNonce(digest: Uint8Array, instanceId: string, expiresAt: number): Promise<void> {
    this.stmt('INSERT INTO ca_nonces (digest, instance_id, expires_at) VALUES (?, ?, ?)').run(
      buf(digest),
      instanceId,
      expiresAt,
    );
  }

  async consumeNonce(digest: Uint8Array): Promise<{ instanceId: string; expiresAt: number } | undefined> {
    const r = this.stmt('DELETE FROM ca_nonces WHERE digest = ? RETURNING instance_id, expires_at').get(
      buf(digest),
    ) as Row | undefined;
    return r ? { instanceId: String(r.instance_id), expiresAt: num(r.expires_at) } : undefined;
  }

  async purgeNonces(before: number): Promise<number> {
    return this.stmt('DELETE FROM ca_nonces WHERE expires_at < ?').run(before).changes;
  }

  async insertActivation(rec: ActivationRecord): Promise<void> {
    this.stmt(`INSERT INTO ca_activations (${ACTIVATION_COLUMNS}) VALUES (${placeholders(8, 'sqlite')})`).run(
      ...activationValues(rec),
    );
  }

  async consumeActivation(id: string): Promise<ActivationRecord | undefined> {
    const r = this.stmt(`DELETE FROM ca_activations WHERE id = ? RETURNING ${ACTIVATION_COLUMNS}`).get(id) as
      | Row
      | undefined;
    return r && toActivation(r);
  }

  async appendLog(draft: AuditDraft): Promise<AuditEntry> {
    return this.write(() => this.append(draft));
  }

  async readLog(afterSeq: number, limit: number): Promise<AuditEntry[]> {
    const rows = this.stmt(`SELECT ${AUDIT_COLUMNS} FROM ca_log WHERE seq > ? ORDER BY seq LIMIT ?`).all(
      afterSeq,
      limit,
    ) as Row[];
    return rows.map(toAudit);
  }

  async logHead(): Promise<AuditHead> {
    // A head row someone edited to a value never written is a typed error (verification reports it).
    return decodeAuditHead(
      this.stmt('SELECT seq, hash FROM ca_log_head WHERE id = 1').get() as Row | undefined,
    );
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
