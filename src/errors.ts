/**
 * The error model. Every failure Vouchsafe reports is an {@link AttestationError} with a stable `code`
 * (the category a caller branches on) and a stable `reason` (the specific check that failed). Messages are
 * for people and may change; codes and reasons may not.
 */

export const ErrorCode = {
  /** Input bytes or text do not parse: truncated, oversized, wrong version, reserved bits set. */
  Malformed: 'ERR_MALFORMED',
  /** A signature over evidence or a certificate does not verify. */
  SignatureInvalid: 'ERR_SIGNATURE_INVALID',
  /** A certificate chain does not lead to a pinned root, or a certificate is expired, revoked or misshaped. */
  ChainInvalid: 'ERR_CHAIN_INVALID',
  /** Evidence and the certificate that signed it disagree (TCB, CHIP_ID). */
  BindingMismatch: 'ERR_BINDING_MISMATCH',
  /** Certificates, CRLs or other collateral could not be obtained (network, cache, offline mode). */
  CollateralUnavailable: 'ERR_COLLATERAL_UNAVAILABLE',
  /** Well-formed input that this version does not handle (an unknown product, algorithm, or TEE). */
  NotSupported: 'ERR_NOT_SUPPORTED',
  /** Verified evidence that policy does not accept; `failures` lists every failed check. */
  PolicyRejected: 'ERR_POLICY_REJECTED',
  /** The broker declined for a reason of its own: replayed challenge, rollback, clone, unknown instance. */
  Refused: 'ERR_REFUSED',
  /** A caller's arguments or configuration are unusable. */
  InvalidArgument: 'ERR_INVALID_ARGUMENT',
  /**
   * A peer we depend on could not be asked or did not answer usefully: the broker's API, a proxy backend,
   * the guest's channel to the proxy. Retry later. (Missing certificates or CRLs are CollateralUnavailable.)
   */
  Unavailable: 'ERR_UNAVAILABLE',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class AttestationError extends Error {
  readonly code: ErrorCode;
  /** A stable, specific reason such as `snp.signature_algo`; dotted, lower case. */
  readonly reason: string;

  constructor(code: ErrorCode, reason: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.reason = reason;
  }

  toJSON(): Record<string, unknown> {
    return { code: this.code, reason: this.reason, message: this.message };
  }
}

export class MalformedEvidence extends AttestationError {
  constructor(reason: string, message = 'input is malformed', options?: { cause?: unknown }) {
    super(ErrorCode.Malformed, reason, message, options);
  }
}

export class SignatureInvalid extends AttestationError {
  constructor(reason: string, message = 'signature does not verify', options?: { cause?: unknown }) {
    super(ErrorCode.SignatureInvalid, reason, message, options);
  }
}

export class ChainInvalid extends AttestationError {
  constructor(reason: string, message = 'certificate chain is not valid', options?: { cause?: unknown }) {
    super(ErrorCode.ChainInvalid, reason, message, options);
  }
}

export class BindingMismatch extends AttestationError {
  constructor(reason: string, message = 'evidence does not match its signing certificate') {
    super(ErrorCode.BindingMismatch, reason, message);
  }
}

export class CollateralUnavailable extends AttestationError {
  constructor(reason: string, message = 'collateral is unavailable', options?: { cause?: unknown }) {
    super(ErrorCode.CollateralUnavailable, reason, message, options);
  }
}

/**
 * A service is unreachable, timed out, or answered something that is not its protocol (a 5xx, a proxy's
 * error page, an oversized reply). Reasons name the service: `admin.*`, `native.*`, `proxy_kbs.*`,
 * `proxy.backend.*`, `guest.channel.*`.
 */
export class Unavailable extends AttestationError {
  constructor(reason: string, message = 'the service is unavailable', options?: { cause?: unknown }) {
    super(ErrorCode.Unavailable, reason, message, options);
  }
}

export class NotSupported extends AttestationError {
  constructor(reason: string, message = 'not supported') {
    super(ErrorCode.NotSupported, reason, message);
  }
}

export class InvalidArgument extends AttestationError {
  constructor(reason: string, message = 'invalid argument') {
    super(ErrorCode.InvalidArgument, reason, message);
  }
}

/** One failed policy check. `code` is stable (e.g. `snp.measurement`); expected/actual are display strings. */
export interface PolicyFailure {
  readonly code: string;
  readonly message: string;
  readonly expected?: string;
  readonly actual?: string;
}

export class PolicyRejected extends AttestationError {
  readonly failures: readonly PolicyFailure[];

  constructor(failures: readonly PolicyFailure[]) {
    super(
      ErrorCode.PolicyRejected,
      failures[0]?.code ?? 'policy.rejected',
      `policy rejected the evidence: ${failures.map((f) => f.code).join(', ')}`,
    );
    this.failures = failures;
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), failures: this.failures };
  }
}

export function isAttestationError(e: unknown): e is AttestationError {
  return e instanceof AttestationError;
}
