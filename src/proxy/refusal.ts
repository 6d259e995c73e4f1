import { type AttestationError, ErrorCode, isAttestationError } from '../errors.js';
import type { RefusalError } from './backend.js';
import type { SessionOutcome } from './session.js';

/** What the guest is told: an ErrorCode value, a stable reason, and a message with no secrets. */
export interface Refusal {
  readonly code: string;
  readonly reason: string;
  readonly message: string;
  readonly outcome: SessionOutcome;
}

/** A backend call that ran past its deadline, or was cut because the proxy is closing. */
export class BackendTimeout extends Error {}

const CODES: readonly string[] = Object.values(ErrorCode);
const REASON = /^[a-z0-9_]+(?:\.[a-z0-9_]+)*$/;

/** True for a reason that may be passed on to a guest as is: dotted lower case, at most 128 characters. */
function passableReason(reason: string): boolean {
  return REASON.test(reason) && reason.length <= 128;
}

/** The guest is told this error's own code and reason. */
export function refusalOf(e: AttestationError, outcome: SessionOutcome): Refusal {
  return { code: e.code, reason: e.reason, message: e.message, outcome };
}

/** A refusal the backend chose: its code and reason pass through; an unknown code becomes a policy refusal. */
export function refusalFromBackend(err: RefusalError): Refusal {
  return {
    code: CODES.includes(err.code) ? err.code : ErrorCode.PolicyRejected,
    reason: passableReason(err.reason) ? err.reason : 'proxy.backend.refused',
    message: String(err.message ?? ''),
    outcome: 'refused',
  };
}

/** A backend that threw or timed out. The guest learns the category, not the backend's internals. */
export function backendFailure(e: unknown): Refusal {
  if (e instanceof BackendTimeout) {
    return {
      code: ErrorCode.Unavailable,
      reason: 'proxy.backend.timeout',
      message: 'the key broker did not answer in time',
      outcome: 'backend_error',
    };
  }
  // A typed outage (Unavailable from the one HTTP client: `native.*`, `proxy_kbs.*`; or collateral the
  // backend could not get): the guest learns its code and reason, and the session counts as a backend
  // error, not as a refusal.
  if (
    isAttestationError(e) &&
    (e.code === ErrorCode.Unavailable || e.code === ErrorCode.CollateralUnavailable)
  ) {
    return {
      code: e.code,
      reason: passableReason(e.reason) ? e.reason : 'proxy.backend.unavailable',
      message: 'the key broker is unavailable',
      outcome: 'backend_error',
    };
  }
  if (isAttestationError(e) && e.code !== ErrorCode.InvalidArgument) {
    return {
      code: e.code,
      reason: passableReason(e.reason) ? e.reason : 'proxy.backend.refused',
      message: 'refused by the key broker',
      outcome: 'refused',
    };
  }
  return {
    code: ErrorCode.Unavailable,
    reason: isAttestationError(e) ? 'proxy.backend.invalid_result' : 'proxy.backend.unavailable',
    message: 'the key broker is unavailable',
    outcome: 'backend_error',
  };
}

/** Log fields for an error: code and reason, or the error's class; never its data. */
export function describeError(e: unknown): Record<string, string> {
  if (isAttestationError(e)) return { code: e.code, reason: e.reason };
  if (e instanceof Error) return { error: e.name, detail: e.message.slice(0, 200) };
  return { error: typeof e };
}
