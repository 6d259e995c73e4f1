import { BindingMismatch } from '../../errors.js';
import { HASH_ALGS } from '../../formats/tpm/constants.js';
import type { EventLog } from '../../formats/tpm/eventlog/parse.js';
import { ctEqual, toHex } from '../../util/bytes.js';
import type { PcrBank } from './claims.js';
import { checkEventDigests, type EventDigestCheck } from './eventlog-digests.js';
import { type ReplayedBank, replayEventLog } from './eventlog-replay.js';

/**
 * An event log checked against PCR values a verified quote covers. Only events in `verifiedPcrs` are
 * evidence: their digests replay to quoted values. Events in PCRs the quote does not cover prove nothing.
 */
export interface VerifiedEventLog {
  readonly log: EventLog;
  readonly replayed: readonly ReplayedBank[];
  /** The quoted bank the log was compared in (the first quoted bank the log carries). */
  readonly hashAlg: number;
  /** PCRs the log extends whose replayed value equals the quoted one. */
  readonly verifiedPcrs: readonly number[];
  /** PCRs the log extends that the quote does not cover: their events are not evidence. */
  readonly unquotedPcrs: readonly number[];
  /** Per event: whether its digest is of its data (mismatches are flagged, not refused). */
  readonly digestChecks: readonly EventDigestCheck[];
}

/**
 * Replays a parsed event log and compares every PCR it extends with the quoted values, in every quoted bank
 * the log carries (TCG PC Client PFP rev 1.05 §3.3.4; the quote's PCRs must already be verified, e.g. by
 * verifyQuote). PCRs the log does not extend (runtime PCRs such as 10-15) are not compared.
 *
 * Throws BindingMismatch: `eventlog.no_common_bank` (no quoted bank is one the log carries),
 * `eventlog.pcr_mismatch` (a replayed PCR differs from its quoted value: the log is not the one that
 * produced the quote). Throws MalformedEvidence as replayEventLog does.
 */
export function verifyEventLog(log: EventLog, quoted: readonly PcrBank[]): VerifiedEventLog {
  const replayed = replayEventLog(log);
  const common = quoted.filter((q) => replayed.some((r) => r.hashAlg === q.hashAlg));
  if (common.length === 0) {
    throw new BindingMismatch(
      'eventlog.no_common_bank',
      `the quote covers no bank the event log carries (${replayed.map((r) => HASH_ALGS[r.hashAlg]?.name).join(', ')})`,
    );
  }
  const mismatches: string[] = [];
  const verified = new Set<number>();
  const extended = new Set<number>();
  for (const q of common) {
    const r = replayed.find((b) => b.hashAlg === q.hashAlg)!;
    for (const [pcr, value] of r.pcrs) {
      extended.add(pcr);
      const want = q.values.get(pcr);
      if (want === undefined) continue;
      if (ctEqual(value, want)) verified.add(pcr);
      else
        mismatches.push(
          `${HASH_ALGS[q.hashAlg]?.name}:${pcr} replays to ${toHex(value)}, quoted ${toHex(want)}`,
        );
    }
  }
  if (mismatches.length > 0) {
    throw new BindingMismatch(
      'eventlog.pcr_mismatch',
      `event log does not match the quote: ${mismatches.join('; ')}`,
    );
  }
  const sorted = (s: Iterable<number>) => [...s].sort((a, b) => a - b);
  return {
    log,
    replayed,
    hashAlg: common[0]!.hashAlg,
    verifiedPcrs: sorted(verified),
    unquotedPcrs: sorted([...extended].filter((p) => !verified.has(p))),
    digestChecks: checkEventDigests(log),
  };
}
