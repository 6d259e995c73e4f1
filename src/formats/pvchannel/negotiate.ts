import { MalformedEvidence } from '../../errors.js';
import { Reader, Writer } from '../reader.js';
import { PV_FEATURES_DEFINED } from './constants.js';

/** NEGOTIATE request ops (docs/pvchannel.md §7.1). */
export const NegotiateOp = { Query: 1, Select: 2 } as const;

/** NEGOTIATE request payload (16 bytes). */
export interface NegotiateRequest {
  readonly op: (typeof NegotiateOp)[keyof typeof NegotiateOp];
  /** SELECT: the chosen protocol version; QUERY: 0. */
  readonly version: number;
  /** SELECT: the chosen feature subset; QUERY: 0n. */
  readonly features: bigint;
}

/** NEGOTIATE answer payload (32 bytes). */
export interface NegotiateAnswer {
  readonly minVersion: number;
  readonly maxVersion: number;
  readonly epoch: number;
  readonly offered: bigint;
  /** 0n after QUERY. */
  readonly accepted: bigint;
  /** 0 after QUERY. */
  readonly version: number;
}

export const NEGOTIATE_REQUEST_SIZE = 16;
export const NEGOTIATE_ANSWER_SIZE = 32;

/**
 * Decodes a NEGOTIATE request (§7.1): exactly 16 bytes, a known op, reserved zero, QUERY with version and
 * features zero, no reserved feature bit. Throws MalformedEvidence `pvchannel.negotiate.*`.
 */
export function decodeNegotiateRequest(b: Uint8Array): NegotiateRequest {
  const what = 'pvchannel.negotiate';
  const r = new Reader(b, what);
  const op = r.at(0x0).u16le();
  const version = r.u16le();
  r.mbz(4, '0x4');
  const features = r.u64le();
  r.end();
  if (op !== NegotiateOp.Query && op !== NegotiateOp.Select) {
    throw new MalformedEvidence(`${what}.op`, `${what}: unknown op ${op}`);
  }
  if (op === NegotiateOp.Query && (version !== 0 || features !== 0n)) {
    throw new MalformedEvidence(`${what}.query_fields`, `${what}: QUERY carries a version or features`);
  }
  if ((features & ~PV_FEATURES_DEFINED) !== 0n) {
    throw new MalformedEvidence(`${what}.reserved_feature`, `${what}: reserved feature bits selected`);
  }
  return { op, version, features };
}

/** Encodes a NEGOTIATE request. */
export function encodeNegotiateRequest(q: NegotiateRequest): Uint8Array {
  return new Writer(NEGOTIATE_REQUEST_SIZE).u16le(q.op).u16le(q.version).u32le(0).u64le(q.features).buf;
}

/**
 * Decodes a NEGOTIATE answer (§7.1), as the guest reads it from a VMM it does not trust: exactly 32 bytes,
 * reserved zero, min <= max, accepted within offered, no reserved feature bit.
 * Throws MalformedEvidence `pvchannel.negotiate_answer.*`.
 */
export function decodeNegotiateAnswer(b: Uint8Array): NegotiateAnswer {
  const what = 'pvchannel.negotiate_answer';
  const r = new Reader(b, what);
  const minVersion = r.at(0x0).u16le();
  const maxVersion = r.u16le();
  const epoch = r.u32le();
  const offered = r.u64le();
  const accepted = r.u64le();
  const version = r.u16le();
  r.mbz(6, '0x1a');
  r.end();
  if (minVersion > maxVersion) throw new MalformedEvidence(`${what}.versions`, `${what}: min above max`);
  if (((offered | accepted) & ~PV_FEATURES_DEFINED) !== 0n) {
    throw new MalformedEvidence(`${what}.reserved_feature`, `${what}: reserved feature bits`);
  }
  if ((accepted & ~offered) !== 0n) {
    throw new MalformedEvidence(`${what}.accepted`, `${what}: accepted features not offered`);
  }
  return { minVersion, maxVersion, epoch, offered, accepted, version };
}

/** Encodes a NEGOTIATE answer. */
export function encodeNegotiateAnswer(a: NegotiateAnswer): Uint8Array {
  const w = new Writer(NEGOTIATE_ANSWER_SIZE);
  w.u16le(a.minVersion)
    .u16le(a.maxVersion)
    .u32le(a.epoch)
    .u64le(a.offered)
    .u64le(a.accepted)
    .u16le(a.version);
  return w.buf;
}
