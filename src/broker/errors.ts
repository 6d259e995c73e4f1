import { AttestationError, ErrorCode } from '../errors.js';
import type { AuditDetailValue } from '../store/types.js';

export const REFUSED = ErrorCode.Refused;

/**
 * Stable reasons the broker refuses on. Each is written to the audit log with the refusal.
 * - `broker.challenge_unknown`: never issued, or already used (challenges are single use).
 * - `broker.challenge_expired`: issued but past its lifetime.
 * - `broker.report_data_mismatch`: REPORT_DATA is not what the wire layer computed from our challenge,
 *   the guest's key and its stated counter.
 * - `broker.unknown_instance`: no registered instance was issued this HOST_DATA.
 * - `broker.rollback`: the guest states an older state counter than the one committed (or none at all), or
 *   the committed counter with another state file than the one committed with it (a fork).
 * - `broker.state_ahead`: the guest states a counter the broker never committed.
 * - `broker.clone`: another launch of this instance holds an unexpired lease and the instance's new-launch
 *   policy is `refuse` (docs/broker.md "Leases"). A re-attestation of the same launch is never a clone.
 * - `broker.key_version_unknown`: the guest asked for a sealing-key version that does not exist.
 * - `broker.boot_unknown`: commit/heartbeat/end for a boot that is not the instance's active boot.
 * - `broker.commit_token`: the commit token does not match the active boot's.
 * - `broker.counter_mismatch`: a commit that does not move the counter forward.
 * - `broker.identity_unencodable`: the instance's identity does not fit the 0.2.0 answer (an instance
 *   registered before byte lengths were checked); nothing is released, so the log never says "released"
 *   for an answer that could not be sent.
 */
export type RefusalReason =
  | 'broker.challenge_unknown'
  | 'broker.challenge_expired'
  | 'broker.report_data_mismatch'
  | 'broker.unknown_instance'
  | 'broker.rollback'
  | 'broker.state_ahead'
  | 'broker.clone'
  | 'broker.key_version_unknown'
  | 'broker.boot_unknown'
  | 'broker.commit_token'
  | 'broker.counter_mismatch'
  | 'broker.identity_unencodable';

/** The broker declined a request for a reason of its own (not a parse, signature or policy failure). */
export class BrokerRefused extends AttestationError {
  declare readonly reason: RefusalReason;
  /**
   * The expected and actual values behind the refusal (committed vs. stated counter, the live boot a clone
   * ran into). They go to the refusal's audit entry only; the guest is told the code and reason.
   */
  readonly details: Readonly<Record<string, AuditDetailValue>>;

  constructor(
    reason: RefusalReason,
    message = `refused: ${reason}`,
    details: Readonly<Record<string, AuditDetailValue>> = {},
  ) {
    super(ErrorCode.Refused, reason, message);
    this.details = details;
  }
}
