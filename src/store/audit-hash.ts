import { createHash } from 'node:crypto';
import type { AuditEntry } from './types.js';

/** `prevHash` of the first entry. */
export const GENESIS_HASH = '0'.repeat(64);

/** Version tag of the canonical encoding; part of every hashed entry. */
const FORMAT = 'vouchsafe-audit-v1';

/** The largest time (ms since the epoch) a Date can hold (ECMA-262 "Time Values and Time Range"). */
const MAX_TIME = 8_640_000_000_000_000;
const HEX64 = /^[0-9a-f]{64}$/;

const isHex64 = (v: unknown): boolean => typeof v === 'string' && HEX64.test(v);

function isDetails(v: unknown): boolean {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  if (proto !== Object.prototype && proto !== null) return false;
  return Object.values(v).every(
    (x) =>
      x === null ||
      typeof x === 'string' ||
      typeof x === 'boolean' ||
      (typeof x === 'number' && Number.isFinite(x)),
  );
}

/**
 * The first field of an audit entry that is not of the shape the broker writes, or undefined when every
 * field is: seq an integer >= 1, time an integer a Date can hold, kind a string, instance a string or null,
 * decision 'accept' or 'refuse', reasons an array of strings, evidenceDigest null or 64 lower-case hex
 * digits, details a plain object of JSON scalars (finite numbers), prevHash (and, with `withHash`, hash) 64
 * lower-case hex digits. The one shape check, applied when an entry is written (encodeAuditEntry) and when
 * one is read back (audit-row.ts, audit-verify.ts), so that nothing written can fail to read and nothing
 * read is trusted to have the types its column promises.
 */
export function malformedAuditField(
  e: Readonly<Record<string, unknown>>,
  withHash: boolean,
): keyof AuditEntry | undefined {
  const { seq, time } = e;
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) return 'seq';
  if (typeof time !== 'number' || !Number.isSafeInteger(time) || time < 0 || time > MAX_TIME) return 'time';
  if (typeof e.kind !== 'string') return 'kind';
  if (e.instance !== null && typeof e.instance !== 'string') return 'instance';
  if (e.decision !== 'accept' && e.decision !== 'refuse') return 'decision';
  if (!Array.isArray(e.reasons) || !e.reasons.every((r) => typeof r === 'string')) return 'reasons';
  if (e.evidenceDigest !== null && !isHex64(e.evidenceDigest)) return 'evidenceDigest';
  if (!isDetails(e.details)) return 'details';
  if (!isHex64(e.prevHash)) return 'prevHash';
  if (withHash && !isHex64(e.hash)) return 'hash';
  return undefined;
}

/**
 * The canonical encoding an entry's hash covers: a JSON array in fixed field order, details as [key, value]
 * pairs sorted by key. JSON.stringify is deterministic for arrays of strings, finite numbers, booleans and
 * null, which is all an entry holds (checked here by {@link malformedAuditField}, so an entry that could not
 * round-trip is never hashed). Throws TypeError for a malformed entry.
 */
export function encodeAuditEntry(e: Omit<AuditEntry, 'hash'>): string {
  const bad = malformedAuditField(e as unknown as Readonly<Record<string, unknown>>, false);
  if (bad !== undefined) throw new TypeError(`audit entry field ${bad} is not well-formed`);
  const details = Object.keys(e.details)
    .sort()
    .map((k) => [k, e.details[k]] as const);
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
