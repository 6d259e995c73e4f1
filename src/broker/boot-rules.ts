import type { BootState } from '../store/types.js';
import { ctEqual } from '../util/bytes.js';

export type BootDecision =
  | { readonly ok: true; readonly replacedExpiredBoot: boolean }
  | { readonly ok: false; readonly reason: 'broker.rollback' | 'broker.state_ahead' | 'broker.clone' };

/** What the guest states about its state file (both bound into REPORT_DATA by the wire layer). */
export interface StatedState {
  /** The counter in its state file header; null when it has no state. */
  readonly counter: number | null;
  /** SHA-256 of that sealed file; null when it has no state (or, from a caller without digests, unknown). */
  readonly digest: Uint8Array | null;
}

/**
 * The rollback and clone rules (docs/broker.md, "Rollback and clone protection"), as a pure function of
 * the instance's stored state, what the guest states, and the time:
 * 1. a committed counter exists and the guest states none or a smaller one: rollback;
 * 2. the guest states the committed counter but another file than the one committed with it (its digest
 *    differs): rollback too. That file is a fork: a version written for the same counter by a boot whose
 *    commit never arrived, which the broker never accepted;
 * 3. the guest states a counter the broker never committed (larger, or any while none is committed):
 *    state ahead, i.e. forged or from a boot whose commit never reached the broker;
 * 4. another boot holds an unexpired lease: clone (concurrent boot);
 * 5. otherwise the boot may start (replacing a boot whose lease expired, if any).
 * A counter committed before digests were recorded (`committedDigest` null) is checked by counter only.
 */
export function decideBoot(state: BootState, stated: StatedState, now: number): BootDecision {
  const committed = state.committedCounter;
  const s = stated.counter;
  if (committed !== null && (s === null || s < committed)) return { ok: false, reason: 'broker.rollback' };
  if (committed !== null && s === committed && state.committedDigest) {
    if (!stated.digest || !ctEqual(stated.digest, state.committedDigest)) {
      return { ok: false, reason: 'broker.rollback' };
    }
  }
  if (s !== null && (committed === null || s > committed)) return { ok: false, reason: 'broker.state_ahead' };
  const boot = state.activeBoot;
  if (boot !== null && now < boot.leaseExpiresAt) return { ok: false, reason: 'broker.clone' };
  return { ok: true, replacedExpiredBoot: boot !== null };
}
