import { AttestationError, ErrorCode, type PolicyFailure, PolicyRejected } from '../errors.js';

/**
 * The one table that maps error codes to HTTP statuses (docs/api.md "Status codes"). Clients see only
 * `{code, reason, message, failures?}`: a stable category, a stable dotted reason, human text without
 * secrets, and for a policy refusal every failed check by code and message, never the values the policy
 * expected or the evidence had (see {@link errorResponse}).
 *
 * Choice: every way in which evidence fails to earn a key is 403 (the request was understood and is
 * refused), whatever the cause: a bad signature, a chain to an untrusted root, a TCB that contradicts its
 * certificate, a policy failure, a replayed challenge. The status says "refused"; `code` and `reason` say
 * why. Refusals that conflict with the instance's stored boot state (rollback, clone, a commit out of
 * order, a superseded boot) are 409, so a client can tell "this evidence is not acceptable" from "this
 * state is stale or already running elsewhere". Syntax is 400, missing collateral 503 (retry later),
 * unsupported input 501, a service the broker depends on unavailable 503.
 */
export const STATUS_BY_CODE: Readonly<Record<string, number>> = Object.freeze({
  [ErrorCode.Malformed]: 400,
  [ErrorCode.InvalidArgument]: 400,
  [ErrorCode.SignatureInvalid]: 403,
  [ErrorCode.ChainInvalid]: 403,
  [ErrorCode.BindingMismatch]: 403,
  [ErrorCode.PolicyRejected]: 403,
  [ErrorCode.Refused]: 403,
  [ErrorCode.CollateralUnavailable]: 503,
  [ErrorCode.Unavailable]: 503,
  [ErrorCode.NotSupported]: 501,
});

/** Reasons whose status differs from their code's (same table, finer grain). */
export const STATUS_BY_REASON: Readonly<Record<string, number>> = Object.freeze({
  'broker.rollback': 409,
  'broker.state_ahead': 409,
  'broker.clone': 409,
  'broker.counter_mismatch': 409,
  'broker.boot_unknown': 409,
  // The guest asks for a sealing-key version the instance does not have: its stored state and the registry
  // disagree (as for a rollback), not a refusal of the evidence.
  'broker.key_version_unknown': 409,
  'broker.identity_unencodable': 409,
  'api.rate_limited': 429,
  'broker.instance_not_found': 404,
  'credential.not_found': 404,
  'broker.instance_exists': 409,
  'api.not_found': 404,
  'api.admin.unauthorized': 401,
  'api.body_too_large': 413,
  'api.content_type': 415,
  'api.method_not_allowed': 405,
});

/** A code outside ErrorCode, for failures that are ours (a bug or an outage), never the caller's. */
export const INTERNAL_CODE = 'ERR_INTERNAL';

export interface ErrorBody {
  readonly code: string;
  readonly reason: string;
  readonly message: string;
  /** ERR_POLICY_REJECTED only: every failed check, without its expected and actual values. */
  readonly failures?: readonly { readonly code: string; readonly message: string }[];
}

/**
 * The HTTP status and the client-visible body for any thrown value. Untyped errors are 500 and say nothing.
 *
 * A policy refusal lists each failed check as `{code, message}` only. The `expected` and `actual` values of
 * a failure (the allowed measurements, a pinned CHIP_ID, TCB minimums) are not sent: the caller is anyone
 * holding a genuine report with the instance's HOST_DATA, which the host chooses and is not secret, and
 * the expected values would tell it what to aim for. The values go to the broker's log instead
 * ({@link errorLogFields}) and the audit log; the KBS answers with codes only for the same reason.
 */
export function errorResponse(e: unknown): { status: number; body: ErrorBody } {
  if (!(e instanceof AttestationError)) {
    return {
      status: 500,
      body: { code: INTERNAL_CODE, reason: 'api.internal', message: 'internal error' },
    };
  }
  const status = STATUS_BY_REASON[e.reason] ?? STATUS_BY_CODE[e.code] ?? 500;
  const body: ErrorBody = { code: e.code, reason: e.reason, message: e.message.slice(0, 1024) };
  if (e instanceof PolicyRejected) {
    return {
      status,
      body: {
        ...body,
        failures: e.failures.map((f) => ({ code: f.code, message: f.message })),
      },
    };
  }
  return { status, body };
}

/**
 * What the broker logs about a refusal it answers with `status`: the code and reason, and for a policy
 * refusal every failure with its expected and actual values (operators need them; clients do not get them).
 */
export function errorLogFields(
  e: AttestationError,
  status: number,
): { code: string; reason: string; status: number; failures?: readonly PolicyFailure[] } {
  return {
    code: e.code,
    reason: e.reason,
    status,
    ...(e instanceof PolicyRejected
      ? {
          failures: e.failures.map((f) => ({
            code: f.code,
            message: f.message,
            ...(f.expected !== undefined ? { expected: f.expected } : {}),
            ...(f.actual !== undefined ? { actual: f.actual } : {}),
          })),
        }
      : {}),
  };
}

/** An API-level refusal that is not an attestation decision (auth, routing, body size, content type). */
export class ApiError extends AttestationError {
  constructor(code: ErrorCode, reason: string, message: string) {
    super(code, reason, message);
  }
}
