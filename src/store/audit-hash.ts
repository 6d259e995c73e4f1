import { createHash } from 'node:crypto';
import type { AuditDetailValue, AuditEntry } from './types.js';

/** `prevHash` of the first entry. */
export const GENESIS_HASH = '0'.repeat(64);

/** Version tag of the canonical encoding; part of every hashed entry. */
const FORMAT = 'vouchsafe-audit-v1';

/**
 * The canonical encoding an entry's hash covers: a JSON array in fixed field order, details as [key, value]
 * pairs sorted by key. JSON.stringify is deterministic for arrays of strings, finite numbers, booleans and
 * null, which is all an entry holds (checked here, so an entry that could not round-trip is never hashed).
 */
export function encodeAuditEntry(e: Omit<AuditEntry, 'hash'>): string {
  const details = Object.keys(e.details)
    .sort()
    .map((k) => [k, checkDetail(k, e.details[k])] as const);
  for (const n of [e.seq, e.time]) {
    if (!Number.isSafeInteger(n)) throw new TypeError(`audit entry field is not an integer: ${n}`);
  }
  return JSON.stringify([
    FORMAT,
    e.seq,
    e.time,
    e.kind,
    e.instance,
    e.decision,
    [...e.reasons],
    e.evidenceDigest,
    details,
    e.prevHash,
  ]);
}

function checkDetail(key: string, v: AuditDetailValue | undefined): AuditDetailValue {
  if (v === undefined || (typeof v === 'number' && !Number.isFinite(v))) {
    throw new TypeError(`audit detail ${key} is not a JSON scalar`);
  }
  return v;
}

/** Hex SHA-256 of {@link encodeAuditEntry}. */
export function hashAuditEntry(e: Omit<AuditEntry, 'hash'>): string {
  return createHash('sha256').update(encodeAuditEntry(e), 'utf8').digest('hex');
}

/** The entry that follows `head`: next seq, linked to the head's hash, hashed. */
export function linkAuditEntry(
  head: { readonly seq: number; readonly hash: string },
  draft: Omit<AuditEntry, 'seq' | 'prevHash' | 'hash'>,
): AuditEntry {
  const unhashed = {
    seq: head.seq + 1,
    time: draft.time,
    kind: draft.kind,
    instance: draft.instance,
    decision: draft.decision,
    reasons: [...draft.reasons],
    evidenceDigest: draft.evidenceDigest,
    details: { ...draft.details },
    prevHash: head.hash,
  };
  return { ...unhashed, hash: hashAuditEntry(unhashed) };
}
