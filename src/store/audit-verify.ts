import { InvalidArgument } from '../errors.js';
import { GENESIS_HASH, hashAuditEntry, malformedAuditField } from './audit-hash.js';
import { AuditValueInvalid } from './audit-row.js';
import type { AuditEntry, AuditHead, Store } from './types.js';

export type AuditProblem =
  /** An entry's stored hash does not match its fields: the entry was modified. */
  | 'audit.hash'
  /** An entry's prevHash is not the previous entry's hash: an entry was deleted, inserted or reordered. */
  | 'audit.link'
  /** Sequence numbers are not 1, 2, 3, ...: an entry was deleted or renumbered. */
  | 'audit.sequence'
  /** A stored value is not of the shape the broker writes (type, JSON form, hex): the row was modified. */
  | 'audit.malformed'
  /** The head row does not name the last entry (or is unreadable): the tail was truncated or the head edited. */
  | 'audit.head'
  /** The chain is intact but shorter than the expected head: its tail was cut and the head row rewritten. */
  | 'audit.truncated'
  /** The entry at the expected head's seq has another hash: the log was rebuilt from there or earlier. */
  | 'audit.anchor';

export type AuditVerification =
  | { readonly ok: true; readonly entries: number; readonly headHash: string }
  | { readonly ok: false; readonly entries: number; readonly seq: number; readonly problem: AuditProblem };

/** Where a hash chain in the audit format (audit-hash.ts) is read from: pages in seq order, and the head row. */
export interface AuditChainSource {
  /** Up to `limit` entries with seq > `afterSeq`, in seq order. */
  readPage(afterSeq: number, limit: number): Promise<readonly AuditEntry[]>;
  head(): Promise<AuditHead>;
}

export interface AuditVerifyOptions {
  /** Entries read per page (default 1000). */
  readonly pageSize?: number;
  /**
   * A head recorded earlier (an intact result's `entries` and `headHash`), kept where whoever can write the
   * database cannot: the chain must still hold that entry with that hash. Detects a cut tail whose head row
   * was rewritten (`audit.truncated`) and a chain rebuilt at or before it (`audit.anchor`).
   */
  readonly expectHead?: AuditHead;
}

/**
 * Walks a whole hash chain in the audit format and recomputes every hash: the broker's audit log and the
 * CA's issuance log share it. Detects any modified (also to a value of the wrong type), deleted, inserted or
 * reordered entry, and a truncated tail unless the head row was rewritten to match; with
 * `opts.expectHead`, also that. Never throws for what is stored: every tampered value is a result with
 * `ok: false`, the `problem` and the `seq` where it is. `entries` counts the entries verified before the
 * problem (for `audit.truncated` and `audit.anchor`: the length of the intact chain). Errors of the store
 * itself (connection lost) are thrown.
 *
 * `opts` may be the page size alone (as before options existed).
 */
export async function verifyHashChain(
  source: AuditChainSource,
  opts: AuditVerifyOptions | number = {},
): Promise<AuditVerification> {
  const o = typeof opts === 'number' ? { pageSize: opts } : opts;
  const pageSize = o.pageSize ?? 1000;
  const expect = o.expectHead;
  if (expect) checkHead(expect);
  let expectedSeq = 1;
  let prevHash = GENESIS_HASH;
  let count = 0;
  let hashAtExpected = expect?.seq === 0 ? GENESIS_HASH : undefined;
  /** Entries still to be read one at a time: a page failed to decode, this finds the row it failed on. */
  let singles = 0;
  for (;;) {
    const limit = singles > 0 ? 1 : pageSize;
    let page: readonly AuditEntry[];
    try {
      page = await source.readPage(expectedSeq - 1, limit);
    } catch (e) {
      if (!(e instanceof AuditValueInvalid)) throw e;
      // The row is somewhere in this page: read the page again entry by entry to name it, and to count
      // the intact entries before it. When reading one entry fails, that entry is the one.
      if (limit === 1)
        return { ok: false, entries: count, seq: e.seq ?? expectedSeq, problem: 'audit.malformed' };
      singles = pageSize;
      continue;
    }
    if (singles > 0) singles--;
    for (const e of page) {
      if (malformedAuditField(e as unknown as Readonly<Record<string, unknown>>, true) !== undefined) {
        return {
          ok: false,
          entries: count,
          seq: Number.isSafeInteger(e.seq) ? e.seq : expectedSeq,
          problem: 'audit.malformed',
        };
      }
      if (e.seq !== expectedSeq) return { ok: false, entries: count, seq: e.seq, problem: 'audit.sequence' };
      if (e.prevHash !== prevHash) return { ok: false, entries: count, seq: e.seq, problem: 'audit.link' };
      if (hashAuditEntry(e) !== e.hash)
        return { ok: false, entries: count, seq: e.seq, problem: 'audit.hash' };
      prevHash = e.hash;
      if (expect && e.seq === expect.seq) hashAtExpected = e.hash;
      expectedSeq++;
      count++;
    }
    if (page.length < limit) break;
  }
  // A gap (1, 2, 4) shows up above as a sequence problem, because pages return seq > after in order.
  let head: AuditHead;
  try {
    head = await source.head();
  } catch (e) {
    if (!(e instanceof AuditValueInvalid)) throw e;
    return { ok: false, entries: count, seq: count, problem: 'audit.head' };
  }
  if (head.seq !== count || head.hash !== prevHash) {
    return { ok: false, entries: count, seq: head.seq, problem: 'audit.head' };
  }
  const intact = { ok: true, entries: count, headHash: prevHash } as const;
  return expect ? compareWithExpectedHead(intact, expect, hashAtExpected) : intact;
}

function checkHead(h: AuditHead): void {
  if (!Number.isSafeInteger(h.seq) || h.seq < 0 || !/^[0-9a-f]{64}$/.test(h.hash)) {
    throw new InvalidArgument(
      'audit.expect_head',
      'the expected head must be a seq >= 0 and 64 lower-case hex digits',
    );
  }
}

/**
 * The verdict on an intact chain given a head recorded earlier and the hash the chain holds at that head's
 * seq (undefined when it has no such entry): `audit.truncated` when the chain is shorter, `audit.anchor`
 * when that entry's hash differs, else the intact result. The one comparison, used by verifyHashChain and
 * by callers that learn the hash at the expected seq separately (the CLI over the admin API).
 */
export function compareWithExpectedHead(
  intact: { readonly ok: true; readonly entries: number; readonly headHash: string },
  expected: AuditHead,
  hashAtExpected: string | undefined,
): AuditVerification {
  checkHead(expected);
  if (intact.entries < expected.seq) {
    return { ok: false, entries: intact.entries, seq: expected.seq, problem: 'audit.truncated' };
  }
  if (hashAtExpected !== expected.hash) {
    return { ok: false, entries: intact.entries, seq: expected.seq, problem: 'audit.anchor' };
  }
  return intact;
}

/**
 * Parses an expected head as printed by `vouchsafe audit verify` (`seq:hash`, e.g.
 * `42:3f…` with 64 hex digits). Throws InvalidArgument `audit.expect_head`.
 */
export function parseAuditHead(text: string): AuditHead {
  const m = /^([0-9]{1,15}):([0-9a-fA-F]{64})$/.exec(text.trim());
  if (!m) throw new InvalidArgument('audit.expect_head', 'expected head must be <seq>:<64 hex digits>');
  const head = { seq: Number(m[1]), hash: m[2]!.toLowerCase() };
  checkHead(head);
  return head;
}

/** An intact chain's head as `seq:hash`, the form {@link parseAuditHead} reads. */
export function formatAuditHead(v: { readonly entries: number; readonly headHash: string }): string {
  return `${v.entries}:${v.headHash}`;
}

/**
 * Verifies the broker's audit chain ({@link verifyHashChain}). An attacker who can write the database can
 * rebuild a consistent chain or cut its tail and rewrite the head row: record the head (`seq:hash`) somewhere
 * they cannot write and pass it back as `expectHead` (docs/broker.md, "Audit log").
 */
export function verifyAuditChain(
  store: Store,
  opts: AuditVerifyOptions | number = {},
): Promise<AuditVerification> {
  return verifyHashChain({ readPage: (a, n) => store.readAudit(a, n), head: () => store.auditHead() }, opts);
}
