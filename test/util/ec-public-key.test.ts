import assert from 'node:assert/strict';

import { test } from 'node:test';
import {
  EC_COORDINATE_SIZE,
  ecPublicKeyFromCoordinates,
  type NistCurve,
} from '../../src/util/ec-public-key.js';
import { newKeyPairSync } from '../../src/util/key-pair.js';

const NODE_CURVE: Record<NistCurve, string> = {
  'P-256': 'prime256v1',
  'P-384': 'secp384r1',
  'P-521': 'secp521r1',
};

for (const curve of Object.keys(NODE_CURVE) as NistCurve[]) {
  test(`${curve}: the key from its coordinates is the key, and an off-curve point is refused`, () => {
    const { publicKey } = newKeyPairSync('ec', { namedCurve: NODE_CURVE[curve] });
    const der = publicKey.export({ format: 'der', type: 'spki' });
    const n = EC_COORDINATE_SIZE[curve];
    const x = der.subarray(der.length - 2 * n, der.length - n);
    const y = der.subarray(der.length - n);
    const k = ecPublicKeyFromCoordinates(curve, x, y);
    assert.ok(k.equals(publicKey));
    assert.equal(k.asymmetricKeyDetails?.namedCurve, NODE_CURVE[curve]);
    const offCurve = Buffer.from(y);
    offCurve[n - 1]! ^= 1;
    assert.throws(() => ecPublicKeyFromCoordinates(curve, x, offCurve));
    assert.throws(() => ecPublicKeyFromCoordinates(curve, x.subarray(1), y), RangeError);
  });
}
