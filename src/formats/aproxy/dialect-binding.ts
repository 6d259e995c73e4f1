import { createHash } from 'node:crypto';
import { InvalidArgument, MalformedEvidence } from '../../errors.js';
import { encodeBase64, encodeBase64Url } from '../../util/base64.js';
import { type EcPublicKey, type NegotiationParam, P521_COORD_SIZE } from './types.js';

/**
 * The REPORT_DATA rules of COCONUT's two open protocol proposals (reference svsm-protocol.md §8; svsm PR
 * #1122 head 3e503918 and PR #1203 head bdf46eda, `kernel/src/attest.rs` `PayloadFormatter`): the proxy
 * names a hash algorithm and a payload format; the SVSM hashes the formatted payload and zero-pads the
 * digest to the 64 bytes of REPORT_DATA.
 *
 * - `RawBinary`: x || y || challenge (P-521 coordinates, 66 bytes big-endian each). PR #1203 hashes the
 *   legacy challenge's `params` in their order instead when the KBS sends them.
 * - `JwsJson`: compact JSON with sorted keys, `{"additional-evidence":"","nonce":b64std(challenge),
 *   "tee-pubkey":{"alg":"ECDH-ES+A256KW","crv":"P-521","kty":"EC","x":b64url(x),"y":b64url(y)}}`; with
 *   SHA-384 this is Trustee's binding (RFC 8785 JCS of the runtime data).
 */

/** Hash algorithms, normalised to lower case (PR #1122 writes `Sha512`, PR #1203 `sha512`). */
export type DialectHashAlgo = 'sha256' | 'sha384' | 'sha512';
export type PayloadFormat = 'RawBinary' | 'JwsJson';
export const PAYLOAD_FORMATS: readonly PayloadFormat[] = ['RawBinary', 'JwsJson'];
export const DIALECT_HASH_ALGOS: readonly DialectHashAlgo[] = ['sha256', 'sha384', 'sha512'];

/** What a proxy tells a proposal-dialect guest to bind. */
export interface DialectBinding {
  readonly hashAlgo: DialectHashAlgo;
  readonly payloadFormat: PayloadFormat;
}

/** svsm main's KBS binding, SHA-512(x || y || challenge), in the proposals' vocabulary. */
export const RAW_SHA512: DialectBinding = Object.freeze({ hashAlgo: 'sha512', payloadFormat: 'RawBinary' });
/** Trustee's binding: SHA-384 over the JCS runtime data. */
export const JWS_SHA384: DialectBinding = Object.freeze({ hashAlgo: 'sha384', payloadFormat: 'JwsJson' });

/** The runtime-data JSON the `JwsJson` format hashes, keys sorted, no whitespace. */
export function jwsJsonPayload(challenge: Uint8Array, key: EcPublicKey): Uint8Array {
  checkKey(key);
  // Keys written in sorted order (serde_json over a BTreeMap), as RFC 8785 sorts them.
  const text = JSON.stringify({
    'additional-evidence': '',
    nonce: encodeBase64(challenge),
    'tee-pubkey': {
      alg: 'ECDH-ES+A256KW',
      crv: 'P-521',
      kty: 'EC',
      x: encodeBase64Url(key.x),
      y: encodeBase64Url(key.y),
    },
  });
  return new Uint8Array(Buffer.from(text, 'utf8'));
}

/**
 * REPORT_DATA for a proposal dialect: hash(formatted payload), zero-padded to 64 bytes. `params` (RawBinary
 * only) is PR #1203's legacy challenge order; absent means x || y || challenge. Throws InvalidArgument
 * `aproxy.key.length` for wrong-size coordinates.
 */
export function computeDialectReportData(
  b: DialectBinding,
  challenge: Uint8Array,
  key: EcPublicKey,
  params?: readonly NegotiationParam[],
): Uint8Array {
  checkKey(key);
  let payload: Uint8Array;
  if (b.payloadFormat === 'JwsJson') payload = jwsJsonPayload(challenge, key);
  else {
    const parts: Uint8Array[] = [];
    for (const p of params ?? ['EcPublicKeyBytes', 'Challenge']) {
      if (p === 'Challenge') parts.push(challenge);
      else if (p === 'EcPublicKeyBytes') parts.push(key.x, key.y);
      else throw new InvalidArgument('aproxy.param', `param ${p} is not a RawBinary param`);
    }
    payload = Buffer.concat(parts);
  }
  const out = new Uint8Array(64);
  out.set(createHash(b.hashAlgo).update(payload).digest());
  return out;
}

function checkKey(key: EcPublicKey): void {
  if (key.x.length !== P521_COORD_SIZE || key.y.length !== P521_COORD_SIZE) {
    throw new InvalidArgument('aproxy.key.length', 'P-521 coordinates are 66 bytes each');
  }
}

/** Reads a hash algorithm in the given spelling (`Sha512` for PR #1122, `sha512` for PR #1203). */
export function parseHashAlgo(s: string, field: string, spelling: 'capitalised' | 'lower'): DialectHashAlgo {
  const lower = s.toLowerCase() as DialectHashAlgo;
  if (!DIALECT_HASH_ALGOS.includes(lower) || formatHashAlgo(lower, spelling) !== s) {
    throw new MalformedEvidence('aproxy.field.value', `${field}: unknown hash algorithm`);
  }
  return lower;
}

export function formatHashAlgo(h: DialectHashAlgo, spelling: 'capitalised' | 'lower'): string {
  return spelling === 'lower' ? h : `S${h.slice(1)}`;
}

export function parsePayloadFormat(s: string, field: string): PayloadFormat {
  if (!(PAYLOAD_FORMATS as readonly string[]).includes(s)) {
    throw new MalformedEvidence('aproxy.field.value', `${field}: unknown payload format`);
  }
  return s as PayloadFormat;
}
