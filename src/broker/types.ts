import type { PolicyFailure } from '../errors.js';
import type { SnpProduct, SnpReport } from '../formats/snp/index.js';
import type { JsonValue, PlatformIdentity, Store } from '../store/types.js';
import type { KekSource } from './kek.js';

/** What a verifier returns once the report's signature chains to a pinned AMD root. */
export interface VerifiedEvidence {
  readonly report: SnpReport;
  readonly product: SnpProduct;
  /** The verifier's digest of what it verified (hex). The audit log records its own SHA-256 of the report. */
  readonly evidenceDigest: string;
}

/**
 * Verifies evidence (parse + signature + chain). Injected: the broker holds no verification code. Must
 * throw an AttestationError for anything it does not accept.
 */
export type VerifyEvidence = (
  tee: 'snp',
  report: Uint8Array,
  certTable: Uint8Array | undefined,
) => Promise<VerifiedEvidence>;

/**
 * Appraises verified evidence against an instance's policy (opaque JSON to the broker). Returns every
 * failed check; an empty list accepts. Injected.
 */
export type Appraise = (
  report: SnpReport,
  product: SnpProduct,
  policy: JsonValue,
) => readonly PolicyFailure[] | Promise<readonly PolicyFailure[]>;

export interface BrokerOptions {
  readonly store: Store;
  readonly kek: KekSource;
  readonly verifyEvidence: VerifyEvidence;
  readonly appraise: Appraise;
  /** Clock in ms since the epoch (default Date.now). */
  readonly now?: () => number;
  /** Challenge lifetime in ms (default 60 000). */
  readonly challengeTtlMs?: number;
  /** Challenge size in bytes, at least 32 (default 32). */
  readonly challengeBytes?: number;
  /** Boot lease in ms: how long a boot counts as running without a heartbeat (default 300 000). */
  readonly leaseMs?: number;
  /** Called when a refusal could not be written to the audit log (the refusal still stands). */
  readonly onAuditFailure?: (err: unknown) => void;
}

export interface IssuedChallenge {
  readonly challenge: Uint8Array;
  readonly expiresAt: number;
}

export interface RegisterInstanceRequest extends PlatformIdentity {
  /** The instance's SNP appraisal policy: opaque JSON, handed to the injected appraiser. */
  readonly policy: JsonValue;
}

export interface InstanceIdentity extends PlatformIdentity {
  /** The broker's id for the instance. */
  readonly id: string;
}

/** An instance as the control plane sees it (no key material, no token hashes). */
export interface InstanceView extends InstanceIdentity {
  /** The HOST_DATA value the VMM must set at launch (32 bytes). */
  readonly hostData: Uint8Array;
  readonly policy: JsonValue;
  readonly createdAt: number;
  readonly committedCounter: number | null;
  readonly activeBoot: {
    readonly bootId: string;
    readonly startedAt: number;
    readonly leaseExpiresAt: number;
  } | null;
}

export interface ReleaseRequest {
  readonly tee: 'snp';
  readonly report: Uint8Array;
  readonly certTable?: Uint8Array;
  /** The challenge the broker issued, echoed by the guest. */
  readonly challenge: Uint8Array;
  /** The 64-byte REPORT_DATA the wire layer computed from the challenge, the guest key and the counter. */
  readonly expectedReportData: Uint8Array;
  /** The counter in the guest's state-file header; null when the guest has no state yet. */
  readonly stateCounter: number | null;
  /**
   * The sealing-key version the guest's state was sealed with, when it is not the newest (after a
   * rotation): that version is returned too, as `stateKey`, so the guest can reseal under the new one.
   */
  readonly stateKeyVersion?: number;
}

export interface ReleaseResult {
  /** The newest sealing key (32 bytes). The caller owns this buffer: wrap it for the guest, then zero it. */
  readonly key: Uint8Array;
  readonly keyVersion: number;
  /** Present when `stateKeyVersion` named an older version. Zero after use, like `key`. */
  readonly stateKey?: { readonly key: Uint8Array; readonly keyVersion: number };
  readonly instance: InstanceIdentity;
  readonly bootId: string;
  /** 32 random bytes; only its SHA-256 is stored. Needed for commit, heartbeat and end. */
  readonly commitToken: Uint8Array;
  readonly committedCounter: number | null;
  readonly leaseExpiresAt: number;
}
