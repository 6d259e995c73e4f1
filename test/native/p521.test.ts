import assert from 'node:assert/strict';

import { test } from 'node:test';
import { checkP521Point, p521PointOf, p521PublicKeyFromPoint } from '../../src/native/p521.js';
import { newKeyPairSync } from '../../src/util/key-pair.js';

const refused = { code: 'ERR_MALFORMED', reason: 'crypto.p521.point' };
const freshPoint = () => p521PointOf(newKeyPairSync('ec', { namedCurve: 'P-521' }).publicKey);
const P = (1n << 521n) - 1n;
const toBig = (b: Uint8Array) => BigInt(`0x${Buffer.from(b).toString('hex')}`);
const to66 = (n: bigint) => Uint8Array.from(Buffer.from(n.toString(16).padStart(132, '0'), 'hex'));

test('checkP521Point accepts the points the import accepts and refuses the ones it refuses', () => {
  for (let i = 0; i < 20; i++) {
    const point = freshPoint();
    checkP521Point(point);
    p521PublicKeyFromPoint(point);
    const y = Uint8Array.from(point.y);
    y[65]! ^= 1 << (i % 8); // off the curve: for one x only y and p - y are on it
    const off = { x: point.x, y };
    assert.throws(() => checkP521Point(off), refused);
    assert.throws(() => p521PublicKeyFromPoint(off), refused);
  }
});

test('checkP521Point refuses a coordinate that is not below the field prime (x + p names the same x mod p)', () => {
  const point = freshPoint();
  const aliased = { x: to66(toBig(point.x) + P), y: point.y };
  assert.throws(() => checkP521Point(aliased), refused);
  assert.throws(() => p521PublicKeyFromPoint(aliased), refused);
  assert.throws(() => checkP521Point({ x: point.x, y: to66(toBig(point.y) + P) }), refused);
});

test('checkP521Point refuses wrong sizes and the all-zero point', () => {
  const point = freshPoint();
  assert.throws(() => checkP521Point({ x: point.x.subarray(1), y: point.y }), refused);
  assert.throws(() => checkP521Point({ x: point.x, y: new Uint8Array(67) }), refused);
  assert.throws(() => checkP521Point({ x: new Uint8Array(66), y: new Uint8Array(66) }), refused);
});
