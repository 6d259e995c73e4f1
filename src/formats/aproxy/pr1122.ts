import { MalformedEvidence } from '../../errors.js';
import { encodeBase64 } from '../../util/base64.js';
import { type DialectBinding, formatHashAlgo, parseHashAlgo, parsePayloadFormat } from './dialect-binding.js';
import { encodeJson } from './encode.js';
import { bytesField, checkEcKey, checkLength, LIMITS, parseEcKey } from './fields.js';
import { expectObject, expectString, type JsonValue, parseJson } from './json.js';
import { parseTee } from './negotiation.js';
import type { AttestationRequest } from './types.js';

/**
 * svsm PR #1122 (head 3e503918, "negotiation with hash_algo and payload_format"; reference
 * svsm-protocol.md §8). It keeps main's framing, NegotiationRequest (`[0,1,0]`) and AttestationResponse, and
 * changes two messages:
 * - NegotiationResponse `{"challenge": b64std, "hash_algo": "Sha256"|"Sha384"|"Sha512",
 *   "payload_format": "RawBinary"|"JwsJson"}` (no `params`);
 * - AttestationRequest evidence `{"Snp": {"attestation_report": b64, "cert_chain"?: b64}}`.
 * Decoders throw MalformedEvidence `aproxy.json.*`, `aproxy.field.*`, `aproxy.base64`.
 */
export interface NegotiationResponse1122 extends DialectBinding {
  readonly challenge: Uint8Array;
}

export function parseNegotiationResponse1122(payload: Uint8Array): NegotiationResponse1122 {
  const o = expectObject(parseJson(payload), 'NegotiationResponse', [
    'challenge',
    'hash_algo',
    'payload_format',
  ]);
  return {
    challenge: bytesField(o.get('challenge'), 'challenge', ...LIMITS.challenge),
    hashAlgo: parseHashAlgo(expectString(o.get('hash_algo'), 'hash_algo'), 'hash_algo', 'capitalised'),
    payloadFormat: parsePayloadFormat(
      expectString(o.get('payload_format'), 'payload_format'),
      'payload_format',
    ),
  };
}

/** Fields in the Rust struct's order: challenge, hash_algo, payload_format. */
export function encodeNegotiationResponse1122(r: NegotiationResponse1122): Uint8Array {
  checkLength(r.challenge, 'challenge', ...LIMITS.challenge);
  return encodeJson({
    challenge: encodeBase64(r.challenge),
    hash_algo: formatHashAlgo(r.hashAlgo, 'capitalised'),
    payload_format: r.payloadFormat,
  });
}

/**
 * PR #1122 AttestationRequest: `{"tee","evidence":{"Snp":{"attestation_report":b64[,"cert_chain":b64]}},
 * "challenge","key":{"x","y"}}`. `cert_chain: null` reads as absent (serde's Option; the PR's aproxy
 * refuses it, so the guest library never sends it). Other fields are ignored, as serde does, and their
 * paths appended to `unknown` (for the proxy's log).
 */
export function parseAttestationRequest1122(
  payload: Uint8Array | JsonValue,
  unknown: string[] = [],
): AttestationRequest {
  const v = payload instanceof Uint8Array ? parseJson(payload) : payload;
  const o = expectObject(v, 'AttestationRequest', ['tee', 'evidence', 'challenge', 'key'], [], unknown);
  const ev = expectObject(o.get('evidence'), 'evidence', [], ['Snp']);
  if (ev.size !== 1)
    throw new MalformedEvidence('aproxy.field.missing', 'evidence: expected exactly one variant');
  const snp = expectObject(ev.get('Snp'), 'evidence.Snp', ['attestation_report'], ['cert_chain'], unknown);
  const certs = snp.get('cert_chain');
  return {
    tee: parseTee(o.get('tee') ?? null, 'tee'),
    evidence: {
      report: bytesField(snp.get('attestation_report'), 'evidence.Snp.attestation_report', ...LIMITS.report),
      ...(certs === undefined || certs === null
        ? {}
        : { certsBuf: bytesField(certs, 'evidence.Snp.cert_chain', ...LIMITS.certsBuf) }),
    },
    challenge: bytesField(o.get('challenge'), 'challenge', ...LIMITS.challenge),
    key: parseEcKey(o.get('key'), 'key', unknown),
  };
}

export function encodeAttestationRequest1122(req: AttestationRequest): Uint8Array {
  checkLength(req.evidence.report, 'evidence.report', ...LIMITS.report);
  checkLength(req.challenge, 'challenge', ...LIMITS.challenge);
  checkEcKey(req.key, 'key');
  const snp: Record<string, string> = { attestation_report: encodeBase64(req.evidence.report) };
  if (req.evidence.certsBuf !== undefined) {
    checkLength(req.evidence.certsBuf, 'evidence.certsBuf', ...LIMITS.certsBuf);
    snp.cert_chain = encodeBase64(req.evidence.certsBuf);
  }
  return encodeJson({
    tee: req.tee,
    evidence: { Snp: snp },
    challenge: encodeBase64(req.challenge),
    key: { x: encodeBase64(req.key.x), y: encodeBase64(req.key.y) },
  });
}
