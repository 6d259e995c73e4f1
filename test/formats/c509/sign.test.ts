import assert from 'node:assert/strict';
import type { KeyObject } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  type C509TbsCertificate,
  c509KeyIdentifier,
  c509PublicKeyFromKeyObject,
  c509ToX509,
  parseC509Certificate,
  parseC509Csr,
  signC509Certificate,
  signC509Csr,
  verifyC509Certificate,
  verifyC509Csr,
} from '../../../src/formats/c509/index.js';
import { oidContentFromString } from '../../../src/formats/der/writer.js';
import { newKeyPairSync } from '../../../src/util/key-pair.js';
import { throwsCode } from '../../helpers/assert-error.js';
import { needsVectors, readVector } from '../../helpers/vectors.js';
import { flipByte, hex } from './assert.js';

type Gen = () => { publicKey: KeyObject; privateKey: KeyObject };

/** Issuer key types node:crypto signs with, and the C509 signature algorithm each one gets by default. */
const ISSUERS: [string, Gen, number][] = [
  ['Ed25519', () => newKeyPairSync('ed25519'), 12],
  ['Ed448', () => newKeyPairSync('ed448'), 13],
  ['P-256', () => newKeyPairSync('ec', { namedCurve: 'prime256v1' }), 0],
  ['P-384', () => newKeyPairSync('ec', { namedCurve: 'secp384r1' }), 1],
  ['P-521', () => newKeyPairSync('ec', { namedCurve: 'secp521r1' }), 2],
  ['brainpoolP256r1', () => newKeyPairSync('ec', { namedCurve: 'brainpoolP256r1' }), 0],
  ['brainpoolP384r1', () => newKeyPairSync('ec', { namedCurve: 'brainpoolP384r1' }), 1],
  ['brainpoolP512r1', () => newKeyPairSync('ec', { namedCurve: 'brainpoolP512r1' }), 2],
  ['RSA-2048', () => newKeyPairSync('rsa', { modulusLength: 2048 }), 23],
];

const subjectKey = newKeyPairSync('ec', { namedCurve: 'prime256v1' });

function tbs(
  issuerName: string,
  subject: KeyObject = subjectKey.publicKey,
  compress = false,
): C509TbsCertificate {
  const pk = c509PublicKeyFromKeyObject(subject, { compress });
  return {
    serialNumber: new Uint8Array([0x01, 0x02]),
    issuer: issuerName,
    notBefore: 1735689600,
    notAfter: 1767225600,
    subject: [1, 'ek', 8, 'Vouchsafe'],
    subjectPublicKey: pk,
    // SKI, critical keyUsage (digitalSignature), a private extension in the OID form
    extensions: [
      1,
      c509KeyIdentifier(pk),
      -2,
      1,
      oidContentFromString('1.3.6.1.4.1.11129.2.1.21'),
      new Uint8Array([0x30, 0x00]),
    ],
  };
}

describe('natively signed C509 certificates (type 2)', () => {
  for (const [name, gen, alg] of ISSUERS) {
    it(`${name}: issues a certificate that verifies with the issuer key, and only with it`, () => {
      const ca = gen();
      const cert = signC509Certificate(tbs('issuing ca'), ca.privateKey);
      const c = parseC509Certificate(cert);
      assert.equal(c.type, 2);
      assert.equal(c.signatureAlgorithm, alg);
      verifyC509Certificate(cert, ca.publicKey);
      throwsCode(
        () => verifyC509Certificate(flipByte(cert, cert.length - 2), ca.publicKey),
        'ERR_SIGNATURE_INVALID',
        'c509.signature.invalid',
      );
      throwsCode(
        () => verifyC509Certificate(flipByte(cert, 4), ca.publicKey),
        'ERR_SIGNATURE_INVALID',
        'c509.signature.invalid',
      );
      const other = gen();
      throwsCode(
        () => verifyC509Certificate(cert, other.publicKey),
        'ERR_SIGNATURE_INVALID',
        'c509.signature.invalid',
      );
      throwsCode(() => c509ToX509(cert), 'ERR_NOT_SUPPORTED', 'c509.cert.native');
    });
  }

  it('RSASSA-PSS (26, 27, 28) and RSA PKCS#1 v1.5 with SHA-384/512 on request', () => {
    const ca = newKeyPairSync('rsa', { modulusLength: 2048 });
    for (const alg of [24, 25, 26, 27, 28]) {
      const cert = signC509Certificate(tbs('ca'), ca.privateKey, { signatureAlgorithm: alg });
      assert.equal(parseC509Certificate(cert).signatureAlgorithm, alg);
      verifyC509Certificate(cert, ca.publicKey);
    }
  });

  it('a point-compressed (0x02/0x03) subject key works as a C509 issuer key', () => {
    const ca = newKeyPairSync('ec', { namedCurve: 'secp384r1' });
    const caCert = signC509Certificate(
      {
        ...tbs('ca'),
        issuer: null,
        subject: 'ca',
        subjectPublicKey: c509PublicKeyFromKeyObject(ca.publicKey, { compress: true }),
      },
      ca.privateKey,
    );
    const pk = parseC509Certificate(caCert).subjectPublicKey as Uint8Array;
    assert.equal(pk.length, 49);
    assert.ok(pk[0] === 0x02 || pk[0] === 0x03);
    verifyC509Certificate(caCert, caCert);
    verifyC509Certificate(signC509Certificate(tbs('ca'), ca.privateKey), caCert);
  });

  it('refuses a key that does not fit the algorithm, on both sides', () => {
    const ed = newKeyPairSync('ed25519');
    throwsCode(
      () => signC509Certificate(tbs('ca'), ed.privateKey, { signatureAlgorithm: 0 }),
      'ERR_INVALID_ARGUMENT',
      'c509.key_mismatch',
    );
    const cert = signC509Certificate(tbs('ca'), ed.privateKey);
    throwsCode(
      () => verifyC509Certificate(cert, subjectKey.publicKey),
      'ERR_INVALID_ARGUMENT',
      'c509.key_mismatch',
    );
    throwsCode(
      () => signC509Certificate(tbs('ca'), ed.privateKey, { signatureAlgorithm: 4 }),
      'ERR_NOT_SUPPORTED',
      'c509.alg_unsupported',
    );
    throwsCode(
      () => signC509Certificate(tbs('ca'), ed.privateKey, { signatureAlgorithm: 8 }),
      'ERR_NOT_SUPPORTED',
      'c509.alg_unsupported',
    );
  });

  it('unsigned certificates (5) need the explicit allowUnsigned to verify', () => {
    const cert = signC509Certificate({ ...tbs('ca'), issuer: null }, undefined, { signatureAlgorithm: 5 });
    assert.equal(hex(parseC509Certificate(cert).signatureValue as Uint8Array), '');
    throwsCode(
      () => verifyC509Certificate(cert, subjectKey.publicKey),
      'ERR_SIGNATURE_INVALID',
      'c509.signature.unsigned',
    );
    verifyC509Certificate(cert, subjectKey.publicKey, { allowUnsigned: true });
  });

  it('refuses fields a native certificate must not have', () => {
    const k = newKeyPairSync('ed25519').privateKey;
    throwsCode(
      () => signC509Certificate({ ...tbs('ca'), serialNumber: new Uint8Array([0, 1]) }, k),
      'ERR_INVALID_ARGUMENT',
      'c509.serial',
    );
    throwsCode(
      () => signC509Certificate({ ...tbs('ca'), subject: [-1, 'x'] }, k),
      'ERR_MALFORMED',
      'c509.name.attribute_sign',
    );
    throwsCode(
      () => signC509Certificate({ ...tbs('ca'), notBefore: -1 }, k),
      'ERR_INVALID_ARGUMENT',
      'c509.time',
    );
    // a registered extension (SKI, 2.5.29.14) must use its int, not the generic OID form (§3.7)
    const generic = [oidContentFromString('2.5.29.14'), new Uint8Array([4, 1, 1])];
    throwsCode(
      () => signC509Certificate({ ...tbs('ca'), extensions: generic }, k),
      'ERR_INVALID_ARGUMENT',
      'c509.native.generic_extension',
    );
    throwsCode(
      () => signC509Certificate({ ...tbs('ca'), extensions: [4, 'x'] }, k),
      'ERR_MALFORMED',
      'c509.ext.shape',
    );
  });
});

describe('natively signed C509 requests (type 2)', () => {
  for (const [name, gen, alg] of ISSUERS.filter(([n]) =>
    ['Ed25519', 'P-256', 'P-521', 'RSA-2048'].includes(n),
  )) {
    it(`${name}: a request signed with the subject key verifies; tampering does not`, () => {
      const k = gen();
      const csr = signC509Csr(
        { subject: 'guest-ak', attributes: [0, [3, 'vm.example', -2, 1]] },
        k.privateKey,
      );
      const r = parseC509Csr(csr);
      assert.equal(r.type, 2);
      assert.equal(r.signatureAlgorithm, alg);
      verifyC509Csr(csr);
      throwsCode(
        () => verifyC509Csr(flipByte(csr, csr.length - 2)),
        'ERR_SIGNATURE_INVALID',
        'c509.signature.invalid',
      );
    });
  }

  it('a request for another key than the signing one does not verify', () => {
    const a = newKeyPairSync('ed25519');
    const b = newKeyPairSync('ed25519');
    const csr = signC509Csr({ subject: 'x', subjectPublicKey: b.publicKey, attributes: [] }, a.privateKey);
    throwsCode(() => verifyC509Csr(csr), 'ERR_SIGNATURE_INVALID', 'c509.signature.invalid');
  });

  it('only UTF8 challenge passwords are allowed in type 2 (§4.3.2)', () => {
    const k = newKeyPairSync('ed25519').privateKey;
    throwsCode(
      () => signC509Csr({ subject: 'x', attributes: [1, { tag: 121, value: 'p' } as never] }, k),
      'ERR_MALFORMED',
      'c509.csr.attribute',
    );
  });
});

describe('C509 key identifier for native certificates', needsVectors, () => {
  it('matches the subjectKeyIdentifier of the type 2 CA certificate (§2) and the AKI of the certificates it issued', () => {
    const ca = parseC509Certificate(readVector('c509', '2-ca-certificate', 'c509-type2.cbor'));
    const kid = c509KeyIdentifier({ algorithm: ca.subjectPublicKeyAlgorithm, value: ca.subjectPublicKey });
    const exts = ca.extensions as unknown[];
    assert.equal(exts[0], 1);
    assert.equal(hex(kid), hex(exts[1] as Uint8Array));
    const ee = parseC509Certificate(readVector('c509', '3.12-montgomery-ec-x25519', 'c509-type2.cbor'))
      .extensions as unknown[];
    assert.equal(hex(ee[ee.indexOf(7) + 1] as Uint8Array), hex(kid));
  });
});
