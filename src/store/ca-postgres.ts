import pg from 'pg';
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
import { openPostgresStore } from './postgres.js';
import { AUDIT_COLUMNS, auditValues, buf, num, toAudit } from './rows.js';
import type { AuditDraft, AuditEntry, AuditHead } from './types.js';

export interface PostgresCaRepositoryOptions {
  readonly connectionString: string;
  /** Pool size (default 4: the CA's operations are few and short). */
  readonly max?: number;
}

type Row = Record<string, unknown>;
type Queryable = Pick<pg.PoolClient, 'query'>;

async function one(q: Queryable, sql: string, params: unknown[] = []): Promise<Row | undefined> {
  return (await q.query(sql, params)).rows[0] as Row | undefined;
}

/**
 * Opens the CA's repository on PostgreSQL (the broker's database, or another). The broker's store opener
 * applies the migrations under its advisory lock (the CA's tables are migration 3), then the repository
 * keeps its own pool.
 */
export async function openPostgresCaRepository(opts: PostgresCaRepositoryOptions): Promise<CaRepository> {
  await (await openPostgresStore({ connectionString: opts.connectionString, max: 1 })).close();
  const pool = new pg.Pool({ connectionString: opts.connectionString, max: opts.max ?? 4 });
  // An idle client that errors (server restart) must not crash the process; the next query reconnects.
  pool.on('error', () => {});
  return new PostgresCaRepository(pool);
}

class PostgresCaRepository implements CaRepository {
  readonly engine = 'postgres' as const;

  constructor(private readonly pool: pg.Pool) {}

  /** One transaction on one pooled client; a client whose ROLLBACK failed is destroyed, not pooled. */
  private async write<T>(fn: (c: Queryable) => Promise<T>): Promise<T> {
    const c = await this.pool.connect();
    let broken = false;
    try {
      await c.query('BEGIN');
      const result = await fn(c);
      await c.query('COMMIT');
      return result;
    } catch (e) {
      try {
        await c.query('ROLLBACK');
      } catch {
        broken = true;
      }
      throw e;
    } finally {
      c.release(broken ? true : undefined);
    }
  }

  /** Appends to the issuance log inside a transaction; the head row lock serializes appends: no fork. */
  private async append(c: Queryable, draft: AuditDraft): Promise<AuditEntry> {
    const head = decodeAuditHead(await one(c, 'SELECT seq, hash FROM ca_log_head WHERE id = 1 FOR UPDATE'));
    const entry = linkAuditEntry(head, draft);
    await c.query(
      `INSERT INTO ca_log (${AUDIT_COLUMNS}) VALUES (${placeholders(10, 'postgres')})`,
      auditValues(entry),
    );
    await c.query('UPDATE ca_log_head SET seq = $1, hash = $2 WHERE id = 1', [entry.seq, entry.hash]);
    return entry;
  }

  insertCertificate(rec: CertificateRecord, log: AuditDraft): Promise<AuditEntry> {
    return this.write(async (c) => {
      await c.query(
        `INSERT INTO ca_certificates (${CERTIFICATE_COLUMNS}) VALUES (${placeholders(13, 'postgres')})`,
        certificateValues(rec),
      );
      return this.append(c, log);
    });
  }

  async getCertificate(serial: string): Promise<CertificateRecord | undefined> {
    const r = await one(this.pool, `SELECT ${CERTIFICATE_COLUMNS} FROM ca_certificates WHERE serial = $1`, [
      serial,
    ]);
    return r && toCertificate(r);
  }

  async listCertificates(
    filter: { kind?: CertificateKind; instanceId?: string } = {},
  ): Promise<CertificateRecord[]> {
    const r = await this.pool.query(
      `SELECT ${CERTIFICATE_COLUMNS} FROM ca_certificates
       WHERE ($1::text IS NULL OR kind = $1) AND ($2::text IS NULL OR instance_id = $2)
       ORDER BY issued_at, serial`,
      [filter.kind ?? null, filter.instanceId ?? null],
    );
    return (r.rows as Row[]).map(toCertificate);
  }

  revoke(serial: string, at: number, reason: number, log: AuditDraft): Promise<RevokeResult> {
    return this.write(async (c): Promise<RevokeResult> => {
      // FOR UPDATE: of two concurrent revocations, the second waits and then sees the first one's result.
      const r = await one(c, 'SELECT revoked_at FROM ca_certificates WHERE serial = $1 FOR UPDATE', [serial]);
      if (!r) return 'unknown';
      if (r.revoked_at !== null) return 'already_revoked';
      await c.query('UPDATE ca_certificates SET revoked_at = $1, revocation_reason = $2 WHERE serial = $3', [
        at,
        reason,
        serial,
      ]);
      await this.append(c, log);
      return 'revoked';
    });
  }

  async listRevoked(): Promise<CertificateRecord[]> {
    const r = await this.pool.query(
      `SELECT ${CERTIFICATE_COLUMNS} FROM ca_certificates WHERE revoked_at IS NOT NULL ORDER BY revoked_at, serial`,
    );
    return (r.rows as Row[]).map(toCertificate);
  }

  async nextCrlNumber(): Promise<number> {
    const r = await one(
      this.pool,
      "UPDATE ca_counters SET value = value + 1 WHERE name = 'crl_number' RETURNING value",
    );
    return num(r!.value);
  }

  insertCrl(rec: CrlRecord, log: AuditDraft): Promise<AuditEntry> {
    return this.write(async (c) => {
      await c.query(`INSERT INTO ca_crls (${CRL_COLUMNS}) VALUES ($1, $2, $3, $4)`, [
        rec.number,
        rec.thisUpdate,
        rec.nextUpdate,
        buf(rec.der),
      ]);
      return this.append(c, log);
    });
  }

  async latestCrl(): Promise<CrlRecord | undefined> {
    const r = await one(this.pool, `SELECT ${CRL_COLUMNS} FROM ca_crls ORDER BY number DESC LIMIT 1`);
    return r && toCrl(r);
  }

  async insertNonce(digest: Uint8Array, instanceId: string, expiresAt: number): Promise<void> {
    await this.pool.query('INSERT INTO ca_nonces (digest, instance_id, expires_at) VALUES ($1, $2, $3)', [
      buf(digest),
      instanceId,
      expiresAt,
    ]);
  }

  async consumeNonce(digest: Uint8Array): Promise<{ instanceId: string; expiresAt: number } | undefined> {
    // A concurrent DELETE of the same row waits for the first to commit and then finds nothing.
    const r = await one(
      this.pool,
      'DELETE FROM ca_nonces WHERE digest = $1 RETURNING instance_id, expires_at',
      [buf(digest)],
    );
    return r ? { instanceId: String(r.instance_id), expiresAt: num(r.expires_at) } : undefined;
  }

  async purgeNonces(before: number): Promise<number> {
    return (await this.pool.query('DELETE FROM ca_nonces WHERE expires_at < $1', [before])).rowCount ?? 0;
  }

  async insertActivation(rec: ActivationRecord): Promise<void> {
    await this.pool.query(
      `INSERT INTO ca_activations (${ACTIVATION_COLUMNS}) VALUES (${placeholders(8, 'postgres')})`,
      activationValues(rec),
    );
  }

  async consumeActivation(id: string): Promise<ActivationRecord | undefined> {
    const r = await one(
      this.pool,
      `DELETE FROM ca_activations WHERE id = $1 RETURNING ${ACTIVATION_COLUMNS}`,
      [id],
    );
    return r && toActivation(r);
  }

  appendLog(draft: AuditDraft): Promise<AuditEntry> {
    return this.write((c) => this.append(c, draft));
  }

  async readLog(afterSeq: number, limit: number): Promise<AuditEntry[]> {
    const r = await this.pool.query(
      `SELECT ${AUDIT_COLUMNS} FROM ca_log WHERE seq > $1 ORDER BY seq LIMIT $2`,
      [afterSeq, limit],
    );
    return (r.rows as Row[]).map(toAudit);
  }

  async logHead(): Promise<AuditHead> {
    // A head row someone edited to a value never written is a typed error (verification reports it).
    return decodeAuditHead(await one(this.pool, 'SELECT seq, hash FROM ca_log_head WHERE id = 1'));
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
