import {
  AttestationError,
  ErrorCode,
  InvalidArgument,
  MalformedEvidence,
  NotSupported,
  Unavailable,
} from '../errors.js';
import { PV_STATUS_NAME, PvStatus } from '../formats/pvchannel/constants.js';

const CODES = new Set<string>(Object.values(ErrorCode));
const REASON = /^[a-z0-9_]+(\.[a-z0-9_]+)*$/;

/**
 * The typed error a guest raises for an error status (docs/pvchannel.md §6). Reasons are
 * `pvchannel.status.<name>`; CALL_FAILED carries the device's `{code, reason}` (taken only when both are
 * well-formed: the VMM is not trusted to invent error classes, so anything else is `pvchannel.call_failed`).
 */
export function statusError(status: number, payload: Uint8Array): AttestationError {
  const name = PV_STATUS_NAME[status];
  if (name === undefined) return new MalformedEvidence('pvchannel.answer.status', `unknown status ${status}`);
  const reason = `pvchannel.status.${snake(name)}`;
  switch (status) {
    case PvStatus.NotNegotiated:
    case PvStatus.NotSupported:
      return new NotSupported(reason, `the device answered ${name}`);
    case PvStatus.Malformed:
    case PvStatus.BadPayload:
    case PvStatus.TooLarge:
      return new InvalidArgument(reason, `the device answered ${name}`);
    case PvStatus.CallFailed:
      return callFailed(payload);
    default:
      return new Unavailable(reason, `the device answered ${name}`);
  }
}

function callFailed(payload: Uint8Array): AttestationError {
  try {
    if (payload.length <= 512) {
      const v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload)) as unknown;
      if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
        const { code, reason } = v as Record<string, unknown>;
        if (
          typeof code === 'string' &&
          CODES.has(code) &&
          typeof reason === 'string' &&
          reason.length <= 128 &&
          REASON.test(reason)
        ) {
          return new AttestationError(code as ErrorCode, reason, 'the call failed at the device');
        }
      }
    }
  } catch {
    // not JSON: fall through to the generic reason
  }
  return new AttestationError(ErrorCode.Refused, 'pvchannel.call_failed', 'the call failed at the device');
}

function snake(name: string): string {
  return name.replace(/[A-Z]/g, (c, i: number) => (i ? '_' : '') + c.toLowerCase());
}
