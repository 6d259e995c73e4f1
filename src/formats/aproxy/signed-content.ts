import { InvalidArgument } from '../../errors.js';
import type { PlatformIdentity } from '../platform-identity.js';
import { BytesBuilder } from './bytes-builder.js';
import type { AesGcmData, EcPublicKey, LeaseOp } from './types.js';
import { STATE_COUNTER_NONE } from './types.js';

/**
 * The bytes the broker signs (ECDSA P-384, SHA-384, IEEE P1363 r||s) so that a 0.2.0 guest that pins the
 * broker's public key knows the secret came from that broker and was made for this request (docs/protocol.md
 * "Broker signature"). Canonical, not JSON: a fixed domain string, then every field as
 * `lp(x) = u32le(len(x)) || x` in a fixed order, so no two different responses share signed bytes.
 *
 *   "VOUCHSAFE-APROXY-RESPONSE-SIG/2" 0x00
 *   lp(challenge) lp(key.x) lp(key.y)
 *   lp(epk.x) lp(epk.y) lp(wrapped_cek) lp(aad) lp(iv) lp(tag) lp(secret ciphertext)
 *   0x00                                    -- no identity, or
 *   0x01 lp(project) lp(zone) lp(instanceId) lp(instanceName)   -- UTF-8
 *   u64le(stateCounter)                     -- the counter the guest stated; 0xFF x 8 for none
 *   lp(stateDigest)                         -- the state digest it stated; empty for none
 * (/2: the state digest was added with the state-fork fix; /1 signed no digest.)
 */
export const RESPONSE_SIG_DOMAIN = 'VOUCHSAFE-APROXY-RESPONSE-SIG/2';
export const COMMIT_SIG_DOMAIN = 'VOUCHSAFE-APROXY-COMMIT-SIG/2';
export const LEASE_SIG_DOMAIN = 'VOUCHSAFE-APROXY-LEASE-SIG/1';
/** The op byte of the lease signed content. */
export const LEASE_OP_CODES: Readonly<Record<LeaseOp, number>> = { heartbeat: 1, end: 2 };

export interface ResponseSignedFields {
  readonly challenge: Uint8Array;
  /** The guest's key from the AttestationRequest. */
  readonly key: EcPublicKey;
  readonly decryption: AesGcmData;
  /** The `secret` field: the AES-256-GCM ciphertext. */
  readonly ciphertext: Uint8Array;
  readonly identity: PlatformIdentity | null;
  readonly stateCounter: bigint | null;
  readonly stateDigest: Uint8Array | null;
}

export function encodeResponseSignedContent(f: ResponseSignedFields): Uint8Array {
  const b = new BytesBuilder()
    .raw(Buffer.from(RESPONSE_SIG_DOMAIN, 'ascii'))
    .u8(0)
    .lp(f.challenge)
    .lp(f.key.x)
    .lp(f.key.y)
    .lp(f.decryption.epk.x)
    .lp(f.decryption.epk.y)
    .lp(f.decryption.wrappedCek)
    .lp(f.decryption.aad)
    .lp(f.decryption.iv)
    .lp(f.decryption.tag)
    .lp(f.ciphertext);
  if (f.identity === null) b.u8(0);
  else {
    b.u8(1)
      .lpString(f.identity.project)
      .lpString(f.identity.zone)
      .lpString(f.identity.instanceId)
      .lpString(f.identity.instanceName);
  }
  return b
    .u64le(f.stateCounter === null ? STATE_COUNTER_NONE : f.stateCounter)
    .lp(f.stateDigest ?? new Uint8Array(0))
    .build();
}

/**
 * The bytes the broker signs to acknowledge a commit:
 *   "VOUCHSAFE-APROXY-COMMIT-SIG/2" 0x00 lp(challenge) lp(bootId UTF-8) u64le(counter) lp(stateDigest)
 * The challenge ties the acknowledgement to this session's attestation; the digest says which state file
 * the broker recorded with the counter.
 */
export function encodeCommitSignedContent(f: {
  readonly challenge: Uint8Array;
  readonly bootId: string;
  readonly counter: bigint;
  readonly stateDigest: Uint8Array;
}): Uint8Array {
  return new BytesBuilder()
    .raw(Buffer.from(COMMIT_SIG_DOMAIN, 'ascii'))
    .u8(0)
    .lp(f.challenge)
    .lpString(f.bootId)
    .u64le(f.counter)
    .lp(f.stateDigest)
    .build();
}

/**
 * The bytes the broker signs to acknowledge a Heartbeat or an End (docs/protocol.md "Broker signature"):
 *   "VOUCHSAFE-APROXY-LEASE-SIG/1" 0x00 u8(op: 1 heartbeat, 2 end) lp(nonce) lp(bootId UTF-8)
 *   u64le(leaseExpiresAt; 0 for end)
 * The guest's fresh nonce makes each acknowledgement single use: a proxy cannot replay an old "renewed" to
 * hide that the boot was superseded.
 */
export function encodeLeaseSignedContent(f: {
  readonly op: LeaseOp;
  readonly nonce: Uint8Array;
  readonly bootId: string;
  readonly leaseExpiresAt: number | null;
}): Uint8Array {
  const at = f.leaseExpiresAt ?? 0;
  if (!(f.op in LEASE_OP_CODES) || !Number.isSafeInteger(at) || at < 0) {
    throw new InvalidArgument('aproxy.encode.lease', 'lease signed content: op or leaseExpiresAt');
  }
  return new BytesBuilder()
    .raw(Buffer.from(LEASE_SIG_DOMAIN, 'ascii'))
    .u8(0)
    .u8(LEASE_OP_CODES[f.op])
    .lp(f.nonce)
    .lpString(f.bootId)
    .u64le(BigInt(at))
    .build();
}
