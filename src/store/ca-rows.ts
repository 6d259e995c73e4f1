/**
 * Row <-> record mapping of the CA's tables, shared by both engines (as rows.ts is for the broker's):
 * PostgreSQL returns BIGINT as a string and BYTEA as a Buffer, SQLite numbers and Buffers.
 */
import type { ActivationRecord, CertificateKind, CertificateRecord, CrlRecord } from './ca-types.js';
import { buf, bytes, num } from './rows.js';

type Row = Record<string, unknown>;

export const CERTIFICATE_COLUMNS =
  'serial, kind, instance_id, identity_json, spki_sha256, ek_public, not_before, not_after, issued_at, der, ' +
  'c509, revoked_at, revocation_reason';

export const ACTIVATION_COLUMNS =
  'id, instance_id, ak_public, ek_public, secret_digest, csr, format, expires_at';

export const CRL_COLUMNS = 'number, this_update, next_update, der';

const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : num(v));
const strOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
const bytesOrNull = (v: unknown): Uint8Array | null => (v === null || v === undefined ? null : bytes(v));
const bufOrNull = (b: Uint8Array | null): Buffer | null => (b === null ? null : buf(b));

export function toCertificate(r: Row): CertificateRecord {
  return {
    serial: String(r.serial),
    kind: r.kind as CertificateKind,
    instanceId: strOrNull(r.instance_id),
    identityJson: strOrNull(r.identity_json),
    spkiSha256: String(r.spki_sha256),
    ekPublic: bytesOrNull(r.ek_public),
    notBefore: num(r.not_before),
    notAfter: num(r.not_after),
    issuedAt: num(r.issued_at),
    der: bytes(r.der),
    c509: bytesOrNull(r.c509),
    revokedAt: numOrNull(r.revoked_at),
    revocationReason: numOrNull(r.revocation_reason),
  };
}

/** The values of a certificate record in CERTIFICATE_COLUMNS order. */
export function certificateValues(rec: CertificateRecord): unknown[] {
  return [
    rec.serial,
    rec.kind,
    rec.instanceId,
    rec.identityJson,
    rec.spkiSha256,
    bufOrNull(rec.ekPublic),
    rec.notBefore,
    rec.notAfter,
    rec.issuedAt,
    buf(rec.der),
    bufOrNull(rec.c509),
    rec.revokedAt,
    rec.revocationReason,
  ];
}

export function toActivation(r: Row): ActivationRecord {
  return {
    id: String(r.id),
    instanceId: String(r.instance_id),
    akPublic: bytes(r.ak_public),
    ekPublic: bytes(r.ek_public),
    secretDigest: bytes(r.secret_digest),
    csr: bytesOrNull(r.csr),
    format: String(r.format),
    expiresAt: num(r.expires_at),
  };
}

/** The values of an activation record in ACTIVATION_COLUMNS order. */
export function activationValues(rec: ActivationRecord): unknown[] {
  return [
    rec.id,
    rec.instanceId,
    buf(rec.akPublic),
    buf(rec.ekPublic),
    buf(rec.secretDigest),
    bufOrNull(rec.csr),
    rec.format,
    rec.expiresAt,
  ];
}

export function toCrl(r: Row): CrlRecord {
  return {
    number: num(r.number),
    thisUpdate: num(r.this_update),
    nextUpdate: num(r.next_update),
    der: bytes(r.der),
  };
}

/** `?, ?, ...` (SQLite) or `$1, $2, ...` (PostgreSQL) for `n` values. */
export function placeholders(n: number, style: 'sqlite' | 'postgres', from = 1): string {
  return Array.from({ length: n }, (_, i) => (style === 'sqlite' ? '?' : `$${i + from}`)).join(', ');
}
