import { createHash } from 'node:crypto';
import { InvalidArgument } from '../../errors.js';
import { type EcPublicKey, type NegotiationParam, P521_COORD_SIZE, STATE_COUNTER_NONE } from './types.js';

/** What the params refer to. `stateCounter` is needed only when the params list `StateCounter`. */
export interface ReportDataInputs {
  readonly challenge: Uint8Array;
  readonly key: EcPublicKey;
  /** The guest's state counter, or null for "no state"; must be given (not undefined) if `StateCounter` is a param. */
  readonly stateCounter?: bigint | null;
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
 * (66-byte big-endian each, no 0x04 prefix); `StateCounter` (0.2.0) -> {@link encodeStateCounterParam}.
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
      default:
        throw new InvalidArgument('aproxy.param', `unknown param ${String(p)}`);
    }
  }
  return new Uint8Array(h.digest());
}
