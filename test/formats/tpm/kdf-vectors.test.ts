import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HASH_ALGS, kdfa, kdfe } from '../../../src/formats/tpm/index.js';
import { fromHex, toHex } from '../../../src/util/bytes.js';
import { needsVectors, readVectorJson } from '../../helpers/vectors.js';

interface KdfVector {
  Name: string;
  HashAlg: number;
  Label: string;
  ContextU: string;
  ContextV: string;
  Bits: number;
  Result: string;
  Key?: string;
  Z?: string;
}

const hex = (s: string) => fromHex(s)!;
const DIR = ['tpm', 'go-tpm-testvectors'];

describe('KDFa / KDFe against go-tpm test vectors', needsVectors, () => {
  it('KDFa: every vector in kdfa.json (100), with the first-byte mask', () => {
    const vectors = readVectorJson<KdfVector[]>(...DIR, 'kdfa.json');
    assert.equal(vectors.length, 100);
    let masked = 0;
    for (const v of vectors) {
      assert.ok(HASH_ALGS[v.HashAlg], `${v.Name}: hash ${v.HashAlg} known`);
      const got = kdfa(v.HashAlg, hex(v.Key!), v.Label, hex(v.ContextU), hex(v.ContextV), v.Bits);
      assert.equal(toHex(got), v.Result, v.Name);
      if (v.Bits % 8 !== 0) masked++;
    }
    // The mask matters: most vectors have a bit count that is not a multiple of 8.
    assert.ok(masked > 50, `only ${masked} vectors exercise the mask`);
  });

  it('KDFe: every vector in kdfe.json (100), with the first-byte mask', () => {
    const vectors = readVectorJson<KdfVector[]>(...DIR, 'kdfe.json');
    assert.equal(vectors.length, 100);
    for (const v of vectors) {
      const got = kdfe(v.HashAlg, hex(v.Z!), v.Label, hex(v.ContextU), hex(v.ContextV), v.Bits);
      assert.equal(toHex(got), v.Result, v.Name);
    }
  });

  it('without the mask a masked vector would differ (the mask is really applied)', () => {
    const v = readVectorJson<KdfVector[]>(...DIR, 'kdfa.json').find(
      (x) => x.Bits % 8 !== 0 && x.Bits % 8 < 7,
    )!;
    const got = kdfa(v.HashAlg, hex(v.Key!), v.Label, hex(v.ContextU), hex(v.ContextV), v.Bits);
    const roundedUp = kdfa(
      v.HashAlg,
      hex(v.Key!),
      v.Label,
      hex(v.ContextU),
      hex(v.ContextV),
      v.Bits + (8 - (v.Bits % 8)),
    );
    assert.equal(got.length, roundedUp.length);
    assert.ok(got[0]! < 1 << (v.Bits % 8));
  });
});

describe('KDF argument checks', () => {
  it('rejects a negative, fractional or beyond 64 KiB', () => {
    for (const bits of [-8, 12.5, 0xffff * 8 + 1]) {
      assert.throws(() => kdfa(0x000b, new Uint8Array(1), 'X', new Uint8Array(), new Uint8Array(), bits), {
        code: 'ERR_INVALID_ARGUMENT',
        reason: 'tpm.kdf.bits',
      });
    }
  });

  it('rejects an unknown hash with NotSupported', () => {
    assert.throws(() => kdfe(0x0012, new Uint8Array(1), 'X', new Uint8Array(), new Uint8Array(), 256), {
      code: 'ERR_NOT_SUPPORTED',
      reason: 'tpm.kdf.hash',
    });
  });
});
