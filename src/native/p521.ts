import { createPublicKey, ECDH, type KeyObject } from 'node:crypto';
import { InvalidArgument, MalformedEvidence } from '../errors.js';
import type { EcPublicKey } from '../formats/aproxy/types.js';
import { P521_COORD_SIZE } from '../formats/aproxy/types.js';
import { SPKI_PREFIX as EC_SPKI_PREFIX, ecPublicKeyFromCoordinates } from '../util/ec-public-key.js';
import { type KeyPair, newKeyPair } from '../util/key-pair.js';

/**
 * P-521 keys as aproxy carries them: affine x and y, 66-byte big-endian each, no 0x04 prefix. Conversion
 * goes through SubjectPublicKeyInfo DER: the cheapest import for P-521 (util/ec-public-key.ts), and one in
 * which OpenSSL checks that the point is on the curve.
 */
const SPKI_PREFIX = EC_SPKI_PREFIX['P-521'];
const SPKI_SIZE = SPKI_PREFIX.length + 2 * P521_COORD_SIZE;

export type P521KeyPair = KeyPair;

/** A fresh P-521 key pair, generated asynchronously (off the main thread). */
export const generateP521KeyPair = (): Promise<P521KeyPair> => newKeyPair('ec', { namedCurve: 'P-521' });

/** x and y of a P-521 public (or private) key. Throws InvalidArgument for another key type. */
export function p521PointOf(key: KeyObject): EcPublicKey {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  if (pub.asymmetricKeyType !== 'ec' || pub.asymmetricKeyDetails?.namedCurve !== 'secp521r1') {
    throw new InvalidArgument('crypto.p521.key_type', 'expected a P-521 key');
  }
  const der = pub.export({ type: 'spki', format: 'der' });
  if (der.length !== SPKI_SIZE || !der.subarray(0, SPKI_PREFIX.length).equals(SPKI_PREFIX)) {
    throw new InvalidArgument('crypto.p521.encoding', 'unexpected SPKI encoding');
  }
  return {
    x: new Uint8Array(der.subarray(SPKI_PREFIX.length, SPKI_PREFIX.length + P521_COORD_SIZE)),
    y: new Uint8Array(der.subarray(SPKI_PREFIX.length + P521_COORD_SIZE)),
  };
}

/**
 * Checks that `point` is a P-521 point, without making a key object of it: MalformedEvidence
 * `crypto.p521.point` for wrong sizes, a coordinate not below the field prime, or a point not on the curve
 * (OpenSSL's EC_POINT_oct2point range and curve checks, via ECDH.convertKey). P-521's cofactor is 1, so a
 * point on the curve is in the group. ~13 µs here against ~115 µs for an import (SPKI DER to a KeyObject),
 * and nothing left for the collector to destroy: for a check before a key's use elsewhere.
 */
export function checkP521Point(point: EcPublicKey, field = 'key'): void {
  checkCoordinateSizes(point, field);
  try {
    ECDH.convertKey(Buffer.concat([UNCOMPRESSED, point.x, point.y]), 'secp521r1');
  } catch (cause) {
    throw new MalformedEvidence('crypto.p521.point', `${field}: not a point on P-521`, { cause });
  }
}

/** SEC 1 §2.3.3: an uncompressed point's first byte. */
const UNCOMPRESSED = Buffer.from([0x04]);

function checkCoordinateSizes(point: EcPublicKey, field: string): void {
  if (point.x.length !== P521_COORD_SIZE || point.y.length !== P521_COORD_SIZE) {
    throw new MalformedEvidence('crypto.p521.point', `${field}: coordinates must be 66 bytes each`);
  }
}

/**
 * Imports a P-521 public key from its coordinates. Throws MalformedEvidence `crypto.p521.point` for wrong
 * sizes or a point that is not on the curve (an invalid-curve point would leak the private key via ECDH).
 */
export function p521PublicKeyFromPoint(point: EcPublicKey, field = 'key'): KeyObject {
  checkCoordinateSizes(point, field);
  try {
    return ecPublicKeyFromCoordinates('P-521', point.x, point.y);
  } catch (cause) {
    throw new MalformedEvidence('crypto.p521.point', `${field}: not a point on P-521`, { cause });
  }
}
