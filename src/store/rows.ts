/**
 * Row <-> record mapping shared by both engines. PostgreSQL returns BIGINT as a string and BYTEA as a
 * Buffer; SQLite returns numbers and Buffers. Records hold plain numbers and plain Uint8Arrays.
 */
import { decodeAuditRow } from './audit-row.js';
import {
  type AuditEntry,
  type InstanceWithState,
  type JsonValue,
  NEW_LAUNCH_POLICIES,
  type NewLaunchPolicy,
  REGISTRY_TEES,
  type RegistryTee,
  type SealingKeyRecord,
} from './types.js';

export const INSTANCE_COLUMNS =
  'id, project, zone, instance_id, instance_name, host_data, policy, created_at, committed_counter, ' +
  'committed_digest, boot_id, boot_started_at, boot_lease_expires_at, boot_token_hash, boot_launch_id, ' +
  'new_launch, tee';

export const KEY_COLUMNS = 'instance_id, version, wrapped, kek_id, created_at';

export const AUDIT_COLUMNS =
  'seq, time, kind, instance, decision, reasons, evidence_digest, details, prev_hash, hash';

type Row = Record<string, unknown>;

export function num(v: unknown): number {
  const n = typeof v === 'number' ? v : Number(v as string | bigint);
  if (!Number.isSafeInteger(n)) throw new TypeError(`store returned a non-integer: ${String(v)}`);
  return n;
}

function numOrNull(v: unknown): number | null {
  return v === null || v === undefined ? null : num(v);
}

/** A plain Uint8Array copy (so values compare equal whichever engine produced them). */
export function bytes(v: unknown): Uint8Array {
  if (!(v instanceof Uint8Array)) throw new TypeError('store returned a non-binary value');
  return Uint8Array.from(v);
}

/** Binds a Uint8Array as a Buffer view (both drivers take Buffers for BLOB/BYTEA). */
export function buf(b: Uint8Array): Buffer {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

export function toInstance(r: Row): InstanceWithState {
  const bootId = r.boot_id as string | null;
  return {
    id: r.id as string,
    project: r.project as string,
    zone: r.zone as string,
    instanceId: r.instance_id as string,
    instanceName: r.instance_name as string,
    hostData: bytes(r.host_data),
    policy: JSON.parse(r.policy as string) as JsonValue,
    createdAt: num(r.created_at),
    committedCounter: numOrNull(r.committed_counter),
    committedDigest:
      r.committed_digest === null || r.committed_digest === undefined ? null : bytes(r.committed_digest),
    activeBoot:
      bootId === null
        ? null
        : {
            bootId,
            startedAt: num(r.boot_started_at),
            leaseExpiresAt: num(r.boot_lease_expires_at),
            tokenHash: bytes(r.boot_token_hash),
            launchId:
              r.boot_launch_id === null || r.boot_launch_id === undefined ? null : bytes(r.boot_launch_id),
          },
    newLaunch: newLaunchOf(r.new_launch),
    tee: registryTeeOf(r.tee),
  };
}

/** The stored new-launch policy; NULL (a row from before migration 4) is the default, `takeover`. */
function newLaunchOf(v: unknown): NewLaunchPolicy {
  if (v === null || v === undefined) return 'takeover';
  if (typeof v === 'string' && (NEW_LAUNCH_POLICIES as readonly string[]).includes(v))
    return v as NewLaunchPolicy;
  throw new TypeError(`store returned an unknown new_launch value: ${String(v).slice(0, 32)}`);
}

/** The TEE the instance is registered for (migration 5; its CHECK allows `snp` and `tdx`). */
function registryTeeOf(v: unknown): RegistryTee {
  if (typeof v === 'string' && (REGISTRY_TEES as readonly string[]).includes(v)) return v as RegistryTee;
  throw new TypeError(`store returned an unknown tee value: ${String(v).slice(0, 32)}`);
}

export function toKey(r: Row): SealingKeyRecord {
  return {
    instanceId: r.instance_id as string,
    version: num(r.version),
    wrapped: bytes(r.wrapped),
    kekId: r.kek_id as string,
    createdAt: num(r.created_at),
  };
}

/** An audit row, every column checked (audit-row.ts); throws AuditValueInvalid for a tampered value. */
export function toAudit(r: Row): AuditEntry {
  return decodeAuditRow(r);
}

/** The values of an audit entry in AUDIT_COLUMNS order. */
export function auditValues(e: AuditEntry): unknown[] {
  return [
    e.seq,
    e.time,
    e.kind,
    e.instance,
    e.decision,
    JSON.stringify(e.reasons),
    e.evidenceDigest,
    JSON.stringify(e.details),
    e.prevHash,
    e.hash,
  ];
}
