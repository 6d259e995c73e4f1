import type { PlatformIdentity } from '../platform-identity.js';

/**
 * The aproxy message model (COCONUT-SVSM libaproxy, protocol 0.1.0, reference svsm-protocol.md §2) plus the
 * Vouchsafe 0.2.0 extensions (docs/protocol.md). Byte fields are raw bytes here; the wire carries them as
 * standard base64 with padding. Field names are camelCase here; the wire keeps serde's names.
 */

/** A protocol version as the wire carries it: serde's `(u32, u32, u32)` tuple, a JSON array. */
export type VersionTuple = readonly [number, number, number];

/** The versions this implementation speaks. */
export type ProtocolVersion = '0.1.0' | '0.2.0';

export const VERSION_TUPLES: Readonly<Record<ProtocolVersion, VersionTuple>> = {
  '0.1.0': [0, 1, 0],
  '0.2.0': [0, 2, 0],
};

/** Maps a wire tuple to a version we speak, or undefined. */
export function versionFromTuple(t: VersionTuple): ProtocolVersion | undefined {
  if (t[0] === 0 && t[1] === 1 && t[2] === 0) return '0.1.0';
  if (t[0] === 0 && t[1] === 2 && t[2] === 0) return '0.2.0';
  return undefined;
}

/**
 * kbs_types `Tee`, serialized `rename_all = "lowercase"`. Only `snp` is served; the others parse (serde
 * would accept them) and are refused as not supported.
 */
export const KBS_TEES = [
  'azsnpvtpm',
  'aztdxvtpm',
  'nvidia',
  'sev',
  'sgx',
  'snp',
  'tdx',
  'cca',
  'csv',
  'se',
  'sample',
  'sampledevice',
] as const;
export type KbsTee = (typeof KBS_TEES)[number];

/**
 * libaproxy `NegotiationParam`, a unit enum serialized as its name. 0.2.0 adds (docs/protocol.md §6.1):
 * `Domain`, the fixed label {@link REPORT_DATA_DOMAIN_0_2_0} that keeps every 0.2.0 binding apart from any
 * 0.1.0 one; `StateCounter`, u64 little-endian of the guest's state counter, or eight 0xFF bytes for "no
 * state"; `StateDigest`, the SHA-256 of the sealed state file the guest states, or 32 zero bytes for none.
 */
export type NegotiationParam = 'Challenge' | 'EcPublicKeyBytes' | 'StateCounter' | 'Domain' | 'StateDigest';

/**
 * The bytes of the 0.2.0 `Domain` param: ASCII "VOUCHSAFE-APROXY-REPORT-DATA/0.2.0" and a 0x00. Its first
 * byte (0x56) can begin no 0.1.0 key encoding (a P-521 coordinate is below 2^521, so its 66-byte big-endian
 * form starts with 0x00 or 0x01); docs/protocol.md §6.1 argues why no 0.1.0 input can produce a 0.2.0 binding.
 */
export const REPORT_DATA_DOMAIN_0_2_0 = 'VOUCHSAFE-APROXY-REPORT-DATA/0.2.0';

/** Size of a state digest (SHA-256 of the sealed state file). */
export const STATE_DIGEST_SIZE = 32;

export interface NegotiationRequest {
  readonly version: VersionTuple;
  readonly tee: KbsTee;
}

export interface NegotiationResponse {
  /** The server nonce. */
  readonly challenge: Uint8Array;
  /** What REPORT_DATA hashes, in this order. */
  readonly params: readonly NegotiationParam[];
}

/** libaproxy `EcP256PublicKey` (misnamed: the curve is P-521): 66-byte big-endian coordinates. */
export interface EcPublicKey {
  readonly x: Uint8Array;
  readonly y: Uint8Array;
}

/** libaproxy `AttestationEvidence::Snp`. */
export interface SnpEvidence {
  readonly report: Uint8Array;
  /** The extended report's certificate table; the real SVSM never sends one. */
  readonly certsBuf?: Uint8Array;
}

export interface AttestationRequest {
  readonly tee: KbsTee;
  readonly evidence: SnpEvidence;
  readonly challenge: Uint8Array;
  readonly key: EcPublicKey;
  /**
   * 0.2.0 only: the counter the guest's state file header states, or null for no state. Undefined in 0.1.0
   * messages (the field does not exist there).
   */
  readonly stateCounter?: bigint | null;
  /**
   * 0.2.0 only: SHA-256 of the sealed state file whose counter is stated (null iff `stateCounter` is
   * null). Bound into REPORT_DATA; the broker compares it with the digest committed with that counter, so
   * a different file carrying the committed counter (a fork) is refused as a rollback.
   */
  readonly stateDigest?: Uint8Array | null;
  /**
   * 0.2.0 only, optional on the wire: the sealing-key version the guest's state file was sealed under (from
   * its header), null when it has no state or does not know the version. A guest that sends the field
   * (even as null) understands secret payload version 2; one that omits it gets version 1
   * (docs/protocol.md "Secret payload").
   */
  readonly stateKeyVersion?: number | null;
}

/** libaproxy `AesGcmData`: everything but the ciphertext needed to open a JWE ECDH-ES+A256KW/A256GCM. */
export interface AesGcmData {
  readonly epk: EcPublicKey;
  readonly wrappedCek: Uint8Array;
  /** ASCII of base64url(JWE protected header JSON), as kbs_types `generate_aad` produces it. */
  readonly aad: Uint8Array;
  readonly iv: Uint8Array;
  readonly tag: Uint8Array;
}

/** libaproxy `AttestationToken`, externally tagged (`{"Jwt":"..."}`). The SVSM ignores it. */
export type AttestationToken =
  | { readonly kind: 'Jwt'; readonly value: string }
  | { readonly kind: 'Cwt'; readonly value: string };

export interface AttestationResponse {
  readonly success: boolean;
  /** The AES-256-GCM ciphertext of the secret; absent when there is none (never `null` on the wire). */
  readonly secret?: Uint8Array;
  readonly decryption: AesGcmData | null;
  readonly token: AttestationToken | null;
  /** 0.2.0 only. */
  readonly identity?: PlatformIdentity | null;
  /** 0.2.0 only: the broker's ECDSA P-384 signature (IEEE P1363, 96 bytes) over the signed content. */
  readonly signature?: Uint8Array | null;
}

/** 0.2.0: what the proxy sends instead of dropping the connection. `code` is an ErrorCode value. */
export interface ErrorReply {
  readonly success: false;
  readonly error: { readonly code: string; readonly reason: string; readonly message: string };
}

/** 0.2.0: guest -> proxy -> backend after the guest has durably written its next state version. */
export interface CommitRequest {
  readonly bootId: string;
  readonly commitToken: Uint8Array;
  readonly counter: bigint;
  /** SHA-256 of the sealed state file (version `counter`) the guest wrote; the broker records it. */
  readonly stateDigest: Uint8Array;
}

export interface CommitResponse {
  readonly success: true;
  /** The broker's signature over the commit content, or null if the broker does not sign. */
  readonly signature: Uint8Array | null;
}

/** 0.2.0 lease operations: renew the boot's lease, or end the boot (clean shutdown). */
export type LeaseOp = 'heartbeat' | 'end';

/**
 * 0.2.0 Heartbeat / End (guest -> proxy -> backend), each the first and only request of its own connection.
 * It has an `op` field and no `tee`, so it can never be read as a NegotiationRequest (docs/protocol.md §6).
 */
export interface LeaseRequest {
  /** As on the wire; only [0,2,0] is served. */
  readonly version: VersionTuple;
  readonly op: LeaseOp;
  readonly bootId: string;
  readonly commitToken: Uint8Array;
  /** Fresh random bytes from the guest; the broker's acknowledgement signature covers them. */
  readonly nonce: Uint8Array;
}

export interface LeaseResponse {
  readonly success: true;
  readonly op: LeaseOp;
  /** Heartbeat: when the renewed lease expires (ms since the Unix epoch, the broker's clock). End: null. */
  readonly leaseExpiresAt: number | null;
  /** The broker's signature over the lease signed content, or null if the broker does not sign. */
  readonly signature: Uint8Array | null;
}

/** Byte lengths fixed by the protocol. */
export const P521_COORD_SIZE = 66;
export const WRAPPED_CEK_SIZE = 40;
export const GCM_IV_SIZE = 12;
export const GCM_TAG_SIZE = 16;
export const P384_SIGNATURE_SIZE = 96;
/** The 0.2.0 state counter value reserved for "no state" (encodes as eight 0xFF bytes). */
export const STATE_COUNTER_NONE = 0xffff_ffff_ffff_ffffn;
