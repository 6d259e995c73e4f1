import { type AuditVerification, type AuditVerifyOptions, verifyHashChain } from '../store/audit-verify.js';
import type { CaRepository } from '../store/ca-types.js';

/**
 * The CA's issuance log is the broker's audit-log format (src/store/audit-hash.ts, `vouchsafe-audit-v1`):
 * every issued certificate, revocation, CRL and refusal is an entry {seq, time, kind, instance, decision,
 * reasons, evidenceDigest, details, prevHash, hash}, hash-chained from 64 zeros. Kinds the CA writes:
 * `ca.init`, `ca.issue_ek`, `ca.issue_ak`, `ca.activation_start`, `ca.revoke`, `ca.crl`.
 *
 * Verified by the store's hash-chain walk (store/audit-verify.ts verifyHashChain), as the broker's log: a
 * modified, removed, inserted or reordered entry, or a truncated tail (unless the head row was rewritten as
 * well) is found. Whoever can write the database can also cut the tail and rewrite the head row, or rebuild a
 * consistent chain: `opts.expectHead`, a head recorded earlier where they cannot write, catches both
 * (`audit.truncated`, `audit.anchor`). `opts` may be the page size alone.
 */
export function verifyIssuanceLog(
  repo: CaRepository,
  opts: AuditVerifyOptions | number = {},
): Promise<AuditVerification> {
  return verifyHashChain({ readPage: (a, n) => repo.readLog(a, n), head: () => repo.logHead() }, opts);
}
