import type { EvidenceClaims } from '../evidence/types.js';
import type { PlatformIdentity } from '../formats/platform-identity.js';
import type { Appraise, VerifyEvidence } from '../policy/tees.js';
import type { JsonValue, NewLaunchPolicy, RegistryTee, Store } from '../store/types.js';
import type { KekSource } from './kek.js';

/**
 * Evidence verification and appraisal are injected (the broker holds no verification code): production
 * wires both from the TEE table (src/policy/tees.ts createTeeVerifier). The broker reads only the
 * TEE-independent claims (src/evidence/types.ts): the identity-bearing field to find the instance, the
 * report data for the binding, the evidence digest for the audit log.
 */
export type { EvidenceClaims, VerifiedEvidence } from '../evidence/types.js';
export type { Appraise, VerifyEvidence } from '../policy/tees.js';

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
  /**
   * Called for each guest refusal that names no real instance or boot (an unknown boot id, an unknown
   * challenge, evidence that never got as far as naming an instance). Those are not audited: anyone can
   * send them, and each would cost an fsync'd, hash-chained entry. Count them here (metrics).
   */
  readonly onUnattributedRefusal?: (kind: string, err: unknown) => void;
  /**
   * Called on each release as soon as the evidence has named a registered instance (after verification,
   * before appraisal and the audit entry); may throw to turn the release away, e.g. a per-instance rate
   * limit (src/api/rate-limits.ts). Its refusal is not audited: a flood of them is what it stops.
   */
  readonly admitInstance?: (instanceId: string) => void;
}

export interface IssuedChallenge {
  readonly challenge: Uint8Array;
  readonly expiresAt: number;
}

export interface RegisterInstanceRequest extends PlatformIdentity {
  /** The instance's SNP appraisal policy: opaque JSON, handed to the injected appraiser. */
  readonly policy: JsonValue;
  /** What a new launch does during another launch's live lease (docs/broker.md "Leases"); default `takeover`. */
  readonly newLaunch?: NewLaunchPolicy;
  /**
   * The 32-byte identity value to register instead of a random HOST_DATA, for evidence whose identity field
   * the host cannot set: `az-snp-vtpm` names a VM by SHA-256 of its vmUniqueId (src/evidence/az-snp-vtpm
   * azureVmIdentity; docs/kbs.md "Azure"). Absent: the broker draws 32 random bytes, as for SEV-SNP.
   */
  readonly hostData?: Uint8Array;
  /**
   * The TEE the instance runs on, whose identity field names it: `snp` (default: HOST_DATA, 32 bytes; also
   * `az-snp-vtpm`) or `tdx` (MRCONFIGID, 48 bytes; `hostData` then gives a 48-byte value).
   */
  readonly tee?: RegistryTee;
}

/** An instance the broker has registered: its platform identity and the broker's id for it. */
export interface RegisteredInstance extends PlatformIdentity {
  /** The broker's id for the instance. */
  readonly id: string;
}

/** An instance as the control plane sees it (no key material, no token hashes). */
export interface InstanceView extends RegisteredInstance {
  /** The TEE the instance is registered for. */
  readonly tee: RegistryTee;
  /** The name of its identity field: `HOST_DATA` (snp) or `MRCONFIGID` (tdx). */
  readonly identityField: string;
  /** The identity value the VMM must set at launch: HOST_DATA (32 bytes) or MRCONFIGID (48 bytes, tdx). */
  readonly hostData: Uint8Array;
  readonly policy: JsonValue;
  readonly createdAt: number;
  /** What a new launch does during another launch's live lease (docs/broker.md "Leases"). */
  readonly newLaunch: NewLaunchPolicy;
  readonly committedCounter: number | null;
  readonly activeBoot: {
    readonly bootId: string;
    readonly startedAt: number;
    readonly leaseExpiresAt: number;
    /** The launch it was released to (SEV-SNP REPORT_ID, hex); null when unknown. */
    readonly launchId: string | null;
  } | null;
}

export interface ReleaseRequest {
  /** A TEE name of src/policy/tees.ts (`snp`). */
  readonly tee: string;
  /** The evidence (SEV-SNP: the attestation report). */
  readonly report: Uint8Array;
  /** Collateral the host sent with it (SEV-SNP: the certificate table). */
  readonly certTable?: Uint8Array;
  /** The challenge the broker issued, echoed by the guest. */
  readonly challenge: Uint8Array;
  /** The 64-byte REPORT_DATA the wire layer computed from the challenge, the guest key and the counter. */
  readonly expectedReportData: Uint8Array;
  /** The counter in the guest's state-file header; null when the guest has no state yet. */
  readonly stateCounter: number | null;
  /**
   * SHA-256 of the sealed state file whose counter is stated (bound into REPORT_DATA by the wire layer).
   * Required with a non-null `stateCounter`; compared with the digest committed with that counter.
   */
  readonly stateDigest?: Uint8Array | null;
  /**
   * The sealing-key version the guest's state was sealed with, when it is not the newest (after a
   * rotation): that version is returned too, as `stateKey`, so the guest can reseal under the new one.
   */
  readonly stateKeyVersion?: number;
  /**
   * Called once, when the evidence is verified and bound to this request (its report data matched, step 3
   * of docs/broker.md "Release flow") and before the decision's store transaction: work the answer will
   * need that only a genuine request should cost (the JWE's key agreement) may start here and run while
   * the broker decides. Must not throw.
   */
  readonly onBound?: () => void;
}

export interface ReleaseResult {
  /** The newest sealing key (32 bytes). The caller owns this buffer: wrap it for the guest, then zero it. */
  readonly key: Uint8Array;
  readonly keyVersion: number;
  /** Present when `stateKeyVersion` named an older version. Zero after use, like `key`. */
  readonly stateKey?: { readonly key: Uint8Array; readonly keyVersion: number };
  readonly instance: RegisteredInstance;
  /**
   * The instance's policy this release was appraised against: read under the decision's lock, so it is the
   * one in force when the release committed (a KBS token describes its appraisal from it).
   */
  readonly policy: JsonValue;
  /**
   * The boot: the active one (kept for a re-attestation of the same launch), or under the `allow`
   * new-launch policy with another launch live, an id that names no stored boot (commit, heartbeat and end
   * with it are refused `broker.boot_unknown`).
   */
  readonly bootId: string;
  /** 32 random bytes; only its SHA-256 is stored. Needed for commit, heartbeat and end. */
  readonly commitToken: Uint8Array;
  readonly committedCounter: number | null;
  /** When the lease runs out without a heartbeat (equal to the release time when no lease was started). */
  readonly leaseExpiresAt: number;
  /** The claims of the verification this release rested on (for attestation tokens: no second verification). */
  readonly evidence: EvidenceClaims;
}
