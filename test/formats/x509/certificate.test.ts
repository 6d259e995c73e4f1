import assert from 'node:assert/strict';
import { createPublicKey, X509Certificate } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { AttestationError } from '../../../src/errors.js';
import { decodePem } from '../../../src/formats/pem.js';
import { KeyUsage, parseCertificate } from '../../../src/formats/x509/certificate.js';
import { toHex } from '../../../src/util/bytes.js';
import { needsVectors, readVector, readVectorText, vectorPath } from '../../helpers/vectors.js';

const G = ['tpm', 'gce-go-tpm-tools'];

function allCerts(): [string, Uint8Array][] {
  const out: [string, Uint8Array][] = [];
  for (const f of readdirSync(vectorPath(...G, 'ca-certs')).sort())
    out.push([f, readVector(...G, 'ca-certs', f)]);
  for (const f of readdirSync(vectorPath(...G, 'certificates')).sort()) {
    out.push([f, decodePem(readVectorText(...G, 'certificates', f), 'test')[0]!.der]);
  }
  out.push(['ak_cert.der', readVector(...G, 'extracted-cos85-nonce9009', 'ak_cert.der')]);
  for (const f of readdirSync(vectorPath('tpm', 'keylime-ek-certs')).sort()) {
    if (f.endsWith('.der')) out.push([f, readVector('tpm', 'keylime-ek-certs', f)]);
  }
  return out;
}

describe('X.509 certificate decoding (strict DER)', needsVectors, () => {
  it('decodes the GCE and keylime certificates like OpenSSL does (dates, serial, subject/issuer, CA flag)', () => {
    let n = 0;
    for (const [name, der] of allCerts()) {
      let ours: ReturnType<typeof parseCertificate>;
      try {
        ours = parseCertificate(der);
      } catch (e) {
        // st_sha256_with_rsa.der is 1169 bytes of DER followed by 431 bytes of 0xFF (an NV index read
        // whole): strict DER refuses the trailing bytes; the certificate itself, trimmed, parses.
        assert.ok(e instanceof AttestationError, `${name}: ${e}`);
        assert.equal(name, 'st_sha256_with_rsa.der', `${name} should parse: ${(e as Error).message}`);
        assert.equal(e.reason, 'x509.certificate');
        assert.ok(der.subarray(1169).every((b) => b === 0xff));
        ours = parseCertificate(der.subarray(0, 1169));
      }
      const o = new X509Certificate(der);
      assert.equal(ours.notBefore.getTime(), new Date(o.validFrom).getTime(), name);
      assert.equal(ours.notAfter.getTime(), new Date(o.validTo).getTime(), name);
      assert.equal(
        toHex(ours.serialNumber).replace(/^00/, '').toUpperCase(),
        o.serialNumber.replace(/^00/, ''),
        name,
      );
      assert.equal(ours.basicConstraints?.ca ?? false, o.ca, name);
      const spki = createPublicKey({
        key: Buffer.from(ours.subjectPublicKeyInfo),
        format: 'der',
        type: 'spki',
      });
      assert.ok(spki.equals(o.publicKey), name);
      n++;
    }
    assert.ok(n >= 16, `parsed ${n}`);
  });

  it('reads extensions: AK certificate keyUsage, EKU, critical SAN, basicConstraints', () => {
    const c = parseCertificate(readVector(...G, 'extracted-cos85-nonce9009', 'ak_cert.der'));
    assert.deepEqual([...c.keyUsage!], [KeyUsage.digitalSignature]);
    assert.deepEqual(c.extKeyUsage, ['2.23.133.8.1']);
    assert.deepEqual(c.basicConstraints, { ca: false });
    assert.equal(c.extensions.find((e) => e.oid === '2.5.29.17')?.critical, true);
    assert.equal(toHex(c.subject), '3000');
    assert.equal(c.signatureAlgorithm.oid, '1.2.840.113549.1.1.11');
  });

  it('refuses BER forms and inconsistencies: long-form short length, indefinite length, trailing bytes, signature algorithm mismatch', () => {
    const der = readVector(...G, 'extracted-cos85-nonce9009', 'ak_cert.der');
    const reasons = (b: Uint8Array) => {
      try {
        parseCertificate(b);
      } catch (e) {
        assert.ok(e instanceof AttestationError);
        return e.reason;
      }
      return 'accepted';
    };
    // Outer header 30 82 05 38: re-encode the length with a needless extra byte.
    const longer = Uint8Array.from([0x30, 0x83, 0x00, ...der.subarray(2)]);
    assert.equal(reasons(longer), 'x509.certificate');
    const indefinite = Uint8Array.from([0x30, 0x80, ...der.subarray(4), 0, 0]);
    assert.equal(reasons(indefinite), 'x509.certificate');
    assert.equal(reasons(Uint8Array.from([...der, 0])), 'x509.certificate');
    // Outer tail: AlgorithmIdentifier (15 B: 30 0d 06 09 …0b 05 00) then BIT STRING (261 B); change the
    // last OID byte of the outer copy only (sha256WithRSA 0x0b → sha384WithRSA 0x0c).
    const outerAlg = der.length - 256 - 5 - 15 + 12;
    assert.equal(der[outerAlg], 0x0b);
    const mismatch = Uint8Array.from(der);
    mismatch[outerAlg] = 0x0c;
    assert.equal(reasons(mismatch), 'x509.certificate.signature_algorithm');
  });

  it('random input and mutations of real certificates only produce typed errors (property test)', () => {
    const certs = allCerts().map(([, d]) => d);
    const tryParse = (b: Uint8Array) => {
      try {
        parseCertificate(b);
      } catch (e) {
        if (!(e instanceof AttestationError)) throw e;
      }
    };
    fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), tryParse), { numRuns: 1500 });
    fc.assert(
      fc.property(
        fc.constantFrom(...certs),
        fc.array(fc.tuple(fc.nat(), fc.nat(255)), { minLength: 1, maxLength: 3 }),
        (c, edits) => {
          const m = Uint8Array.from(c);
          for (const [i, v] of edits) m[i % m.length] = v;
          tryParse(m);
        },
      ),
      { numRuns: 3000 },
    );
    fc.assert(
      fc.property(fc.constantFrom(...certs), fc.nat(), (c, n) => tryParse(c.subarray(0, n % c.length))),
      { numRuns: 500 },
    );
  });
});
