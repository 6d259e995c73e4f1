import { createHash } from 'node:crypto';
import { InvalidArgument } from '../../errors.js';
import { shown } from '../../util/shown.js';
import {
  type EcPublicKey,
  type NegotiationParam,
  P521_COORD_SIZE,
  REPORT_DATA_DOMAIN_0_2_0,
  STATE_COUNTER_NONE,
  STATE_DIGEST_SIZE,
} from './types.js';

/** What the params refer to. `stateCounter` / `stateDigest` are needed only when the params list them. */
export interface ReportDataInputs {
  readonly challenge: Uint8Array;
  readonly key: EcPublicKey;
  /** The guest's state counter, or null for "no state"; must be given (not undefined) if `StateCounter` is a param. */
  readonly stateCounter?: bigint | null;
  /** SHA-256 of the stated state file, or null for "no state"; must be given if `StateDigest` is a param. */
  readonly stateDigest?: Uint8Array | null;
}

/**
 * The 0.2.0 params, exactly and in this order (docs/protocol.md §6.1): REPORT_DATA = SHA-512(domain label ||
 * x || y || challenge || u64le(counter) || state digest). The guest refuses any other list in 0.2.0, so a
 * proxy cannot reorder, drop or repeat parts of the binding.
 */
export const PARAMS_0_2_0: readonly NegotiationParam[] = Object.freeze([
  'Domain',
  'EcPublicKeyBytes',
  'Challenge',
  'StateCounter',
  'StateDigest',
] as NegotiationParam[]);

/** The 0.2.0 `Domain` param bytes: the label and a terminating 0x00 (docs/protocol.md §6.1). */
export const REPORT_DATA_DOMAIN_BYTES: Uint8Array = Uint8Array.from([
  ...Buffer.from(REPORT_DATA_DOMAIN_0_2_0, 'ascii'),
  0,
]);

/** The 0.2.0 `StateDigest` param bytes: the 32-byte digest, or 32 zero bytes for "no state". */
export function encodeStateDigestParam(digest: Uint8Array | null): Uint8Array {
  if (digest === null) return new Uint8Array(STATE_DIGEST_SIZE);
  if (!(digest instanceof Uint8Array) || digest.length !== STATE_DIGEST_SIZE) {
    throw new InvalidArgument('aproxy.state_digest', `state digest must be ${STATE_DIGEST_SIZE} bytes`);
  }
  return digest;
}

/**
 * The 0.2.0 `StateCounter` param bytes: the counter as u64 little-endian, or eight 0xFF bytes when the guest
 * has no state (2^64-1 is reserved for this and is never a counter). docs/protocol.md §StateCounter.
 */
export function encodeStateCounterParam(counter: bigint | null): Uint8Array {
  const out = new Uint8Array(8);
  const v = counter === null ? STATE_COUNTER_NONE : counter;
  if (counter !== null && (counter < 0n || counter >= STATE_COUNTER_NONE)) {
    throw new InvalidArgument('aproxy.counter', 'state counter must be in 0..2^64-2');
  }
  new DataView(out.buffer).setBigUint64(0, v, true);
  return out;
}

/**
 * REPORT_DATA = SHA-512 over the params in the order given (reference svsm-protocol.md §2, SVSM
 * `kernel/src/attest.rs` `hash()`): `Challenge` -> the raw challenge bytes; `EcPublicKeyBytes` -> x || y
 * (66-byte big-endian each, no 0x04 prefix); 0.2.0 adds `Domain` -> {@link REPORT_DATA_DOMAIN_BYTES},
 * `StateCounter` -> {@link encodeStateCounterParam}, `StateDigest` -> {@link encodeStateDigestParam}.
 * A param listed twice is hashed twice, as the SVSM does. Throws InvalidArgument for wrong-size coordinates
 * or a missing state counter.
 */
export function computeReportData(params: readonly NegotiationParam[], inputs: ReportDataInputs): Uint8Array {
  const h = createHash('sha512');
  for (const p of params) {
    switch (p) {
      case 'Challenge':
        h.update(inputs.challenge);
        break;
      case 'EcPublicKeyBytes':
        if (inputs.key.x.length !== P521_COORD_SIZE || inputs.key.y.length !== P521_COORD_SIZE) {
          throw new InvalidArgument('aproxy.key.length', 'P-521 coordinates are 66 bytes each');
        }
        h.update(inputs.key.x);
        h.update(inputs.key.y);
        break;
      case 'StateCounter':
        if (inputs.stateCounter === undefined) {
          throw new InvalidArgument(
            'aproxy.params.state_counter',
            'StateCounter requested but no counter given',
          );
        }
        h.update(encodeStateCounterParam(inputs.stateCounter));
        break;
      case 'Domain':
        h.update(REPORT_DATA_DOMAIN_BYTES);
        break;
      case 'StateDigest':
        if (inputs.stateDigest === undefined) {
          throw new InvalidArgument(
            'aproxy.params.state_digest',
            'StateDigest requested but no digest given',
          );
        }
        h.update(encodeStateDigestParam(inputs.stateDigest));
        break;
      default:
        throw new InvalidArgument('aproxy.param', `unknown param ${shown(p)}`);
    }
  }
  return new Uint8Array(h.digest());
}
