import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeBase64, decodeBase64Url, encodeBase64, encodeBase64Url } from '../../src/util/base64.js';
import { throwsCode } from '../helpers/assert-error.js';

const accepts = (decode: typeof decodeBase64, s: string) => {
  try {
    decode(s, 'r', 'f');
    return true;
  } catch {
    return false;
  }
};

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

  it('accepts exactly the strings of the strict grammar that are canonical (random strings, both alphabets)', () => {
    // The definition the decoders must match: the alphabet-and-padding pattern, and the canonical spelling.
    const STD = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
    const URL_SAFE = /^[A-Za-z0-9_-]*$/;
    const chars = 'AQgw/+_-=. \n';
    let seed = 7;
    const next = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff;
      return seed;
    };
    let accepted = 0;
    for (let i = 0; i < 20_000; i++) {
      const s = Array.from({ length: next() % 9 }, () => chars[next() % chars.length]).join('');
      const std = STD.test(s) && Buffer.from(s, 'base64').toString('base64') === s;
      const url =
        URL_SAFE.test(s) && s.length % 4 !== 1 && Buffer.from(s, 'base64url').toString('base64url') === s;
      assert.equal(accepts(decodeBase64, s), std, `standard ${JSON.stringify(s)}`);
      assert.equal(accepts(decodeBase64Url, s), url, `base64url ${JSON.stringify(s)}`);
      if (std || url) accepted++;
    }
    assert.ok(accepted > 100, `only ${accepted} random strings were valid: the sample proves little`);
  });

  it('names the refusal: the wrong grammar, or a non-canonical spelling', () => {
    assert.throws(() => decodeBase64('AA', 'r', 'f'), /f: not standard base64 with padding/);
    assert.throws(() => decodeBase64('AB==', 'r', 'f'), /f: non-canonical base64/);
    assert.throws(() => decodeBase64Url('AA==', 'r', 'f'), /f: not base64url without padding/);
    assert.throws(() => decodeBase64Url('AB', 'r', 'f'), /f: non-canonical base64url/);
  });
});
