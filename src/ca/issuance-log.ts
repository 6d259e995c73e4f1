import { GENESIS_HASH, hashAuditEntry } from '../store/audit-hash.js';
import type { AuditVerification } from '../store/audit-verify.js';
import type { CaRepository } from './repository.js';

/**
 * The CA's issuance log is the broker's audit-log format (src/store/audit-hash.ts, `vouchsafe-audit-v1`):
 * every issued certificate, revocation, CRL and refusal is an entry {seq, time, kind, instance, decision,
 * reasons, evidenceDigest, details, prevHash, hash}, hash-chained from 64 zeros. Kinds the CA writes:
 * `ca.init`, `ca.issue_ek`, `ca.issue_ak`, `ca.activation_start`, `ca.revoke`, `ca.crl`.
 *
 * Recomputes every hash of the chain, as store/audit-verify.ts does for the broker: a modified, removed,
 * inserted or reordered entry, or a truncated tail (unless the head row was rewritten as well) is found.
 */
export async function verifyIssuanceLog(repo: CaRepository, pageSize = 1000): Promise<AuditVerification> {
  let expectedSeq = 1;
  let prevHash = GENESIS_HASH;
  let count = 0;
  for (;;) {
    const page = await repo.readLog(expectedSeq - 1, pageSize);
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
  const head = await repo.logHead();
  if (head.seq !== count || head.hash !== prevHash) {
    return { ok: false, entries: count, seq: head.seq, problem: 'audit.head' };
  }
  return { ok: true, entries: count, headHash: prevHash };
}
