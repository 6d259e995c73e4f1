import { createPublicKey, ECDH, type KeyObject } from 'node:crypto';
import { InvalidArgument, NotSupported } from '../errors.js';
import { decodeBase64Url } from '../util/base64.js';
import { isObject } from '../util/json-object.js';
import { shown } from '../util/shown.js';

/**
 * The RCAR `tee-pubkey` (kbs_types `TeePubKey`; reference kbs-and-peers.md §1 step 2): the JWK of the key
 * the TEE generated, which resources are wrapped to. Accepted:
 * - EC P-256, P-384, P-521 with `alg` `ECDH-ES+A256KW` (RFC 7518 §4.6);
 * - RSA (2048..8192-bit modulus) with `alg` `RSA-OAEP-256` (RFC 7518 §4.3).
 * `RSA1_5` (deprecated; Trustee warns) and anything else are refused. Only the members kbs_types knows are
 * kept (`kty, crv, alg, x, y` / `kty, alg, n, e`): they are what Trustee hashes into the binding, so extra
 * members are ignored, as serde ignores them.
 *
 * Every refusal has a reason under `kbs.tee_pubkey.` (problem type `tee-pubkey-invalid`).
 */

export type EcCurve = 'P-256' | 'P-384' | 'P-521';

export type TeePubkeyJwk =
  | {
      readonly kty: 'EC';
      readonly crv: EcCurve;
      readonly alg: 'ECDH-ES+A256KW';
      readonly x: string;
      readonly y: string;
    }
  | { readonly kty: 'RSA'; readonly alg: 'RSA-OAEP-256'; readonly n: string; readonly e: string };

export type EcTeePubkeyJwk = Extract<TeePubkeyJwk, { kty: 'EC' }>;
export type RsaTeePubkeyJwk = Extract<TeePubkeyJwk, { kty: 'RSA' }>;

/**
 * A validated `tee-pubkey`. An EC key is kept as its point, not imported as a KeyObject: the resource JWE
 * derives with node's ECDH on the raw point (jwe.ts), and an import only to check the point costs ~4x the
 * check itself (0.055 against 0.012 ms for P-256 on this machine).
 */
export type TeePubkey =
  | {
      /** The typed JWK, exactly the members that are hashed and echoed in tokens. */
      readonly jwk: EcTeePubkeyJwk;
      /** The affine coordinates, big-endian, fixed width. */
      readonly point: { readonly x: Uint8Array; readonly y: Uint8Array };
      /** The point as SEC 1 §2.3.3 encodes it uncompressed (04 || x || y), checked on the curve. */
      readonly uncompressed: Buffer;
      readonly key?: undefined;
    }
  | {
      readonly jwk: RsaTeePubkeyJwk;
      /** The imported key (sizes checked). */
      readonly key: KeyObject;
      readonly point?: undefined;
      readonly uncompressed?: undefined;
    };

/** node:crypto's name of each curve. */
export const NODE_EC_CURVE: Readonly<Record<EcCurve, string>> = Object.freeze({
  'P-256': 'prime256v1',
  'P-384': 'secp384r1',
  'P-521': 'secp521r1',
});

/** SEC 1 §2.3.3: the uncompressed point encoding's first octet. */
const UNCOMPRESSED = Buffer.from([0x04]);

export const EC_COORDINATE_BYTES: Readonly<Record<EcCurve, number>> = Object.freeze({
  'P-256': 32,
  'P-384': 48,
  'P-521': 66,
});

const MIN_RSA_BITS = 2048;
const MAX_RSA_BITS = 8192;

function bad(reason: string, message: string): InvalidArgument {
  return new InvalidArgument(`kbs.tee_pubkey.${reason}`, message);
}

function coordinate(v: unknown, crv: EcCurve, name: 'x' | 'y'): Uint8Array {
  const b = decodeBase64Url(v, 'kbs.tee_pubkey.encoding', `tee-pubkey.${name}`);
  if (b.length !== EC_COORDINATE_BYTES[crv]) {
    throw bad('coordinates', `tee-pubkey.${name} must be ${EC_COORDINATE_BYTES[crv]} bytes for ${crv}`);
  }
  return b;
}

function parseEc(o: { [k: string]: unknown }): TeePubkey {
  const crv = o.crv;
  if (crv !== 'P-256' && crv !== 'P-384' && crv !== 'P-521') {
    throw bad('curve', `curve ${shown(crv)} is not supported (P-256, P-384, P-521)`);
  }
  if (o.alg !== 'ECDH-ES+A256KW')
    throw bad('alg', `EC keys must have alg ECDH-ES+A256KW, not ${shown(o.alg)}`);
  const x = coordinate(o.x, crv, 'x');
  const y = coordinate(o.y, crv, 'y');
  const jwk = { kty: 'EC', crv, alg: 'ECDH-ES+A256KW', x: o.x as string, y: o.y as string } as const;
  const uncompressed = Buffer.concat([UNCOMPRESSED, x, y]);
  try {
    // OpenSSL's EC_POINT_oct2point refuses coordinates >= p and a point that is not on the curve (an
    // invalid-curve point would leak the ECDH secret); the point at infinity has no 04 || x || y form. The
    // NIST curves have cofactor 1: every point on the curve is in the prime-order group.
    ECDH.convertKey(uncompressed, NODE_EC_CURVE[crv]);
  } catch {
    throw bad('point', `tee-pubkey is not a point on ${crv}`);
  }
  return { jwk, point: { x, y }, uncompressed };
}

function parseRsa(o: { [k: string]: unknown }): TeePubkey {
  if (o.alg === 'RSA1_5')
    throw new NotSupported('kbs.tee_pubkey.alg', 'RSA1_5 is deprecated and not supported');
  if (o.alg !== 'RSA-OAEP-256') throw bad('alg', `RSA keys must have alg RSA-OAEP-256, not ${shown(o.alg)}`);
  const n = decodeBase64Url(o.n, 'kbs.tee_pubkey.encoding', 'tee-pubkey.n');
  const e = decodeBase64Url(o.e, 'kbs.tee_pubkey.encoding', 'tee-pubkey.e');
  if (n.length === 0 || n[0] === 0)
    throw bad('modulus', 'tee-pubkey.n must be minimal big-endian (RFC 7518 §6.3.1.1)');
  const bits = (n.length - 1) * 8 + (32 - Math.clz32(n[0]!));
  if (bits < MIN_RSA_BITS || bits > MAX_RSA_BITS) {
    throw bad('modulus', `RSA modulus must be ${MIN_RSA_BITS}..${MAX_RSA_BITS} bits, got ${bits}`);
  }
  if (e.length === 0 || e.length > 4 || e[0] === 0 || (e[e.length - 1]! & 1) === 0) {
    throw bad('exponent', 'tee-pubkey.e must be a minimal odd exponent of at most 32 bits');
  }
  const ev = e.reduce((acc, b) => acc * 256 + b, 0);
  if (ev < 3) throw bad('exponent', 'tee-pubkey.e must be at least 3');
  const jwk = { kty: 'RSA', alg: 'RSA-OAEP-256', n: o.n as string, e: o.e as string } as const;
  let key: KeyObject;
  try {
    key = createPublicKey({ key: { kty: 'RSA', n: jwk.n, e: jwk.e }, format: 'jwk' });
  } catch {
    throw bad('format', 'tee-pubkey is not a usable RSA key');
  }
  return { jwk, key };
}

/** Parses and validates a `tee-pubkey` JWK. Throws InvalidArgument/MalformedEvidence/NotSupported `kbs.tee_pubkey.*`. */
export function parseTeePubkey(v: unknown): TeePubkey {
  if (!isObject(v)) throw bad('format', 'tee-pubkey must be a JWK object');
  if (v.kty === 'EC') return parseEc(v);
  if (v.kty === 'RSA') return parseRsa(v);
  throw bad('kty', `key type ${shown(v.kty)} is not supported (EC, RSA)`);
}
