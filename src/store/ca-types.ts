import type { AuditDraft, AuditEntry, AuditHead, Engine } from './types.js';

/**
 * What the platform CA (src/ca) persists, on the broker's engines: SQLite (ca-sqlite.ts) and PostgreSQL
 * (ca-postgres.ts), tables from migration 3 (ca-migration.ts), opened by location with
 * {@link openCaRepository}. Every method that records a decision takes the log entry too and writes both
 * atomically: an issued certificate or a revocation never exists without its log entry. The issuance log
 * is in the broker's audit-entry format and hash chain (audit-hash.ts), in its own table.
 *
 * Times are integer milliseconds since the Unix epoch, supplied by the CA's injected clock.
 */

export type CertificateKind = 'root' | 'intermediate' | 'ek' | 'ak';

export interface CertificateRecord {
  /** Lower-case hex of the serial number's unsigned big-endian bytes. */
  readonly serial: string;
  readonly kind: CertificateKind;
  /** Decimal instance id (EK and AK certificates). */
  readonly instanceId: string | null;
  /** The instance identity as JSON text (integers as decimal strings), for EK and AK certificates. */
  readonly identityJson: string | null;
  /** Hex SHA-256 of the certified SubjectPublicKeyInfo DER. */
  readonly spkiSha256: string;
  /** The EK's TPMT_PUBLIC when the request gave one (needed later for MakeCredential). */
  readonly ekPublic: Uint8Array | null;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly issuedAt: number;
  readonly der: Uint8Array;
  /** The C509 form when one was issued. */
  readonly c509: Uint8Array | null;
  readonly revokedAt: number | null;
  /** RFC 5280 §5.3.1 CRLReason code. */
  readonly revocationReason: number | null;
}

/** A pending credential activation (route b): single use, expires. */
export interface ActivationRecord {
  readonly id: string;
  readonly instanceId: string;
  /** The AK's TPMT_PUBLIC to certify once the secret comes back. */
  readonly akPublic: Uint8Array;
  /** The EK the credential was made for (its TPMT_PUBLIC). */
  readonly ekPublic: Uint8Array;
  /** SHA-256 of the secret; the secret itself is never stored. */
  readonly secretDigest: Uint8Array;
  /** The request's CSR (DER or C509), when one came with it. */
  readonly csr: Uint8Array | null;
  /** Requested output format. */
  readonly format: string;
  readonly expiresAt: number;
}

export interface CrlRecord {
  readonly number: number;
  readonly thisUpdate: number;
  readonly nextUpdate: number;
  readonly der: Uint8Array;
}

export type RevokeResult = 'revoked' | 'unknown' | 'already_revoked';

export interface CaRepository {
  readonly engine: Engine;
  /** Stores an issued certificate and its log entry in one transaction. */
  insertCertificate(rec: CertificateRecord, log: AuditDraft): Promise<AuditEntry>;
  getCertificate(serial: string): Promise<CertificateRecord | undefined>;
  listCertificates(filter?: { kind?: CertificateKind; instanceId?: string }): Promise<CertificateRecord[]>;
  /**
   * Marks a certificate revoked and logs it, in one transaction; a second revocation changes nothing
   * and is not logged.
   */
  revoke(serial: string, at: number, reason: number, log: AuditDraft): Promise<RevokeResult>;
  listRevoked(): Promise<CertificateRecord[]>;

  /**
   * Reserves the next CRL number (1, 2, 3, ...; one statement, so concurrent callers get distinct numbers).
   * A number whose CRL is never stored is skipped: CRL numbers increase, they need not be contiguous
   * (RFC 5280 §5.2.3).
   */
  nextCrlNumber(): Promise<number>;
  /** Stores a signed CRL and its log entry in one transaction. */
  insertCrl(rec: CrlRecord, log: AuditDraft): Promise<AuditEntry>;
  latestCrl(): Promise<CrlRecord | undefined>;

  /** Records a nonce by its digest, for one instance. */
  insertNonce(digest: Uint8Array, instanceId: string, expiresAt: number): Promise<void>;
  /** Deletes and returns a nonce (one statement: of concurrent callers exactly one gets it). */
  consumeNonce(digest: Uint8Array): Promise<{ instanceId: string; expiresAt: number } | undefined>;
  purgeNonces(before: number): Promise<number>;

  insertActivation(rec: ActivationRecord): Promise<void>;
  /** Deletes and returns a pending activation (single use). */
  consumeActivation(id: string): Promise<ActivationRecord | undefined>;

  /** Appends a log entry that records no state change (a refusal). */
  appendLog(draft: AuditDraft): Promise<AuditEntry>;
  readLog(afterSeq: number, limit: number): Promise<AuditEntry[]>;
  logHead(): Promise<AuditHead>;

  close(): Promise<void>;
}
