import { MalformedEvidence } from '../errors.js';
import { MAX_QUOTE_SIZE } from '../formats/tdx/quote.js';
import { isObject } from '../util/json-object.js';
import { decodeBounded } from './evidence.js';

/**
 * `tee-evidence.primary_evidence` for `tee: "tdx"`: Trustee's TDX evidence (deps/verifier/src/tdx/mod.rs
 * `TdxEvidence`: `quote`, standard base64 of the TD quote; `cc_eventlog`, standard base64 of the CCEL
 * table's log area, or null). The CoCo guest attester also sends `aa_eventlog` (the Attestation Agent's
 * own log, which Trustee's TDX verifier does not read either): it is accepted and ignored, so nothing it
 * says reaches a claim. Any other member is refused. An empty `cc_eventlog` string is no log, as in Trustee.
 */
export interface TdxPrimaryEvidence {
  /** The quote bytes (the broker's evidence bytes; src/formats/tdx/quote.ts parses them). */
  readonly quote: Uint8Array;
  /** The CCEL log, when sent: the TEE table's tdx row replays it against the verified quote's RTMRs. */
  readonly ccel?: Uint8Array;
}

/** The log is bounded by the /attest body limit (2 MiB) too; this refuses it before decoding. */
export const MAX_CCEL_BYTES = 2 * 1024 * 1024;

const KEYS: readonly string[] = ['quote', 'cc_eventlog', 'aa_eventlog'];

/**
 * Parses TDX primary evidence (shape and base64 only: the quote is parsed and verified by the broker).
 * Throws MalformedEvidence `kbs.evidence.shape` (not an object, unknown member, no quote, an empty quote,
 * a log or AA log that is neither a string nor null), `kbs.evidence.base64`, `kbs.evidence.size`.
 */
export function parseTdxPrimaryEvidence(v: unknown): TdxPrimaryEvidence {
  if (!isObject(v)) throw new MalformedEvidence('kbs.evidence.shape', 'primary_evidence must be an object');
  for (const k of Object.keys(v)) {
    if (!KEYS.includes(k)) {
      throw new MalformedEvidence(
        'kbs.evidence.shape',
        `primary_evidence has an unknown member ${JSON.stringify(k.slice(0, 40))}`,
      );
    }
  }
  if (typeof v.quote !== 'string' || v.quote.length === 0) {
    throw new MalformedEvidence('kbs.evidence.shape', 'primary_evidence.quote must be a base64 string');
  }
  for (const k of ['cc_eventlog', 'aa_eventlog']) {
    const x = v[k];
    if (x !== undefined && x !== null && typeof x !== 'string') {
      throw new MalformedEvidence('kbs.evidence.shape', `primary_evidence.${k} must be a string or null`);
    }
  }
  const log = v.cc_eventlog;
  return {
    quote: decodeBounded(v.quote, 'quote', MAX_QUOTE_SIZE),
    ...(typeof log === 'string' && log.length > 0
      ? { ccel: decodeBounded(log, 'cc_eventlog', MAX_CCEL_BYTES) }
      : {}),
  };
}
