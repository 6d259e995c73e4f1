import { MalformedEvidence } from '../errors.js';
import { malformedAuditField } from './audit-hash.js';
import type { AuditEntry, AuditHead } from './types.js';

/**
 * Decoding of audit-log rows read back from a store (both engines, and every log in the audit format).
 * Nothing read back is trusted to have the type its column promises: someone with write access to the
 * database can put any value in any column (SQLite keeps a REAL or TEXT in an INTEGER column), and a value
 * the broker never writes must come out as a typed error that names the row, never as a TypeError or
 * SyntaxError deep in a caller. verifyHashChain (audit-verify.ts) turns that error into
 * `{ok: false, problem: 'audit.malformed', seq}`.
 */

type Row = Readonly<Record<string, unknown>>;

/**
 * A stored audit value the broker never writes (wrong type, JSON that does not parse or is not in the form
 * it was written in, a hash that is not hex): the database was changed outside the broker. MalformedEvidence
 * (`ERR_MALFORMED`), reason `audit.value_invalid`; `seq` is the row's seq when that column itself decodes.
 */
export class AuditValueInvalid extends MalformedEvidence {
  readonly seq: number | undefined;
  readonly column: string;

  constructor(seq: number | undefined, column: string) {
    super(
      'audit.value_invalid',
      `audit entry ${seq ?? '(unreadable seq)'}: ${column} holds a value the broker never writes`,
    );
    this.seq = seq;
    this.column = column;
  }
}

const COLUMN: Readonly<Record<keyof AuditEntry, string>> = {
  seq: 'seq',
  time: 'time',
  kind: 'kind',
  instance: 'instance',
  decision: 'decision',
  reasons: 'reasons',
  evidenceDigest: 'evidence_digest',
  details: 'details',
  prevHash: 'prev_hash',
  hash: 'hash',
};

/**
 * An integer column: a number (SQLite), a decimal string (PostgreSQL returns BIGINT as text) or a bigint,
 * as a safe integer; anything else is returned unchanged for the shape check to refuse.
 */
function integer(v: unknown): unknown {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint')
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  if (typeof v === 'string' && /^-?[0-9]{1,16}$/.test(v)) return Number(v);
  return v;
}

/**
 * A JSON text column, parsed. It must be exactly the text the broker wrote (JSON.stringify of the parsed
 * value): the hash covers values, not text, so an edit that only changes spacing or escapes would
 * otherwise go unnoticed. undefined (refused by the shape check) when it is not.
 */
function json(v: unknown): unknown {
  if (typeof v !== 'string') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(v);
  } catch {
    return undefined;
  }
  return JSON.stringify(parsed) === v ? parsed : undefined;
}

/**
 * One `audit_log` row (columns of rows.ts AUDIT_COLUMNS) as an AuditEntry, every column checked by
 * {@link malformedAuditField}. Throws {@link AuditValueInvalid} naming the first column that is not what
 * the broker writes.
 */
export function decodeAuditRow(row: Row): AuditEntry {
  // Drivers always return an object; anything else decodes as a row whose every column is missing.
  const r: Row = typeof row === 'object' && row !== null ? row : {};
  const seq = integer(r.seq);
  const entry = {
    seq,
    time: integer(r.time),
    kind: r.kind,
    instance: r.instance ?? null,
    decision: r.decision,
    reasons: json(r.reasons),
    evidenceDigest: r.evidence_digest ?? null,
    details: json(r.details),
    prevHash: r.prev_hash,
    hash: r.hash,
  };
  const bad = malformedAuditField(entry, true);
  if (bad !== undefined) {
    const knownSeq = typeof seq === 'number' && Number.isSafeInteger(seq) ? seq : undefined;
    throw new AuditValueInvalid(knownSeq, COLUMN[bad]);
  }
  return entry as AuditEntry;
}

/**
 * The `audit_head` row (seq, hash). Throws {@link AuditValueInvalid} (column `audit_head.seq` or
 * `audit_head.hash`) when the row is missing or holds a value the broker never writes.
 */
export function decodeAuditHead(r: Row | undefined): AuditHead {
  const seq = integer(r?.seq);
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) {
    throw new AuditValueInvalid(undefined, 'audit_head.seq');
  }
  const hash = r?.hash;
  if (typeof hash !== 'string' || !/^[0-9a-f]{64}$/.test(hash)) {
    throw new AuditValueInvalid(seq, 'audit_head.hash');
  }
  return { seq, hash };
}
