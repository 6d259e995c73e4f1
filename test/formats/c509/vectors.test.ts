import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  c509CsrToX509,
  c509ToX509,
  decodeCbor,
  encodeC509CsrTemplate,
  encodeCbor,
  parseC509Certificate,
  parseC509Csr,
  parseC509CsrTemplate,
  signC509Certificate,
  verifyC509Certificate,
  verifyC509Csr,
  x509CsrToC509,
  x509ToC509,
} from '../../../src/formats/c509/index.js';
import { newKeyPairSync } from '../../../src/util/key-pair.js';
import { throwsCode } from '../../helpers/assert-error.js';
import {
  needsVectors,
  readVector,
  readVectorJson,
  readVectorText,
  vectorCases,
  vectorPath,
} from '../../helpers/vectors.js';
import { flipByte, hex } from './assert.js';

/**
 * The working group's C509 examples (draft-ietf-cose-c509-test-vectors-03, for draft-20), read in place from
 * ../shared/vectors/c509. Every folder is its own test case. meta.json (independently checked with openssl and
 * a separate decoder) is the oracle for algorithms, sizes and which elements differ between types 2 and 3.
 */

interface Meta {
  kind: 'certificate' | 'csr' | 'csr-template';
  c509SignatureAlgorithm?: number;
  c509SubjectPublicKeyAlgorithm?: number;
  statedSizes: Record<string, number>;
  type3VsType2DifferingElements?: number[];
  c509CertificationRequestTemplateType?: number[];
}

const CASES = vectorCases('c509');
const meta = (name: string) => readVectorJson<Meta>('c509', name, 'meta.json');
const ofKind = (k: Meta['kind']) => CASES.filter((n) => meta(n).kind === k);

/**
 * Examples whose signature node:crypto cannot check, and why. Their byte conversions are still exact; their
 * verification must report NotSupported c509.alg_unsupported (never pass silently).
 */
const UNVERIFIABLE: Record<string, string> = {
  '3.7-weierstrass-ec-sm2p256v1': 'SM2 with SM3',
  '3.8-weierstrass-ec-brainpoolp256r1': 'ECDSA with SHAKE128 (RFC 8692)',
  '3.10-weierstrass-ec-brainpoolp512r1': 'ECDSA with SHAKE256 (RFC 8692)',
  '3.11-weierstrass-ec-frp256v1': 'ECDSA-SHA1 with a key on FRP256v1 (not an OpenSSL curve)',
  '4.21-rsassa-pss-shake128': 'RSASSA-PSS with SHAKE128 (RFC 8692)',
  '4.22-rsassa-pss-shake256': 'RSASSA-PSS with SHAKE256 (RFC 8692)',
};
/** id-alg-unsigned: verifies only when the caller explicitly allows unsigned items. */
const UNSIGNED = new Set(['2-ca-certificate']);
/** Algorithms whose signatures are deterministic: re-signing must reproduce the example byte for byte. */
const DETERMINISTIC = new Set([5, 12, 13, -256, 23, 24, 25]);
const CA = '2-ca-certificate';

function differingElements(a: Uint8Array, b: Uint8Array): number[] {
  const x = decodeCbor(a) as unknown[];
  const y = decodeCbor(b) as unknown[];
  const out: number[] = [];
  for (let i = 0; i < x.length; i++) {
    if (hex(encodeCbor(x[i] as never)) !== hex(encodeCbor(y[i] as never))) out.push(i);
  }
  return out;
}

function tryPrivateKey(name: string): KeyObject | undefined {
  try {
    return createPrivateKey(readVectorText('c509', name, 'private-key.pem'));
  } catch {
    return undefined; // FRP256v1: OpenSSL has no such curve
  }
}

describe('C509 certificates: the draft-20 examples', needsVectors, () => {
  for (const name of ofKind('certificate')) {
    const m = meta(name);
    const der = () => readVector('c509', name, 'x509.der');
    const t3 = () => readVector('c509', name, 'c509-type3.cbor');
    const t2 = () => readVector('c509', name, 'c509-type2.cbor');

    it(`${name}: DER -> C509 type 3 is byte-exact`, () => {
      assert.equal(hex(x509ToC509(der())), hex(t3()));
    });

    it(`${name}: C509 type 3 -> DER is byte-exact`, () => {
      assert.equal(hex(c509ToX509(t3())), hex(der()));
    });

    it(`${name}: both types decode; algorithms, sizes and type 2/3 differences match meta.json`, () => {
      const c3 = parseC509Certificate(t3());
      const c2 = parseC509Certificate(t2());
      assert.equal(c3.type, 3);
      assert.equal(c2.type, 2);
      for (const c of [c3, c2]) {
        assert.equal(c.signatureAlgorithm, m.c509SignatureAlgorithm);
        assert.equal(c.subjectPublicKeyAlgorithm, m.c509SubjectPublicKeyAlgorithm);
      }
      assert.equal(t3().length, m.statedSizes.t3_size);
      assert.equal(t2().length, m.statedSizes.t2_size);
      assert.equal(der().length, m.statedSizes.pem_size);
      assert.deepEqual(differingElements(t3(), t2()), m.type3VsType2DifferingElements);
      // the hex file the draft prints is the same item
      assert.equal(
        readVectorText('c509', name, 'c509-type3.hex').replace(/\s+/g, '').toLowerCase(),
        hex(t3()),
      );
    });

    it(`${name}: signature of types 2 and 3 with the issuer key`, () => {
      const c2 = parseC509Certificate(t2());
      const selfSigned = c2.issuer === null;
      const issuer2 = selfSigned ? t2() : readVector('c509', CA, 'c509-type2.cbor');
      const issuer3 = selfSigned ? t3() : readVector('c509', CA, 'c509-type3.cbor');
      if (!selfSigned) assert.equal(c2.issuer, 'test ca');
      if (UNVERIFIABLE[name] !== undefined) {
        throwsCode(() => verifyC509Certificate(t2(), issuer2), 'ERR_NOT_SUPPORTED', 'c509.alg_unsupported');
        throwsCode(() => verifyC509Certificate(t3(), issuer3), 'ERR_NOT_SUPPORTED', 'c509.alg_unsupported');
      } else if (UNSIGNED.has(name)) {
        throwsCode(
          () => verifyC509Certificate(t2(), issuer2),
          'ERR_SIGNATURE_INVALID',
          'c509.signature.unsigned',
        );
        verifyC509Certificate(t2(), issuer2, { allowUnsigned: true });
        verifyC509Certificate(t3(), issuer3, { allowUnsigned: true });
      } else {
        verifyC509Certificate(t2(), issuer2);
        verifyC509Certificate(t3(), issuer3);
        // the issuer key also works as a KeyObject from the folder's PEM
        const pem = readVectorText('c509', selfSigned ? name : CA, 'public-key.from-cert.pem');
        verifyC509Certificate(t2(), createPublicKey(pem));
        verifyC509Certificate(t3(), createPublicKey(pem));
      }
    });

    if (UNVERIFIABLE[name] === undefined && !UNSIGNED.has(name)) {
      it(`${name}: a flipped signature byte fails verification (types 2 and 3)`, () => {
        const c2 = parseC509Certificate(t2());
        const issuer2 = c2.issuer === null ? t2() : readVector('c509', CA, 'c509-type2.cbor');
        const issuer3 = c2.issuer === null ? t3() : readVector('c509', CA, 'c509-type3.cbor');
        // the signature is the last bytes of the array
        throwsCode(
          () => verifyC509Certificate(flipByte(t2(), t2().length - 5), issuer2),
          'ERR_SIGNATURE_INVALID',
          'c509.signature.invalid',
        );
        throwsCode(
          () => verifyC509Certificate(flipByte(t3(), t3().length - 5), issuer3),
          'ERR_SIGNATURE_INVALID',
          'c509.signature.invalid',
        );
        // and a changed TBS byte (the last serial octet) too
        const c3 = parseC509Certificate(t3());
        const serialAt = hex(t3()).indexOf(hex(c3.serialNumber)) / 2 + c3.serialNumber.length - 1;
        throwsCode(
          () => verifyC509Certificate(flipByte(t3(), serialAt), issuer3),
          'ERR_SIGNATURE_INVALID',
          'c509.signature.invalid',
        );
      });
    }

    const alg = m.c509SignatureAlgorithm!;
    if (UNVERIFIABLE[name] === undefined) {
      it(`${name}: re-signing the type 2 TBS with the issuer's private key ${DETERMINISTIC.has(alg) ? 'reproduces the example exactly' : 'verifies'}`, () => {
        const c = parseC509Certificate(t2());
        const key = c.issuer === null ? tryPrivateKey(name) : tryPrivateKey(CA);
        assert.ok(key !== undefined, 'the folder has a loadable private key');
        const out = signC509Certificate(
          {
            serialNumber: c.serialNumber,
            issuer: c.issuer,
            notBefore: c.notBefore,
            notAfter: c.notAfter,
            subject: c.subject,
            subjectPublicKey: { algorithm: c.subjectPublicKeyAlgorithm, value: c.subjectPublicKey },
            extensions: c.extensions,
          },
          key,
          { signatureAlgorithm: alg },
        );
        if (DETERMINISTIC.has(alg)) assert.equal(hex(out), hex(t2()));
        else {
          assert.equal(hex(parseC509Certificate(out).tbs), hex(c.tbs));
          verifyC509Certificate(out, c.issuer === null ? out : readVector('c509', CA, 'c509-type2.cbor'));
        }
      });
    }
  }
});

describe('C509 certification requests: the draft-20 examples', needsVectors, () => {
  for (const name of ofKind('csr')) {
    const m = meta(name);
    const der = () => readVector('c509', name, 'csr.der');
    const t3 = () => readVector('c509', name, 'csr.c509-type3.cbor');
    const t2 = () => readVector('c509', name, 'csr.c509-type2.cbor');

    it(`${name}: PKCS#10 DER -> C509 request type 3 is byte-exact`, () => {
      assert.equal(hex(x509CsrToC509(der())), hex(t3()));
    });

    it(`${name}: C509 request type 3 -> PKCS#10 DER is byte-exact`, () => {
      assert.equal(hex(c509CsrToX509(t3())), hex(der()));
    });

    it(`${name}: both types decode; algorithms, sizes and differences match meta.json`, () => {
      const r3 = parseC509Csr(t3());
      const r2 = parseC509Csr(t2());
      assert.equal(r3.type, 3);
      assert.equal(r2.type, 2);
      for (const r of [r3, r2]) {
        assert.equal(r.signatureAlgorithm, m.c509SignatureAlgorithm);
        assert.equal(r.subjectPublicKeyAlgorithm, m.c509SubjectPublicKeyAlgorithm);
      }
      assert.equal(t3().length, m.statedSizes['csr.c509-type3_size']);
      assert.equal(t2().length, m.statedSizes['csr.c509-type2_size']);
      assert.deepEqual(differingElements(t3(), t2()), m.type3VsType2DifferingElements);
      throwsCode(() => c509CsrToX509(t2()), 'ERR_NOT_SUPPORTED', 'c509.csr.native');
    });
  }

  it('8.1-csr-ecdsa-with-sha256: both types verify; a flipped signature byte does not', () => {
    const n = '8.1-csr-ecdsa-with-sha256';
    for (const f of ['csr.c509-type2.cbor', 'csr.c509-type3.cbor']) {
      const b = readVector('c509', n, f);
      verifyC509Csr(b);
      throwsCode(
        () => verifyC509Csr(flipByte(b, b.length - 3)),
        'ERR_SIGNATURE_INVALID',
        'c509.signature.invalid',
      );
    }
  });

  it('8.3-csr-ecdh-pop-sha256-hmac-sha256: the ECDH proof of possession verifies with the 3.3 recipient key', () => {
    const n = '8.3-csr-ecdh-pop-sha256-hmac-sha256';
    const peer = '3.3-weierstrass-ec-secp256r1';
    const privateKey = createPrivateKey(readVectorText('c509', peer, 'private-key.pem'));
    const t2 = readVector('c509', n, 'csr.c509-type2.cbor');
    const t3 = readVector('c509', n, 'csr.c509-type3.cbor');
    // type 2: CBOR names of the recipient's C509 certificate; type 3: DER names of its X.509 certificate
    verifyC509Csr(t2, { pop: { privateKey, certificate: readVector('c509', peer, 'c509-type2.cbor') } });
    verifyC509Csr(t3, { pop: { privateKey, certificate: readVector('c509', peer, 'x509.der') } });
    verifyC509Csr(t3, { pop: { privateKey, certificate: readVector('c509', peer, 'c509-type3.cbor') } });
    // without the recipient, or with another recipient key, or with a flipped MAC byte: rejected
    throwsCode(() => verifyC509Csr(t2), 'ERR_INVALID_ARGUMENT', 'c509.pop_requires_recipient');
    const other = newKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
    throwsCode(
      () =>
        verifyC509Csr(t2, {
          pop: { privateKey: other, certificate: readVector('c509', peer, 'c509-type2.cbor') },
        }),
      'ERR_SIGNATURE_INVALID',
      'c509.signature.invalid',
    );
    throwsCode(
      () =>
        verifyC509Csr(flipByte(t3, t3.length - 1), {
          pop: { privateKey, certificate: readVector('c509', peer, 'x509.der') },
        }),
      'ERR_SIGNATURE_INVALID',
      'c509.signature.invalid',
    );
    // the MAC binds the recipient certificate's names: the right key with another certificate fails
    throwsCode(
      () =>
        verifyC509Csr(t2, {
          pop: {
            privateKey,
            certificate: readVector('c509', '3.5-weierstrass-ec-secp384r1', 'c509-type2.cbor'),
          },
        }),
      'ERR_SIGNATURE_INVALID',
      'c509.signature.invalid',
    );
  });

  it('8.5-csr-ecdh-pop-sha512-hmac-sha512: needs its recipient (3.6, not in the vectors), so it is refused without one', () => {
    const n = '8.5-csr-ecdh-pop-sha512-hmac-sha512';
    assert.equal(parseC509Csr(readVector('c509', n, 'csr.c509-type2.cbor')).signatureAlgorithm, 16);
    for (const f of ['csr.c509-type2.cbor', 'csr.c509-type3.cbor']) {
      throwsCode(
        () => verifyC509Csr(readVector('c509', n, f)),
        'ERR_INVALID_ARGUMENT',
        'c509.pop_requires_recipient',
      );
    }
  });

  for (const n of ['8.6-csr-unsigned-pop-x25519', '8.7-csr-unsigned-pop-x25519-with-cert']) {
    it(`${n}: unsigned requests are accepted only when unsigned is allowed`, () => {
      for (const f of ['csr.c509-type2.cbor', 'csr.c509-type3.cbor']) {
        const b = readVector('c509', n, f);
        throwsCode(() => verifyC509Csr(b), 'ERR_SIGNATURE_INVALID', 'c509.signature.unsigned');
        verifyC509Csr(b, { allowUnsigned: true });
      }
    });
  }

  it('8.7-csr-unsigned-pop-x25519-with-cert: the embedded certificate in each request type', () => {
    const n = '8.7-csr-unsigned-pop-x25519-with-cert';
    const der = readVector('c509', n, 'embedded-cert.x509.der');
    const e3 = readVector('c509', n, 'embedded-cert.c509-type3.cbor');
    const e2 = readVector('c509', n, 'embedded-cert.c509-type2.cbor');
    assert.equal(hex(x509ToC509(der)), hex(e3));
    assert.equal(hex(c509ToX509(e3)), hex(der));
    const pkps = (f: string) => {
      const attrs = parseC509Csr(readVector('c509', n, f)).attributes;
      assert.equal(attrs[0], 2); // privateKeyPossessionStatement
      return (attrs[1] as unknown[])[2] as Uint8Array;
    };
    assert.equal(hex(pkps('csr.c509-type3.cbor')), hex(e3));
    assert.equal(hex(pkps('csr.c509-type2.cbor')), hex(e2));
    // the embedded certificate is self-signed with Ed25519: both forms verify
    verifyC509Certificate(e2, e2);
    verifyC509Certificate(e3, e3);
  });
});

describe('C509 certification request templates: the draft-20 examples', needsVectors, () => {
  for (const name of ofKind('csr-template')) {
    it(`${name}: decodes and re-encodes byte-exactly`, () => {
      const b = readVector('c509', name, 'c509-csrt.cbor');
      const t = parseC509CsrTemplate(b);
      assert.deepEqual([t.templateType], meta(name).c509CertificationRequestTemplateType);
      assert.equal(b.length, meta(name).statedSizes['c509-csrt_size']);
      assert.equal(hex(encodeC509CsrTemplate(t)), hex(b));
    });
  }

  it('10.3-csrt-complex: fields decode to what the template asks for', () => {
    const t = parseC509CsrTemplate(readVector('c509', '10.3-csrt-complex', 'c509-csrt.cbor'));
    assert.deepEqual(t.requestTypes, [2, 3]);
    assert.equal(t.signatureAlgorithms?.[0], 1);
    assert.deepEqual(
      t.subject?.map((e) => [
        typeof e.attributeType === 'number' ? e.attributeType : 'oid',
        e.minOccurs,
        e.maxOccurs,
        e.value === undefined,
      ]),
      [
        [1, 1, 1, true],
        [4, 1, 1, false],
        ['oid', 1, 1, true],
        ['oid', 1, 1, false],
      ],
    );
    assert.deepEqual(
      t.extensions?.map((e) => [
        e.extensionId instanceof Uint8Array ? 'oid' : e.extensionId,
        e.optional,
        e.value,
      ]),
      [
        [8, false, undefined],
        [2, true, 96],
        ['oid', false, undefined],
        ['oid', false, t.extensions?.[3]?.value],
      ],
    );
  });

  it('templates are refused by the certificate and request decoders (undefined is not allowed there)', () => {
    const b = readVector('c509', '10.1-csrt-all-undefined', 'c509-csrt.cbor');
    throwsCode(() => parseC509Csr(b), 'ERR_MALFORMED', 'c509.cbor.undefined');
    throwsCode(() => parseC509Certificate(b), 'ERR_MALFORMED', 'c509.cbor.undefined');
  });
});

describe('C509 vectors: every folder is covered', needsVectors, () => {
  it('each example folder is a certificate, request or template case above', () => {
    assert.ok(CASES.length >= 25, `found ${CASES.length} folders under ${vectorPath('c509')}`);
    for (const n of CASES) assert.ok(['certificate', 'csr', 'csr-template'].includes(meta(n).kind), n);
    for (const n of Object.keys(UNVERIFIABLE)) assert.ok(CASES.includes(n), `${n} is a vector folder`);
  });
});
