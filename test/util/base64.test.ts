import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeBase64, decodeBase64Url, encodeBase64, encodeBase64Url } from '../../src/util/base64.js';
import { throwsCode } from '../helpers/assert-error.js';

describe('util/base64', () => {
  it('round-trips every length 0..40 in both alphabets', () => {
    for (let n = 0; n <= 40; n++) {
      const b = Uint8Array.from({ length: n }, (_, i) => (i * 37 + n) & 0xff);
      assert.deepEqual(decodeBase64(encodeBase64(b), 'r', 'f'), b);
      assert.deepEqual(decodeBase64Url(encodeBase64Url(b), 'r', 'f'), b);
    }
  });

  it('returns bytes in an ArrayBuffer of their own, not a view of a shared pool', () => {
    for (const d of [decodeBase64('AQID', 'r', 'f'), decodeBase64Url('AQID', 'r', 'f')]) {
      assert.equal(d.byteOffset, 0);
      assert.equal(d.buffer.byteLength, 3);
    }
  });

  it('encodes a subarray view, not its whole buffer', () => {
    const whole = Uint8Array.from([1, 2, 3, 4, 5]);
    assert.equal(encodeBase64(whole.subarray(1, 3)), 'AgM=');
    assert.equal(encodeBase64Url(whole.subarray(1, 3)), 'AgM');
  });

  it('standard: refuses other alphabets, missing or misplaced padding, whitespace and non-strings', () => {
    for (const s of [
      'AA',
      'AAA',
      'A',
      'AB-_',
      'A===',
      'AA=A',
      'AA==AAAA',
      ' AAAA',
      'AAAA\n',
      'AA==\n',
      'AAA*',
    ]) {
      throwsCode(() => decodeBase64(s, 'my.reason', 'f'), 'ERR_MALFORMED', 'my.reason');
    }
    for (const v of [undefined, null, 1, [], {}])
      throwsCode(() => decodeBase64(v, 'my.reason', 'f'), 'ERR_MALFORMED', 'my.reason');
  });

  it('standard: refuses set trailing bits (one spelling per byte string)', () => {
    assert.deepEqual(decodeBase64('AA==', 'r', 'f'), new Uint8Array([0]));
    throwsCode(() => decodeBase64('AB==', 'my.reason', 'f'), 'ERR_MALFORMED', 'my.reason');
    throwsCode(() => decodeBase64('AAB=', 'my.reason', 'f'), 'ERR_MALFORMED', 'my.reason');
  });

  it('base64url: refuses padding, the standard alphabet, length 1 mod 4 and set trailing bits', () => {
    for (const s of ['AA==', 'AAA=', 'A', 'AAAAA', 'AB+/', 'AB/_', ' AA', 'AB', 'AAB']) {
      throwsCode(() => decodeBase64Url(s, 'url.reason', 'f'), 'ERR_MALFORMED', 'url.reason');
    }
    for (const v of [undefined, null, 1, [], {}])
      throwsCode(() => decodeBase64Url(v, 'url.reason', 'f'), 'ERR_MALFORMED', 'url.reason');
    assert.deepEqual(decodeBase64Url('_-8', 'r', 'f'), new Uint8Array([0xff, 0xef]));
  });
});
