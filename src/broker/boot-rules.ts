import type { BootState, NewLaunchPolicy } from '../store/types.js';
import { ctEqual } from '../util/bytes.js';

/**
 * How an accepted release relates to the instance's active boot (docs/broker.md "Leases"):
 * - `new`: there was none;
 * - `expired`: its lease had run out; the new boot replaces it;
 * - `same_launch`: the evidence comes from the launch the active boot was released to (same REPORT_ID):
 *   a re-attestation of that boot (a Trustee client refreshing its token, a guest retrying after it
 *   refused an answer), not a second boot; the boot goes on with a fresh lease;
 * - `takeover`: another launch holds a live lease and the instance's new-launch policy is `takeover`: the
 *   new launch becomes the active boot and the other one is ended (its commit token no longer works);
 * - `unleased`: as `takeover` but under `allow`: the key is released, the active boot is left alone, and the
 *   new launch gets no boot of its own.
 */
export type BootStart = 'new' | 'expired' | 'same_launch' | 'takeover' | 'unleased';

export type BootRefusalReason = 'broker.rollback' | 'broker.state_ahead' | 'broker.clone';

export type BootDecision =
  | { readonly ok: true; readonly start: BootStart }
  | { readonly ok: false; readonly reason: BootRefusalReason };

/** What the guest states about its state file (both bound into REPORT_DATA by the wire layer). */
export interface StatedState {
  /** The counter in its state file header; null when it has no state. */
  readonly counter: number | null;
  /** SHA-256 of that sealed file; null when it has no state (or, from a caller without digests, unknown). */
  readonly digest: Uint8Array | null;
}

/**
 * The rollback and lease rules (docs/broker.md "Rollback and clone protection", "Leases"), as a pure
 * function of the instance's stored state, its new-launch policy, what the guest states, the launch id
 * of the evidence (SEV-SNP REPORT_ID; null when the evidence has none) and the time:
 * 1. a committed counter exists and the guest states none or a smaller one: rollback;
 * 2. the guest states the committed counter but another file than the one committed with it (its digest
 *    differs): rollback too. That file is a fork: a version written for the same counter by a boot whose
 *    commit never arrived, which the broker never accepted;
 * 3. the guest states a counter the broker never committed (larger, or any while none is committed):
 *    state ahead, i.e. forged or from a boot whose commit never reached the broker;
 * 4. no active boot, or one whose lease expired: a new boot;
 * 5. the active boot's own launch attests again: the same boot (whether or not its lease ran out);
 * 6. another launch holds a live lease: the new-launch policy decides (`refuse`: clone; `takeover`;
 *    `allow`: released without a lease).
 * A counter committed before digests were recorded (`committedDigest` null) is checked by counter only. A
 * boot or evidence without a launch id is never "the same launch".
 */
export function decideBoot(
  state: BootState,
  newLaunch: NewLaunchPolicy,
  stated: StatedState,
  launchId: Uint8Array | null,
  now: number,
): BootDecision {
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
  if (boot === null) return { ok: true, start: 'new' };
  const prior = boot.launchId ?? null;
  if (launchId !== null && prior !== null && ctEqual(launchId, prior))
    return { ok: true, start: 'same_launch' };
  if (now >= boot.leaseExpiresAt) return { ok: true, start: 'expired' };
  if (newLaunch === 'refuse') return { ok: false, reason: 'broker.clone' };
  return { ok: true, start: newLaunch === 'takeover' ? 'takeover' : 'unleased' };
}
