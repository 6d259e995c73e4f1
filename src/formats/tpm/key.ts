import { createPublicKey, type KeyObject } from 'node:crypto';
import { InvalidArgument, MalformedEvidence } from '../../errors.js';
import { decodeBase64Url, encodeBase64Url } from '../../util/base64.js';
import { ECC_CURVES, TPM_ALG } from './constants.js';
import { type AsymScheme, curveOf, rsaExponent, type SymDefObject, type TpmtPublic } from './public.js';

/**
 * Conversions between a TPMT_PUBLIC and a node:crypto public KeyObject (RSA: n and e; ECC: x and y on
 * P-256, P-384 or P-521).
 */

/** Left-pads a big-endian integer to `size` bytes; MalformedEvidence `reason` when it is longer. */
export function padTo(b: Uint8Array, size: number, reason: string): Uint8Array {
  if (b.length > size) {
    // A TPM may emit a coordinate with leading zeros stripped, never one longer than the field.
    let lead = 0;
    while (lead < b.length - size && b[lead] === 0) lead++;
    if (b.length - lead > size)
      throw new MalformedEvidence(reason, `${reason}: ${b.length} bytes, field size is ${size}`);
    return b.subarray(lead);
  }
  if (b.length === size) return b;
  const out = new Uint8Array(size);
  out.set(b, size - b.length);
  return out;
}

function exponentBytes(e: number): Uint8Array {
  const out: number[] = [];
  for (let v = e; v > 0; v = Math.floor(v / 256)) out.unshift(v % 256);
  return Uint8Array.from(out);
}

/**
 * The public key of a TPMT_PUBLIC as a KeyObject. Throws MalformedEvidence `tpm.public.rsa_modulus` (modulus
 * length differs from keyBits), `tpm.public.ecc_point` (coordinate too long), `tpm.public.key` (OpenSSL
 * rejects the key, e.g. a point not on the curve); NotSupported `tpm.public.curve`.
 */
export function publicToKeyObject(p: TpmtPublic): KeyObject {
  let jwk: Record<string, string>;
  if (p.type === TPM_ALG.RSA) {
    const { n } = p.unique;
    if (n.length === 0 || n.length * 8 !== p.parameters.keyBits || (n[0]! & 0x80) === 0) {
      throw new MalformedEvidence(
        'tpm.public.rsa_modulus',
        `RSA modulus of ${n.length} bytes does not match keyBits ${p.parameters.keyBits}`,
      );
    }
    jwk = { kty: 'RSA', n: encodeBase64Url(n), e: encodeBase64Url(exponentBytes(rsaExponent(p.parameters))) };
  } else {
    const c = curveOf(p.parameters);
    const x = padTo(p.unique.x, c.size, 'tpm.public.ecc_point');
    const y = padTo(p.unique.y, c.size, 'tpm.public.ecc_point');
    jwk = { kty: 'EC', crv: c.jwk, x: encodeBase64Url(x), y: encodeBase64Url(y) };
  }
  try {
    return createPublicKey({ key: jwk, format: 'jwk' });
  } catch (cause) {
    throw new MalformedEvidence('tpm.public.key', 'the public area does not hold a valid public key', {
      cause,
    });
  }
}

/** Options for {@link publicFromKeyObject}: everything in a TPMT_PUBLIC besides the key itself. */
export interface PublicTemplate {
  readonly nameAlg: number;
  readonly objectAttributes: number;
  readonly authPolicy?: Uint8Array;
  readonly symmetric?: SymDefObject;
  readonly scheme?: AsymScheme;
  /** ECC only. */
  readonly kdf?: AsymScheme;
}

const NULL_SYM: SymDefObject = { algorithm: TPM_ALG.NULL, keyBits: 0, mode: TPM_ALG.NULL };
const NULL_SCHEME: AsymScheme = { scheme: TPM_ALG.NULL, hashAlg: TPM_ALG.NULL };

/**
 * Builds a TPMT_PUBLIC around a node:crypto public key (RSA, or EC on P-256/384/521): the inverse of
 * {@link publicToKeyObject}, for simulators and tests. Throws InvalidArgument `tpm.public.key_type`.
 */
export function publicFromKeyObject(key: KeyObject, t: PublicTemplate): TpmtPublic {
  const jwk = key.export({ format: 'jwk' });
  const common = {
    nameAlg: t.nameAlg,
    objectAttributes: t.objectAttributes,
    authPolicy: t.authPolicy ?? new Uint8Array(),
  };
  const symmetric = t.symmetric ?? NULL_SYM;
  const scheme = t.scheme ?? NULL_SCHEME;
  if (jwk.kty === 'RSA' && jwk.n && jwk.e) {
    const n = decodeBase64Url(jwk.n, 'tpm.key.jwk', 'n');
    const e = Number.parseInt(Buffer.from(decodeBase64Url(jwk.e, 'tpm.key.jwk', 'e')).toString('hex'), 16);
    return {
      ...common,
      type: TPM_ALG.RSA,
      parameters: { symmetric, scheme, keyBits: n.length * 8, exponent: e === 65537 ? 0 : e },
      unique: { n },
    };
  }
  const curve = Object.values(ECC_CURVES).find((c) => c.jwk === jwk.crv);
  if (jwk.kty === 'EC' && curve && jwk.x && jwk.y) {
    return {
      ...common,
      type: TPM_ALG.ECC,
      parameters: { symmetric, scheme, curveId: curve.id, kdf: t.kdf ?? NULL_SCHEME },
      unique: {
        x: decodeBase64Url(jwk.x, 'tpm.key.jwk', 'x'),
        y: decodeBase64Url(jwk.y, 'tpm.key.jwk', 'y'),
      },
    };
  }
  throw new InvalidArgument(
    'tpm.public.key_type',
    `cannot express a ${jwk.kty} ${jwk.crv ?? ''} key as TPMT_PUBLIC`,
  );
}
