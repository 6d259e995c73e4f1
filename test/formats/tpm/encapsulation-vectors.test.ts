import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encapsulate, encodePublic, parsePublic, TPM_ALG } from '../../../src/formats/tpm/index.js';
import { fromHex, toHex } from '../../../src/util/bytes.js';
import { decapsulate, parseSensitive } from '../../evidence/tpm/soft-tpm.js';
import { needsVectors, readVectorJson } from '../../helpers/vectors.js';

interface RsaVector {
  Name: string;
  Label: string;
  OAEPSalt: string;
  PublicKey: string;
  PrivateKey: string;
  Secret: string;
  Ciphertext: string;
}
interface EccVector {
  Name: string;
  Label: string;
  EphemeralPrivate: string;
  PublicKey: string;
  PrivateKey: string;
  Secret: string;
  Ciphertext: string;
}

const hex = (s: string) => fromHex(s)!;
const DIR = ['tpm', 'go-tpm-testvectors'];

describe('labeled encapsulation against go-tpm test vectors', needsVectors, () => {
  it('RSA-OAEP: all 100 vectors encapsulate byte-exactly and decapsulate with node OAEP', () => {
    const vectors = readVectorJson<RsaVector[]>(...DIR, 'rsa_labeled_encaps.json');
    assert.equal(vectors.length, 100);
    for (const v of vectors) {
      const pub = parsePublic(hex(v.PublicKey));
      assert.equal(pub.type, TPM_ALG.RSA, v.Name);
      assert.equal(toHex(encodePublic(pub)), v.PublicKey, `${v.Name}: public area round-trips`);
      const got = encapsulate(pub, v.Label, { seed: hex(v.Secret), oaepSeed: hex(v.OAEPSalt) });
      assert.equal(toHex(got.encryptedSecret), v.Ciphertext, v.Name);
      assert.equal(toHex(got.seed), v.Secret, v.Name);
      const priv = parseSensitive(hex(v.PrivateKey));
      assert.equal(toHex(decapsulate(pub, priv.sensitive, v.Label, hex(v.Ciphertext))), v.Secret, v.Name);
    }
  });

  it('ECC one-pass DH + KDFe: all 100 vectors give the same seed and point, and decapsulate', () => {
    const vectors = readVectorJson<EccVector[]>(...DIR, 'ecc_labeled_encaps.json');
    assert.equal(vectors.length, 100);
    const curves = new Set<number>();
    for (const v of vectors) {
      const pub = parsePublic(hex(v.PublicKey));
      assert.equal(pub.type, TPM_ALG.ECC, v.Name);
      if (pub.type !== TPM_ALG.ECC) continue;
      curves.add(pub.parameters.curveId);
      assert.equal(toHex(encodePublic(pub)), v.PublicKey, `${v.Name}: public area round-trips`);
      const got = encapsulate(pub, v.Label, { ephemeralPrivate: hex(v.EphemeralPrivate) });
      assert.equal(toHex(got.seed), v.Secret, v.Name);
      assert.equal(toHex(got.encryptedSecret), v.Ciphertext, v.Name);
      const priv = parseSensitive(hex(v.PrivateKey));
      assert.equal(toHex(decapsulate(pub, priv.sensitive, v.Label, hex(v.Ciphertext))), v.Secret, v.Name);
    }
    assert.deepEqual([...curves].sort(), [3, 4, 5]);
  });

  it('random encapsulation round-trips through decapsulation (RSA and ECC vector keys)', () => {
    const rsa = readVectorJson<RsaVector[]>(...DIR, 'rsa_labeled_encaps.json')[0]!;
    const ecc = readVectorJson<EccVector[]>(...DIR, 'ecc_labeled_encaps.json')[0]!;
    for (const v of [rsa, ecc]) {
      const pub = parsePublic(hex(v.PublicKey));
      const a = encapsulate(pub, 'IDENTITY');
      const b = encapsulate(pub, 'IDENTITY');
      assert.notEqual(toHex(a.seed), toHex(b.seed), 'fresh randomness each time');
      const priv = parseSensitive(hex(v.PrivateKey));
      assert.equal(toHex(decapsulate(pub, priv.sensitive, 'IDENTITY', a.encryptedSecret)), toHex(a.seed));
      // The label is bound: decapsulating under another label does not give the seed back.
      let other: string | undefined;
      try {
        other = toHex(decapsulate(pub, priv.sensitive, 'STORAGE', a.encryptedSecret));
      } catch {
        other = undefined; // RSA-OAEP rejects a wrong label outright
      }
      assert.notEqual(other, toHex(a.seed));
    }
  });
});
