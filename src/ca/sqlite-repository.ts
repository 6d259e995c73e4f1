import { chmodSync, existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import { GENESIS_HASH, linkAuditEntry } from '../store/audit-hash.js';
import type { AuditDraft, AuditEntry, AuditHead } from '../store/types.js';
import type {
  ActivationRecord,
  CaRepository,
  CertificateKind,
  CertificateRecord,
  CrlRecord,
  RevokeResult,
} from './repository.js';

/**
 * The CA's embedded repository: one SQLite file in the CA directory (WAL, synchronous=FULL), tables
 * prefixed `ca_` so they can later live beside the broker's in the shared store. The issuance log uses the
 * broker's audit-entry format and hash chain (src/store/audit-hash.ts) in its own table, append-only by
 * trigger.
 */

const SCHEMA_VERSION = 1;

const SCHEMA = `
CREATE TABLE ca_certificates (
  serial TEXT PRIMARY KEY,
  kind TEXT NOT NULL CHECK (kind IN ('root', 'intermediate', 'ek', 'ak')),
  instance_id TEXT,
  identity_json TEXT,
  spki_sha256 TEXT NOT NULL,
  ek_public BLOB,
  not_before INTEGER NOT NULL,
  not_after INTEGER NOT NULL,
  issued_at INTEGER NOT NULL,
  der BLOB NOT NULL,
  c509 BLOB,
  revoked_at INTEGER,
  revocation_reason INTEGER
);
CREATE INDEX ca_certificates_instance ON ca_certificates (instance_id, kind);
CREATE TABLE ca_counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT INTO ca_counters (name, value) VALUES ('crl_number', 0);
CREATE TABLE ca_crls (
  number INTEGER PRIMARY KEY,
  this_update INTEGER NOT NULL,
  next_update INTEGER NOT NULL,
  der BLOB NOT NULL
);
CREATE TABLE ca_nonces (
  digest BLOB PRIMARY KEY,
  instance_id TEXT NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE TABLE ca_activations (
  id TEXT PRIMARY KEY,
  instance_id TEXT NOT NULL,
  ak_public BLOB NOT NULL,
  ek_public BLOB NOT NULL,
  secret_digest BLOB NOT NULL,
  csr BLOB,
  format TEXT NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE TABLE ca_log (
  seq INTEGER PRIMARY KEY,
  time INTEGER NOT NULL,
  kind TEXT NOT NULL,
  instance TEXT,
  decision TEXT NOT NULL,
  reasons TEXT NOT NULL,
  evidence_digest TEXT,
  details TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL
);
CREATE TRIGGER ca_log_no_update BEFORE UPDATE ON ca_log BEGIN SELECT RAISE(ABORT, 'ca_log is append-only'); END;
CREATE TRIGGER ca_log_no_delete BEFORE DELETE ON ca_log BEGIN SELECT RAISE(ABORT, 'ca_log is append-only'); END;
CREATE TABLE ca_log_head (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, hash TEXT NOT NULL);
INSERT INTO ca_log_head (id, seq, hash) VALUES (1, 0, '${GENESIS_HASH}');
`;

type Row = Record<string, unknown>;

const u8 = (v: unknown): Uint8Array => new Uint8Array(v as Buffer);
const u8OrNull = (v: unknown): Uint8Array | null => (v === null || v === undefined ? null : u8(v));
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const strOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
const buf = (b: Uint8Array | null): Buffer | null => (b === null ? null : Buffer.from(b));

function toCertificate(r: Row): CertificateRecord {
  return {
    serial: String(r.serial),
    kind: r.kind as CertificateKind,
    instanceId: strOrNull(r.instance_id),
    identityJson: strOrNull(r.identity_json),
    spkiSha256: String(r.spki_sha256),
    ekPublic: u8OrNull(r.ek_public),
    notBefore: Number(r.not_before),
    notAfter: Number(r.not_after),
    issuedAt: Number(r.issued_at),
    der: u8(r.der),
    c509: u8OrNull(r.c509),
    revokedAt: numOrNull(r.revoked_at),
    revocationReason: numOrNull(r.revocation_reason),
  };
}

function toLog(r: Row): AuditEntry {
  return {
    seq: Number(r.seq),
    time: Number(r.time),
    kind: String(r.kind),
    instance: strOrNull(r.instance),
    decision: r.decision as AuditEntry['decision'],
    reasons: JSON.parse(String(r.reasons)) as string[],
    evidenceDigest: strOrNull(r.evidence_digest),
    details: JSON.parse(String(r.details)) as AuditEntry['details'],
    prevHash: String(r.prev_hash),
    hash: String(r.hash),
  };
}

export class SqliteCaRepository implements CaRepository {
  private constructor(private readonly db: Database.Database) {}

  /** Opens (creating with mode 0600 if needed) the CA database at `path`. */
  static open(path: string): SqliteCaRepository {
    const fresh = !existsSync(path);
    const db = new Database(path);
    if (fresh) chmodSync(path, 0o600);
    db.pragma('busy_timeout = 10000');
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    const version = Number(db.pragma('user_version', { simple: true }));
    if (version === 0) {
      db.transaction(() => {
        db.exec(SCHEMA);
        db.pragma(`user_version = ${SCHEMA_VERSION}`);
      }).immediate();
    } else if (version !== SCHEMA_VERSION) {
      db.close();
      throw new Error(`CA database schema version ${version} is not supported (expected ${SCHEMA_VERSION})`);
    }
    return new SqliteCaRepository(db);
  }

  private append(draft: AuditDraft): AuditEntry {
    const head = this.db.prepare('SELECT seq, hash FROM ca_log_head WHERE id = 1').get() as Row;
    const entry = linkAuditEntry({ seq: Number(head.seq), hash: String(head.hash) }, draft);
    this.db
      .prepare(
        `INSERT INTO ca_log (seq, time, kind, instance, decision, reasons, evidence_digest, details, prev_hash, hash)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        entry.seq,
        entry.time,
        entry.kind,
        entry.instance,
        entry.decision,
        JSON.stringify(entry.reasons),
        entry.evidenceDigest,
        JSON.stringify(entry.details),
        entry.prevHash,
        entry.hash,
      );
    this.db.prepare('UPDATE ca_log_head SET seq = ?, hash = ? WHERE id = 1').run(entry.seq, entry.hash);
    return entry;
  }

  async insertCertificate(rec: CertificateRecord, log: AuditDraft): Promise<AuditEntry> {
    return this.db
      .transaction(() => {
        this.db
          .prepare(
            `INSERT INTO ca_certificates (serial, kind, instance_id, identity_json, spki_sha256, ek_public, not_before,
               not_after, issued_at, der, c509, revoked_at, revocation_reason)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          )
          .run(
            rec.serial,
            rec.kind,
            rec.instanceId,
            rec.identityJson,
            rec.spkiSha256,
            buf(rec.ekPublic),
            rec.notBefore,
            rec.notAfter,
            rec.issuedAt,
            buf(rec.der),
            buf(rec.c509),
            rec.revokedAt,
            rec.revocationReason,
          );
        return this.append(log);
      })
      .immediate();
  }

  async getCertificate(serial: string): Promise<CertificateRecord | undefined> {
    const r = this.db.prepare('SELECT * FROM ca_certificates WHERE serial = ?').get(serial) as
      | Row
      | undefined;
    return r ? toCertificate(r) : undefined;
  }

  async listCertificates(
    filter: { kind?: CertificateKind; instanceId?: string } = {},
  ): Promise<CertificateRecord[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    if (filter.kind !== undefined) {
      where.push('kind = ?');
      args.push(filter.kind);
    }
    if (filter.instanceId !== undefined) {
      where.push('instance_id = ?');
      args.push(filter.instanceId);
    }
    const sql = `SELECT * FROM ca_certificates ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY issued_at, serial`;
    return (this.db.prepare(sql).all(...args) as Row[]).map(toCertificate);
  }

  async revoke(serial: string, at: number, reason: number, log: AuditDraft): Promise<RevokeResult> {
    return this.db
      .transaction((): RevokeResult => {
        const r = this.db.prepare('SELECT revoked_at FROM ca_certificates WHERE serial = ?').get(serial) as
          | Row
          | undefined;
        if (!r) return 'unknown';
        if (r.revoked_at !== null) return 'already_revoked';
        this.db
          .prepare('UPDATE ca_certificates SET revoked_at = ?, revocation_reason = ? WHERE serial = ?')
          .run(at, reason, serial);
        this.append(log);
        return 'revoked';
      })
      .immediate();
  }

  async listRevoked(): Promise<CertificateRecord[]> {
    const rows = this.db
      .prepare('SELECT * FROM ca_certificates WHERE revoked_at IS NOT NULL ORDER BY revoked_at, serial')
      .all() as Row[];
    return rows.map(toCertificate);
  }

  async nextCrlNumber(): Promise<number> {
    const r = this.db
      .prepare("UPDATE ca_counters SET value = value + 1 WHERE name = 'crl_number' RETURNING value")
      .get() as Row;
    return Number(r.value);
  }

  async insertCrl(rec: CrlRecord, log: AuditDraft): Promise<AuditEntry> {
    return this.db
      .transaction(() => {
        this.db
          .prepare('INSERT INTO ca_crls (number, this_update, next_update, der) VALUES (?, ?, ?, ?)')
          .run(rec.number, rec.thisUpdate, rec.nextUpdate, Buffer.from(rec.der));
        return this.append(log);
      })
      .immediate();
  }

  async latestCrl(): Promise<CrlRecord | undefined> {
    const r = this.db.prepare('SELECT * FROM ca_crls ORDER BY number DESC LIMIT 1').get() as Row | undefined;
    return r
      ? {
          number: Number(r.number),
          thisUpdate: Number(r.this_update),
          nextUpdate: Number(r.next_update),
          der: u8(r.der),
        }
      : undefined;
  }

  async insertNonce(digest: Uint8Array, instanceId: string, expiresAt: number): Promise<void> {
    this.db
      .prepare('INSERT INTO ca_nonces (digest, instance_id, expires_at) VALUES (?, ?, ?)')
      .run(Buffer.from(digest), instanceId, expiresAt);
  }

  async consumeNonce(digest: Uint8Array): Promise<{ instanceId: string; expiresAt: number } | undefined> {
    const r = this.db
      .prepare('DELETE FROM ca_nonces WHERE digest = ? RETURNING instance_id, expires_at')
      .get(Buffer.from(digest)) as Row | undefined;
    return r ? { instanceId: String(r.instance_id), expiresAt: Number(r.expires_at) } : undefined;
  }

  async purgeNonces(before: number): Promise<number> {
    return this.db.prepare('DELETE FROM ca_nonces WHERE expires_at < ?').run(before).changes;
  }

  async insertActivation(rec: ActivationRecord): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO ca_activations (id, instance_id, ak_public, ek_public, secret_digest, csr, format, expires_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        rec.id,
        rec.instanceId,
        Buffer.from(rec.akPublic),
        Buffer.from(rec.ekPublic),
        Buffer.from(rec.secretDigest),
        buf(rec.csr),
        rec.format,
        rec.expiresAt,
      );
  }

  async consumeActivation(id: string): Promise<ActivationRecord | undefined> {
    const r = this.db.prepare('DELETE FROM ca_activations WHERE id = ? RETURNING *').get(id) as
      | Row
      | undefined;
    if (!r) return undefined;
    return {
      id: String(r.id),
      instanceId: String(r.instance_id),
      akPublic: u8(r.ak_public),
      ekPublic: u8(r.ek_public),
      secretDigest: u8(r.secret_digest),
      csr: u8OrNull(r.csr),
      format: String(r.format),
      expiresAt: Number(r.expires_at),
    };
  }

  async appendLog(draft: AuditDraft): Promise<AuditEntry> {
    return this.db.transaction(() => this.append(draft)).immediate();
  }

  async readLog(afterSeq: number, limit: number): Promise<AuditEntry[]> {
    const rows = this.db
      .prepare('SELECT * FROM ca_log WHERE seq > ? ORDER BY seq LIMIT ?')
      .all(afterSeq, limit) as Row[];
    return rows.map(toLog);
  }

  async logHead(): Promise<AuditHead> {
    const r = this.db.prepare('SELECT seq, hash FROM ca_log_head WHERE id = 1').get() as Row;
    return { seq: Number(r.seq), hash: String(r.hash) };
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
