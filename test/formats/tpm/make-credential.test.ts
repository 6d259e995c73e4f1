import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { Reader } from '../../../src/formats/reader.js';
import {
  computeName,
  encodeCredentialFile,
  makeCredential,
  parseCredentialFile,
  publicFromKeyObject,
  TPM_ALG,
  type TpmtPublic,
} from '../../../src/formats/tpm/index.js';
import { toHex } from '../../../src/util/bytes.js';
import { newKeyPairSync } from '../../../src/util/key-pair.js';
import { softEks } from '../../evidence/tpm/ek-fixtures.js';
import { activateCredentialSoft } from '../../evidence/tpm/soft-tpm.js';

const EKS = softEks();
const ak = publicFromKeyObject(newKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey, {
  nameAlg: TPM_ALG.SHA256,
  objectAttributes: 0x00050072,
  scheme: { scheme: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256 },
});
const akName = computeName(ak);
const credential = new Uint8Array(randomBytes(32));

describe('MakeCredential in software', () => {
  const sizes: Record<string, number> = {
    'RSA-2048 low range': 336,
    'P-256 low range': 148,
    'P-384 high range': 196,
  };
  for (const ek of EKS) {
    it(`${ek.name}: tpm2-tools file is ${sizes[ek.name]} B and a software ActivateCredential returns the credential`, () => {
      const blob = makeCredential({ ekPublic: ek.pub, akName, credential });
      const file = encodeCredentialFile(blob);
      assert.equal(file.length, sizes[ek.name]);
      assert.equal(toHex(file.subarray(0, 8)), 'badcc0de00000001');
      const parsed = parseCredentialFile(file);
      assert.equal(toHex(parsed.idObject), toHex(blob.idObject));
      assert.equal(toHex(parsed.encryptedSecret), toHex(blob.encryptedSecret));
      const got = activateCredentialSoft(ek.pub, ek.sensitive, akName, blob.idObject, blob.encryptedSecret);
      assert.equal(toHex(got), toHex(credential));
    });
  }

  it('hashes with the EK nameAlg, not the AK one: P-384/SHA-384 EK gives a 48-byte integrity HMAC for a SHA-256 AK', () => {
    const ek = EKS[2]!;
    const blob = makeCredential({ ekPublic: ek.pub, akName, credential });
    const r = new Reader(blob.idObject, 'test');
    r.u16be();
    assert.equal(r.u16be(), 48);
    // ECC encrypted secret is TPMS_ECC_POINT on the EK's curve: two 48-byte coordinates.
    assert.equal(toHex(blob.encryptedSecret.subarray(0, 4)), '00640030');
  });

  it('is bound to the AK Name and to the blob: another Name or one flipped bit fails the integrity check', () => {
    for (const ek of EKS) {
      const blob = makeCredential({ ekPublic: ek.pub, akName, credential });
      const other = Uint8Array.from(akName);
      other[10]! ^= 1;
      assert.throws(
        () => activateCredentialSoft(ek.pub, ek.sensitive, other, blob.idObject, blob.encryptedSecret),
        /TPM_RC_INTEGRITY/,
      );
      const tampered = Uint8Array.from(blob.idObject);
      tampered[tampered.length - 1]! ^= 1;
      assert.throws(
        () => activateCredentialSoft(ek.pub, ek.sensitive, akName, tampered, blob.encryptedSecret),
        /TPM_RC_INTEGRITY/,
      );
    }
  });

  it('is deterministic given fixed randomness, and fresh otherwise', () => {
    const [rsa, p256] = EKS;
    const rsaRnd = { seed: new Uint8Array(32).fill(1), oaepSeed: new Uint8Array(32).fill(2) };
    const a = makeCredential({ ekPublic: rsa!.pub, akName, credential }, rsaRnd);
    const b = makeCredential({ ekPublic: rsa!.pub, akName, credential }, rsaRnd);
    assert.equal(toHex(encodeCredentialFile(a)), toHex(encodeCredentialFile(b)));
    const eccRnd = { ephemeralPrivate: new Uint8Array(32).fill(3) };
    const c = makeCredential({ ekPublic: p256!.pub, akName, credential }, eccRnd);
    const d = makeCredential({ ekPublic: p256!.pub, akName, credential }, eccRnd);
    assert.equal(toHex(encodeCredentialFile(c)), toHex(encodeCredentialFile(d)));
    const e = makeCredential({ ekPublic: p256!.pub, akName, credential });
    assert.notEqual(toHex(e.encryptedSecret), toHex(c.encryptedSecret));
  });

  it('refuses an EK that is not a restricted decryption key, or whose cipher is not AES-CFB', () => {
    const ek = EKS[0]!.pub;
    const signing: TpmtPublic = { ...ek, objectAttributes: 0x00050072 };
    assert.throws(() => makeCredential({ ekPublic: signing, akName, credential }), {
      code: 'ERR_INVALID_ARGUMENT',
      reason: 'tpm.make_credential.ek_attributes',
    });
    const noSym = {
      ...ek,
      parameters: {
        ...ek.parameters,
        symmetric: { algorithm: TPM_ALG.NULL, keyBits: 0, mode: TPM_ALG.NULL },
      },
    } as TpmtPublic;
    assert.throws(() => makeCredential({ ekPublic: noSym, akName, credential }), {
      code: 'ERR_NOT_SUPPORTED',
      reason: 'tpm.make_credential.symmetric',
    });
    const cbc = {
      ...ek,
      parameters: {
        ...ek.parameters,
        symmetric: { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CBC },
      },
    } as TpmtPublic;
    assert.throws(() => makeCredential({ ekPublic: cbc, akName, credential }), {
      reason: 'tpm.make_credential.symmetric',
    });
  });

  it('refuses a malformed Name and a credential of 0 or more than |nameAlg| bytes', () => {
    const ek = EKS[0]!.pub;
    for (const bad of [
      new Uint8Array(),
      akName.subarray(0, 33),
      Uint8Array.from([0x00, 0x99, ...akName.subarray(2)]),
    ]) {
      assert.throws(() => makeCredential({ ekPublic: ek, akName: bad, credential }), {
        reason: 'tpm.make_credential.name',
      });
    }
    for (const n of [0, 33]) {
      assert.throws(() => makeCredential({ ekPublic: ek, akName, credential: new Uint8Array(n) }), {
        reason: 'tpm.make_credential.credential_size',
      });
    }
    // A P-384/SHA-384 EK takes up to 48 bytes.
    const blob = makeCredential({ ekPublic: EKS[2]!.pub, akName, credential: new Uint8Array(48).fill(9) });
    assert.equal(
      toHex(
        activateCredentialSoft(EKS[2]!.pub, EKS[2]!.sensitive, akName, blob.idObject, blob.encryptedSecret),
      ),
      '09'.repeat(48),
    );
  });

  it('credential file parsing: wrong magic, version, truncation, trailing bytes', () => {
    const file = encodeCredentialFile(makeCredential({ ekPublic: EKS[1]!.pub, akName, credential }));
    const m = Uint8Array.from(file);
    m[0] = 0;
    assert.throws(() => parseCredentialFile(m), {
      code: 'ERR_MALFORMED',
      reason: 'tpm.credential_file.magic',
    });
    const v = Uint8Array.from(file);
    v[7] = 2;
    assert.throws(() => parseCredentialFile(v), { reason: 'tpm.credential_file.version' });
    for (let n = 0; n < file.length; n++) {
      assert.throws(() => parseCredentialFile(file.subarray(0, n)), { code: 'ERR_MALFORMED' });
    }
    assert.throws(() => parseCredentialFile(Uint8Array.from([...file, 1])), {
      reason: 'tpm.credential_file.trailing_bytes',
    });
  });
});
