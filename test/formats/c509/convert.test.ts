import assert from 'node:assert/strict';
import { ECDH, type KeyObject, sign } from 'node:crypto';
import { describe, it } from 'node:test';
import { C509_DER, parseDer } from '../../../src/formats/c509/der-input.js';
import { x509ExtensionsDer } from '../../../src/formats/c509/extensions.js';
import {
  type CborValue,
  c509ToX509,
  decodeCbor,
  encodeCbor,
  parseC509Certificate,
  verifyC509Certificate,
  x509ToC509,
} from '../../../src/formats/c509/index.js';
import { nameToDer } from '../../../src/formats/c509/name.js';
import { children, ctx, Tag } from '../../../src/formats/der/reader.js';
import { oidContentFromString, tlv } from '../../../src/formats/der/writer.js';
import { newKeyPairSync } from '../../../src/util/key-pair.js';
import { throwsCode } from '../../helpers/assert-error.js';
import { needsVectors, readVector } from '../../helpers/vectors.js';
import { hex } from './assert.js';

/** Decodes a C509 item, lets `f` change its elements, and re-encodes it (deterministically). */
function mutate(bytes: Uint8Array, f: (a: CborValue[]) => void): Uint8Array {
  const a = decodeCbor(bytes) as CborValue[];
  f(a);
  return encodeCbor(a);
}

/** The C509 item with element `i` replaced. */
function setAt(bytes: Uint8Array, i: number, v: CborValue): Uint8Array {
  return mutate(bytes, (a) => {
    a[i] = v;
  });
}

/** Rebuilds a DER certificate with its TBSCertificate fields changed (signature left as is). */
function rebuild(der: Uint8Array, f: (tbs: Uint8Array[]) => Uint8Array[], sigAlg?: Uint8Array): Uint8Array {
  const [tbs, alg, sig] = children(parseDer(der), C509_DER);
  const fields = f(children(tbs!, C509_DER).map((t) => new Uint8Array(t.raw)));
  return tlv(Tag.Sequence, tlv(Tag.Sequence, ...fields), sigAlg ?? alg!.raw, sig!.raw);
}

const ext = (oid: string, critical: boolean, value: Uint8Array) => ({
  oid: oidContentFromString(oid),
  critical,
  value,
});

describe('C509 type 3: non-canonical C509 is refused', needsVectors, () => {
  const t3 = (n: string) => readVector('c509', n, 'c509-type3.cbor');
  const P256 = '3.3-weierstrass-ec-secp256r1';

  it('a serial number with a leading zero octet (§3.1.2)', () => {
    const bad = mutate(t3(P256), (a) => {
      a[1] = new Uint8Array([0, ...(a[1] as Uint8Array)]);
    });
    throwsCode(() => parseC509Certificate(bad), 'ERR_MALFORMED', 'c509.cert.serial');
  });

  it('lowercase-hex text kept as text instead of a byte string (§3.1.4)', () => {
    const bad = mutate(t3(P256), (a) => {
      a[6] = '1234567890abcdef';
    });
    throwsCode(() => c509ToX509(bad), 'ERR_MALFORMED', 'c509.not_canonical');
  });

  it('a non-canonical type 3 certificate does not verify either (one C509 form per certificate)', () => {
    const bad = setAt(t3(P256), 6, '1234567890abcdef');
    throwsCode(() => verifyC509Certificate(bad, bad), 'ERR_MALFORMED', 'c509.not_canonical');
    verifyC509Certificate(t3(P256), t3(P256));
  });

  it('a lone keyUsage written as an array instead of one int (§3.1.10)', () => {
    const bad = mutate(t3('4.1-rsassa-pkcs1-v1_5-sha1'), (a) => {
      assert.equal(a[9], -1);
      a[9] = [-2, 1];
    });
    throwsCode(() => c509ToX509(bad), 'ERR_MALFORMED', 'c509.not_canonical');
  });

  it('an issuer equal to the subject written out instead of null', () => {
    const bad = mutate(t3(P256), (a) => {
      a[3] = a[6]!;
    });
    throwsCode(() => c509ToX509(bad), 'ERR_MALFORMED', 'c509.not_canonical');
  });

  it('no-expiry notAfter written as a time instead of null', () => {
    const bad = mutate(t3('3.1-rsa-public-key-exponent-65537'), (a) => {
      a[5] = 253402300799; // 9999-12-31T23:59:59Z
    });
    throwsCode(() => c509ToX509(bad), 'ERR_MALFORMED', 'c509.not_canonical');
  });

  it('an RSA key with exponent 65537 written as [modulus, exponent]', () => {
    const bad = mutate(t3('3.1-rsa-public-key-exponent-65537'), (a) => {
      a[8] = [a[8]!, new Uint8Array([1, 0, 1])];
    });
    throwsCode(() => c509ToX509(bad), 'ERR_MALFORMED', 'c509.not_canonical');
  });

  it('structure errors and unknown code points', () => {
    throwsCode(
      () => parseC509Certificate(mutate(t3(P256), (a) => a.pop())),
      'ERR_MALFORMED',
      'c509.cert.shape',
    );
    throwsCode(() => parseC509Certificate(setAt(t3(P256), 0, 1)), 'ERR_NOT_SUPPORTED', 'c509.cert.type');
    throwsCode(() => parseC509Certificate(setAt(t3(P256), 0, 4)), 'ERR_NOT_SUPPORTED', 'c509.cert.type');
    throwsCode(() => parseC509Certificate(setAt(t3(P256), 4, -1)), 'ERR_MALFORMED', 'c509.cert.time');
    throwsCode(() => parseC509Certificate(setAt(t3(P256), 6, null)), 'ERR_MALFORMED', 'c509.cert.shape');
    throwsCode(() => parseC509Certificate(setAt(t3(P256), 6, [1])), 'ERR_MALFORMED', 'c509.name.shape');
    throwsCode(
      () => parseC509Certificate(setAt(t3(P256), 6, new Uint8Array(0))),
      'ERR_MALFORMED',
      'c509.name.special_text',
    );
    throwsCode(() => parseC509Certificate(setAt(t3(P256), 9, [1])), 'ERR_MALFORMED', 'c509.ext.shape');
    throwsCode(() => c509ToX509(setAt(t3(P256), 9, [37, 1])), 'ERR_NOT_SUPPORTED', 'c509.ext.unknown');
    throwsCode(() => c509ToX509(setAt(t3(P256), 9, [4, 'x'])), 'ERR_MALFORMED', 'c509.ext.shape');
    throwsCode(() => c509ToX509(setAt(t3(P256), 2, 99)), 'ERR_NOT_SUPPORTED', 'c509.alg_unknown');
    throwsCode(
      () => c509ToX509(setAt(t3(P256), 6, [99, 'x'])),
      'ERR_NOT_SUPPORTED',
      'c509.name.attribute_unknown',
    );
    throwsCode(() => c509ToX509(setAt(t3(P256), 6, [-4, 'D_E'])), 'ERR_MALFORMED', 'c509.name.printable');
    throwsCode(
      () =>
        c509ToX509(
          mutate(t3(P256), (a) => {
            a[10] = (a[10] as Uint8Array).subarray(1);
          }),
        ),
      'ERR_MALFORMED',
      'c509.sig.shape',
    );
    throwsCode(
      () => c509ToX509(readVector('c509', P256, 'c509-type2.cbor')),
      'ERR_NOT_SUPPORTED',
      'c509.cert.native',
    );
  });

  it('natively signed certificates must use non-negative attribute types (§3.1.4)', () => {
    const bad = mutate(readVector('c509', P256, 'c509-type2.cbor'), (a) => {
      a[6] = [-1, 'printable'];
    });
    throwsCode(() => parseC509Certificate(bad), 'ERR_MALFORMED', 'c509.name.attribute_sign');
  });
});

describe('C509 type 3: point compression (0xfe/0xfd, §3.2.1)', needsVectors, () => {
  const curves: [string, number][] = [
    ['3.3-weierstrass-ec-secp256r1', 32],
    ['3.5-weierstrass-ec-secp384r1', 48],
    ['3.7-weierstrass-ec-sm2p256v1', 32],
    ['3.8-weierstrass-ec-brainpoolp256r1', 32],
    ['3.9-weierstrass-ec-brainpoolp384r1', 48],
    ['3.10-weierstrass-ec-brainpoolp512r1', 64],
  ];
  for (const [n, size] of curves) {
    it(`${n}: compressed C509 converts back to the same DER`, () => {
      const der = readVector('c509', n, 'x509.der');
      const c = x509ToC509(der, { compressPoints: true });
      const pk = parseC509Certificate(c).subjectPublicKey as Uint8Array;
      assert.equal(pk.length, 1 + size);
      assert.ok(pk[0] === 0xfe || pk[0] === 0xfd);
      assert.equal(hex(c509ToX509(c)), hex(der));
    });
  }

  it('FRP256v1 points are left uncompressed (no decompression here, so compression would not invert)', () => {
    const n = '3.11-weierstrass-ec-frp256v1';
    const c = x509ToC509(readVector('c509', n, 'x509.der'), { compressPoints: true });
    assert.equal(hex(c), hex(readVector('c509', n, 'c509-type3.cbor')));
  });

  it('a compressed x-coordinate that is not on the curve is malformed', () => {
    const c = x509ToC509(readVector('c509', '3.3-weierstrass-ec-secp256r1', 'x509.der'), {
      compressPoints: true,
    });
    // find an x with no point on P-256 (about half of all x values)
    let x = 0;
    for (; ; x++) {
      try {
        ECDH.convertKey(
          Buffer.from([2, ...new Uint8Array(31), x]),
          'prime256v1',
          undefined,
          undefined,
          'uncompressed',
        );
      } catch {
        break;
      }
    }
    const bad = mutate(c, (a) => {
      a[8] = new Uint8Array([0xfe, ...new Uint8Array(31), x]);
    });
    throwsCode(() => c509ToX509(bad), 'ERR_MALFORMED', 'c509.key.point');
  });
});

describe('C509 type 3: X.509 that C509 cannot carry exactly is refused', needsVectors, () => {
  const der = () => readVector('c509', '3.3-weierstrass-ec-secp256r1', 'x509.der');

  it('an attribute string invalid for its type ("@" in a PrintableString) keeps the exact (~oid, bytes) form', () => {
    const name = tlv(
      Tag.Sequence,
      tlv(
        Tag.Set,
        tlv(
          Tag.Sequence,
          tlv(Tag.Oid, oidContentFromString('2.5.4.3')),
          tlv(Tag.PrintableString, Buffer.from('a@b')),
        ),
      ),
    );
    const d = rebuild(der(), (f) => [...f.slice(0, 5), name, ...f.slice(6)]);
    const c = x509ToC509(d);
    const subject = parseC509Certificate(c).subject as CborValue[];
    assert.equal(hex(subject[0] as Uint8Array), hex(oidContentFromString('2.5.4.3')));
    assert.equal(hex(c509ToX509(c)), hex(d));
  });

  it('a v1 certificate (no version field)', () => {
    throwsCode(() => x509ToC509(rebuild(der(), (f) => f.slice(1))), 'ERR_NOT_SUPPORTED', 'c509.x509.version');
  });

  it('a multi-valued RDN (§3.1.4)', () => {
    const atv = (oid: string, s: string) =>
      tlv(Tag.Sequence, tlv(Tag.Oid, oidContentFromString(oid)), tlv(Tag.Utf8String, Buffer.from(s)));
    const name = tlv(Tag.Sequence, tlv(Tag.Set, atv('2.5.4.3', 'a'), atv('2.5.4.10', 'b')));
    throwsCode(
      () => x509ToC509(rebuild(der(), (f) => [...f.slice(0, 5), name, ...f.slice(6)])),
      'ERR_NOT_SUPPORTED',
      'c509.name.multi_valued_rdn',
    );
  });

  it('issuer and subject unique identifiers (§3.1.8)', () => {
    const uid = new Uint8Array([0x81, 0x02, 0x00, 0x01]);
    throwsCode(
      () => x509ToC509(rebuild(der(), (f) => [...f.slice(0, 7), uid, ...f.slice(7)])),
      'ERR_NOT_SUPPORTED',
      'c509.x509.unique_id',
    );
  });

  it('a critical flag written as FALSE (BER, not DER)', () => {
    const exts = new Uint8Array([
      ...tlv(
        ctx(3, true),
        tlv(
          Tag.Sequence,
          tlv(
            Tag.Sequence,
            tlv(Tag.Oid, oidContentFromString('2.5.29.14')),
            new Uint8Array([1, 1, 0]),
            tlv(Tag.OctetString, tlv(Tag.OctetString, new Uint8Array([1]))),
          ),
        ),
      ),
    ]);
    throwsCode(
      () => x509ToC509(rebuild(der(), (f) => [...f.slice(0, 7), exts])),
      'ERR_NOT_SUPPORTED',
      'c509.x509.not_invertible',
    );
  });

  it('a GeneralizedTime before 2050 (RFC 5280 wants UTCTime)', () => {
    const gt = tlv(Tag.GeneralizedTime, Buffer.from('20250102000000Z'));
    const validity = (v: Uint8Array) => tlv(Tag.Sequence, gt, children(parseDer(v), C509_DER)[1]!.raw);
    throwsCode(
      () => x509ToC509(rebuild(der(), (f) => [...f.slice(0, 4), validity(f[4]!), ...f.slice(5)])),
      'ERR_NOT_SUPPORTED',
      'c509.x509.not_invertible',
    );
  });

  it('signature and signatureAlgorithm that differ', () => {
    const other = new Uint8Array(Buffer.from('300a06082a8648ce3d040303', 'hex'));
    throwsCode(
      () => x509ToC509(rebuild(der(), (f) => f, other)),
      'ERR_MALFORMED',
      'c509.x509.signature_algorithm_mismatch',
    );
  });

  it('input that is not DER: truncated, trailing bytes, non-minimal length', () => {
    const d = der();
    throwsCode(() => x509ToC509(d.subarray(0, 100)), 'ERR_MALFORMED', 'c509.der.truncated');
    throwsCode(() => x509ToC509(new Uint8Array([...d, 0])), 'ERR_MALFORMED', 'c509.der.trailing_bytes');
    throwsCode(
      () => x509ToC509(new Uint8Array([0x30, 0x81, 0x03, 0x02, 0x01, 0x00])),
      'ERR_MALFORMED',
      'c509.der.length',
    );
    throwsCode(
      () => x509ToC509(new Uint8Array([0x30, 0x80, 0x00, 0x00])),
      'ERR_MALFORMED',
      'c509.der.indefinite_length',
    );
  });
});

describe(
  'C509 type 3: extensions without a specific encoding use (~oid, bytes) and still invert',
  needsVectors,
  () => {
    const der = () => readVector('c509', '3.3-weierstrass-ec-secp256r1', 'x509.der');
    const withExts = (exts: ReturnType<typeof ext>[]) =>
      rebuild(der(), (f) => [...f.slice(0, 7), tlv(ctx(3, true), x509ExtensionsDer(exts))]);

    it('a private extension (the GCE instance identity OID), non-critical and critical', () => {
      const value = tlv(Tag.Sequence, tlv(Tag.Utf8String, Buffer.from('instance-1')));
      for (const critical of [false, true]) {
        const d = withExts([ext('1.3.6.1.4.1.11129.2.1.21', critical, value)]);
        const c = x509ToC509(d);
        const exts = parseC509Certificate(c).extensions as CborValue[];
        assert.equal(hex(exts[0] as Uint8Array), hex(oidContentFromString('1.3.6.1.4.1.11129.2.1.21')));
        assert.equal(hex((critical ? (exts[1] as Uint8Array[])[0] : exts[1]) as Uint8Array), hex(value));
        assert.equal(hex(c509ToX509(c)), hex(d));
      }
    });

    it('registered extensions whose content C509 cannot say specifically fall back to the OID form', () => {
      const aki = tlv(
        Tag.Sequence,
        tlv(ctx(1, true), tlv(ctx(2, false), Buffer.from('ca'))),
        new Uint8Array([0x82, 0x01, 0x05]),
      );
      const bc = tlv(Tag.Sequence, tlv(Tag.Integer, new Uint8Array([1]))); // pathLen without cA: not C509-expressible
      const notice = tlv(
        Tag.Sequence,
        tlv(
          Tag.Sequence,
          tlv(Tag.Oid, oidContentFromString('2.5.29.32.0')),
          tlv(
            Tag.Sequence,
            tlv(
              Tag.Sequence,
              tlv(Tag.Oid, oidContentFromString('1.3.6.1.5.5.7.2.2')),
              tlv(Tag.Sequence, tlv(0x1e, new Uint8Array([0, 0x41]))),
            ),
          ),
        ),
      );
      const d = withExts([
        ext('2.5.29.35', false, aki),
        ext('2.5.29.19', true, bc),
        ext('2.5.29.32', false, notice),
      ]);
      const c = x509ToC509(d);
      const exts = parseC509Certificate(c).extensions as CborValue[];
      assert.ok(
        exts.filter((_, i) => i % 2 === 0).every((id) => id instanceof Uint8Array),
        'all three use the OID form',
      );
      assert.equal(hex(c509ToX509(c)), hex(d));
    });

    it('a registered extension with its specific encoding (all three AKI fields, a pathLen, a BMPString-free policy)', () => {
      const aki = tlv(
        Tag.Sequence,
        tlv(ctx(0, false), new Uint8Array([1, 2, 3])),
        tlv(ctx(1, true), tlv(ctx(4, true), nameToDer('issuer ca'))),
        new Uint8Array([0x82, 0x01, 0x05]),
      );
      const bc = tlv(Tag.Sequence, new Uint8Array([1, 1, 0xff]), tlv(Tag.Integer, new Uint8Array([3])));
      const d = withExts([ext('2.5.29.35', false, aki), ext('2.5.29.19', true, bc)]);
      const c = x509ToC509(d);
      assert.deepEqual(parseC509Certificate(c).extensions, [
        7,
        [new Uint8Array([1, 2, 3]), [4, 'issuer ca'], new Uint8Array([5])],
        -4,
        3,
      ]);
      assert.equal(hex(c509ToX509(c)), hex(d));
    });
  },
);

describe('C509 type 3: ECDSA signatures by another issuer', () => {
  /** A P-256 end-entity certificate issued and signed (ecdsa-with-SHA384) by a P-384 CA, built here. */
  function issued(issuerName = 'ca384'): { der: Uint8Array; ca: KeyObject } {
    const ca = newKeyPairSync('ec', { namedCurve: 'secp384r1' });
    const ee = newKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const sigAlg = new Uint8Array(Buffer.from('300a06082a8648ce3d040303', 'hex'));
    const time = (s: string) => tlv(Tag.UtcTime, Buffer.from(s));
    const tbs = tlv(
      Tag.Sequence,
      tlv(ctx(0, true), new Uint8Array([2, 1, 2])),
      tlv(Tag.Integer, new Uint8Array([0x42])),
      sigAlg,
      nameToDer(issuerName),
      tlv(Tag.Sequence, time('250101000000Z'), time('260101000000Z')),
      nameToDer('leaf'),
      new Uint8Array(ee.publicKey.export({ format: 'der', type: 'spki' })),
    );
    const sig = sign('sha384', tbs, { key: ca.privateKey, dsaEncoding: 'der' });
    return {
      der: tlv(Tag.Sequence, tbs, sigAlg, tlv(Tag.BitString, new Uint8Array([0]), sig)),
      ca: ca.publicKey,
    };
  }

  it('r and s are sized by the issuer key (48 octets for P-384) and the type 3 signature verifies', () => {
    const { der, ca } = issued();
    const c = x509ToC509(der, { issuerPublicKey: ca });
    assert.equal((parseC509Certificate(c).signatureValue as Uint8Array).length, 96);
    assert.equal(hex(c509ToX509(c)), hex(der));
    verifyC509Certificate(c, ca);
    // without the issuer key the size is inferred from the integers (here: the same)
    assert.equal(hex(x509ToC509(der)), hex(c));
  });

  it('a self-issued certificate signed by another, larger key (key rollover) keeps its r and s exact', () => {
    // issuer name == subject name, so the subject's P-256 curve is tried first, but r and s need 48 octets
    const { der, ca } = issued('leaf');
    const c = x509ToC509(der);
    const cert = parseC509Certificate(c);
    assert.equal(cert.issuer, null);
    assert.equal(hex(c509ToX509(c)), hex(der));
    verifyC509Certificate(c, ca);
  });
});
