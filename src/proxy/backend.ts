import type { AttestationError } from '../errors.js';
import type { Dialect } from '../formats/aproxy/dialect.js';
import type { DialectBinding } from '../formats/aproxy/dialect-binding.js';
import type {
  AesGcmData,
  AttestationToken,
  EcPublicKey,
  NegotiationParam,
  ProtocolVersion,
  SnpEvidence,
} from '../formats/aproxy/types.js';
import type { PlatformIdentity } from '../formats/platform-identity.js';

/**
 * What the host proxy needs from whoever decides (the broker over HTTP, a KBS adapter, or a test double).
 * The proxy only frames, validates and relays; every decision and every secret is the backend's. The proxy
 * is untrusted in the design (design.md "Security model"), so a backend must not rely on it for any check:
 * it verifies the evidence, the challenge and the REPORT_DATA binding itself.
 *
 * Each call gets a {@link BackendContext} whose `signal` aborts when the proxy's backend timeout expires or
 * the proxy closes; a backend that ignores it is still cut off (the guest gets an error), but its work
 * continues in the background.
 */
export interface ProxyBackend {
  /** Step 1: a fresh challenge and the ordered REPORT_DATA params for this guest's protocol version. */
  negotiate(req: NegotiateInput, ctx: BackendContext): Promise<NegotiateResult>;
  /** Step 2: verify, decide, and on release wrap the secret to `key` (JWE ECDH-ES+A256KW/A256GCM). */
  attest(req: AttestInput, ctx: BackendContext): Promise<AttestationResult>;
  /** 0.2.0 only: the guest has durably written state version `counter`; record it (rollback/clone check). */
  commit(req: CommitInput, ctx: BackendContext): Promise<CommitResult>;
  /**
   * 0.2.0 Heartbeat: renew the boot's lease. Optional: a backend without it (e.g. a KBS, which has no
   * lease) makes the proxy answer ERR_NOT_SUPPORTED `proxy.backend.lease_unsupported`.
   */
  heartbeat?(req: LeaseInput, ctx: BackendContext): Promise<HeartbeatResult>;
  /** 0.2.0 End: end the boot (clean shutdown). Optional, as {@link heartbeat}. */
  end?(req: LeaseInput, ctx: BackendContext): Promise<EndResult>;
}

export interface BackendContext {
  /** Random per connection; appears in the proxy's logs. */
  readonly sessionId: string;
  /** The peer as the transport names it (`unix`, or `tcp:ADDR:PORT`); the host, not the guest, controls it. */
  readonly peer: string;
  readonly signal: AbortSignal;
}

export interface NegotiateInput {
  readonly tee: 'snp';
  readonly version: ProtocolVersion;
  /**
   * The listener's dialect (docs/protocol.md "Dialects"); undefined means `main`. A `pr1122` guest is told
   * a hash algorithm and payload format instead of params, so the result's `binding` (or params exactly
   * `[EcPublicKeyBytes, Challenge]`, i.e. SHA-512 RawBinary) must be expressible in it.
   */
  readonly dialect?: Dialect;
}

export interface NegotiateResult {
  readonly challenge: Uint8Array;
  /**
   * In the order REPORT_DATA hashes them. 0.1.0 allows `Challenge` and `EcPublicKeyBytes`; a 0.2.0 backend
   * that wants rollback protection also lists `StateCounter` (the guest library requires it in 0.2.0).
   */
  readonly params: readonly NegotiationParam[];
  /**
   * For a `pr1122` guest only: the binding the backend checks, when it is not SHA-512 over the params
   * (e.g. Trustee's SHA-384 JwsJson). Undefined: the params say it.
   */
  readonly binding?: DialectBinding;
}

export interface AttestInput {
  readonly tee: 'snp';
  readonly version: ProtocolVersion;
  readonly evidence: SnpEvidence;
  /** The challenge as the guest echoed it (the proxy has already checked it equals the negotiated one). */
  readonly challenge: Uint8Array;
  /** The guest's fresh P-521 key: wrap the secret to it. */
  readonly key: EcPublicKey;
  /** 0.2.0: the counter the guest's state file states, or null for no state. Undefined for 0.1.0 guests. */
  readonly stateCounter?: bigint | null;
  /** 0.2.0: SHA-256 of the stated state file, null exactly when `stateCounter` is. Undefined for 0.1.0. */
  readonly stateDigest?: Uint8Array | null;
  /**
   * 0.2.0, when the guest sent it: the sealing-key version its state is sealed under (null: none or not
   * known). Defined means the guest reads secret payload format 2, so the backend should send the current
   * key's version and, if this names an older one, that key too. Undefined: format 1 only.
   */
  readonly stateKeyVersion?: number | null;
}

/**
 * A release or a refusal. For a 0.1.0 guest, `ciphertext` is the secret itself sealed as a JWE and
 * `identity`/`signature` are dropped on the wire. For a 0.2.0 guest, `ciphertext` must seal a secret payload
 * (encodeSecretPayload: secret, boot id, commit token) and `signature` should be the broker's signature
 * (signAttestationResponse) over the response's signed content; a guest that pins the broker key rejects
 * a response without one. When the request stated `stateKeyVersion` (even null), the payload should be
 * format 2 (with the key version, and the state's older key after a rotation).
 */
export type AttestationResult =
  | {
      readonly outcome: 'released';
      readonly ciphertext: Uint8Array;
      readonly decryption: AesGcmData;
      readonly token?: AttestationToken | null;
      readonly identity?: PlatformIdentity | null;
      readonly signature?: Uint8Array | null;
    }
  | { readonly outcome: 'refused'; readonly error: RefusalError };

export interface CommitInput {
  readonly version: '0.2.0';
  readonly bootId: string;
  readonly commitToken: Uint8Array;
  readonly counter: bigint;
  /** SHA-256 of the sealed state file the guest wrote as version `counter`. */
  readonly stateDigest: Uint8Array;
  /** The challenge of this session's attestation; the commit acknowledgement signature covers it. */
  readonly challenge: Uint8Array;
}

export type CommitResult =
  | { readonly outcome: 'committed'; readonly signature?: Uint8Array | null }
  | { readonly outcome: 'refused'; readonly error: RefusalError };

/** 0.2.0 Heartbeat or End, as the guest sent it. */
export interface LeaseInput {
  readonly version: '0.2.0';
  readonly bootId: string;
  readonly commitToken: Uint8Array;
  /** The guest's fresh nonce; the acknowledgement signature (encodeLeaseSignedContent) covers it. */
  readonly nonce: Uint8Array;
}

export type HeartbeatResult =
  | {
      readonly outcome: 'renewed';
      /** ms since the Unix epoch, the broker's clock. */
      readonly leaseExpiresAt: number;
      readonly signature?: Uint8Array | null;
    }
  | { readonly outcome: 'refused'; readonly error: RefusalError };

export type EndResult =
  | { readonly outcome: 'ended'; readonly signature?: Uint8Array | null }
  | { readonly outcome: 'refused'; readonly error: RefusalError };

/** A refusal as the guest will see it: an AttestationError, or the same three fields. */
export type RefusalError =
  | AttestationError
  | { readonly code: string; readonly reason: string; readonly message: string };
