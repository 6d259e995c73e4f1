import { GENESIS_HASH, hashAuditEntry } from './audit-hash.js';
import type { AuditEntry, AuditHead, Store } from './types.js';

export type AuditProblem =
  /** An entry's stored hash does not match its fields: the entry was modified. */
  | 'audit.hash'
  /** An entry's prevHash is not the previous entry's hash: an entry was deleted, inserted or reordered. */
  | 'audit.link'
  /** Sequence numbers are not 1, 2, 3, ...: an entry was deleted or renumbered. */
  | 'audit.sequence'
  /** The head row does not name the last entry: the tail was truncated or the head edited. */
  | 'audit.head';

export type AuditVerification =
  | { readonly ok: true; readonly entries: number; readonly headHash: string }
  | { readonly ok: false; readonly entries: number; readonly seq: number; readonly problem: AuditProblem };

/** Where a hash chain in the audit format (audit-hash.ts) is read from: pages in seq order, and the head row. */
export interface AuditChainSource {
  /** Up to `limit` entries with seq > `afterSeq`, in seq order. */
  readPage(afterSeq: number, limit: number): Promise<readonly AuditEntry[]>;
  head(): Promise<AuditHead>;
}

/**
 * Walks a whole hash chain in the audit format and recomputes every hash: the broker's audit log and the
 * CA's issuance log share it. Detects any modified, deleted, inserted or reordered entry, and a truncated
 * tail unless the head row was rewritten to match.
 */
export async function verifyHashChain(source: AuditChainSource, pageSize = 1000): Promise<AuditVerification> {
  let expectedSeq = 1;
  let prevHash = GENESIS_HASH;
  let count = 0;
  for (;;) {
    const page = await source.readPage(expectedSeq - 1, pageSize);
    for (const e of page) {
      if (e.seq !== expectedSeq) return { ok: false, entries: count, seq: e.seq, problem: 'audit.sequence' };
      if (e.prevHash !== prevHash) return { ok: false, entries: count, seq: e.seq, problem: 'audit.link' };
      let hash: string;
      try {
        hash = hashAuditEntry(e);
      } catch {
        return { ok: false, entries: count, seq: e.seq, problem: 'audit.hash' };
      }
      if (hash !== e.hash) return { ok: false, entries: count, seq: e.seq, problem: 'audit.hash' };
      prevHash = e.hash;
      expectedSeq++;
      count++;
    }
    if (page.length < pageSize) break;
  }
  // A gap (1, 2, 4) shows up above as a sequence problem, because pages return seq > after in order.
  const head = await source.head();
  if (head.seq !== count || head.hash !== prevHash) {
    return { ok: false, entries: count, seq: head.seq, problem: 'audit.head' };
  }
  return { ok: true, entries: count, headHash: prevHash };
}

/**
 * Verifies the broker's audit chain ({@link verifyHashChain}). An attacker who can write the database can
 * rebuild a consistent chain, so for that threat export `headHash` to somewhere they cannot write
 * (docs/broker.md, "Audit log").
 */
export function verifyAuditChain(store: Store, pageSize = 1000): Promise<AuditVerification> {
  return verifyHashChain(
    { readPage: (a, n) => store.readAudit(a, n), head: () => store.auditHead() },
    pageSize,
  );
}
