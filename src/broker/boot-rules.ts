import type { BootState } from '../store/types.js';

export type BootDecision =
  | { readonly ok: true; readonly replacedExpiredBoot: boolean }
  | { readonly ok: false; readonly reason: 'broker.rollback' | 'broker.state_ahead' | 'broker.clone' };

/**
 * The rollback and clone rules (docs/broker.md, "Rollback and clone protection"), as a pure function of
 * the instance's stored state, the counter the guest states (bound into REPORT_DATA), and the time:
 * 1. a committed counter exists and the guest states none or a smaller one: rollback;
 * 2. the guest states a counter the broker never committed (larger, or any while none is committed):
 *    state ahead, i.e. forged or from a boot whose commit never reached the broker;
 * 3. another boot holds an unexpired lease: clone (concurrent boot);
 * 4. otherwise the boot may start (replacing a boot whose lease expired, if any).
 */
export function decideBoot(state: BootState, stated: number | null, now: number): BootDecision {
  const committed = state.committedCounter;
  if (committed !== null && (stated === null || stated < committed))
    return { ok: false, reason: 'broker.rollback' };
  if (stated !== null && (committed === null || stated > committed))
    return { ok: false, reason: 'broker.state_ahead' };
  const boot = state.activeBoot;
  if (boot !== null && now < boot.leaseExpiresAt) return { ok: false, reason: 'broker.clone' };
  return { ok: true, replacedExpiredBoot: boot !== null };
}
