import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  c509CertificateKey,
  c509ToX509,
  extensionsFromC509,
  nameToDer,
  parseC509Certificate,
  verifyC509Certificate,
} from '../../src/formats/c509/index.js';
import { oidToString } from '../../src/formats/der/reader.js';
import { svsmReportData } from '../../src/formats/svsm/manifest.js';
import { parseCertificate } from '../../src/formats/x509/certificate.js';
import { toHex } from '../../src/util/bytes.js';
import { errorWith } from '../helpers/assert-error.js';
import { identity, servicesManifest, simGuest, softAk, softEk, type TestCa, testCa } from './fixtures.js';

/**
 * C509 output (draft-ietf-cose-cbor-encoded-cert-20): type 3 is the issued X.509 certificate re-encoded
 * (same signature); type 2 is natively signed by the CA over the CBOR TBS with the same fields.
 */

function sameFields(c509: Uint8Array, der: Uint8Array): void {
  const c = parseC509Certificate(c509);
  const x = parseCertificate(der);
  assert.equal(toHex(c.serialNumber), toHex(x.serialNumber).replace(/^00/, ''));
  assert.equal(c.notBefore * 1000, x.notBefore.getTime());
  assert.equal(c.notAfter! * 1000, x.notAfter.getTime());
  assert.equal(toHex(nameToDer(c.subject)), toHex(x.subject));
  assert.equal(toHex(nameToDer(c.issuer!)), toHex(x.issuer));
  assert.equal(
    toHex(new Uint8Array(c509CertificateKey(c).export({ type: 'spki', format: 'der' }))),
    toHex(x.subjectPublicKeyInfo),
  );
  const exts = extensionsFromC509(c.extensions).map((e) => [oidToString(e.oid), e.critical, toHex(e.value)]);
  assert.deepEqual(
    exts,
    x.extensions.map((e) => [e.oid, e.critical, toHex(e.value)]),
  );
}

for (const keyType of ['p384', 'rsa2048'] as const) {
  describe(`C509 certificates from a ${keyType} CA`, () => {
    let t: TestCa;
    const id = identity(60);
    const ek = softEk('rsa');
    before(async () => {
      t = await testCa({ keyType, config: { crlDistributionPoints: ['http://ca.example.test/c.crl'] } });
    });
    after(async () => t.cleanup());

    it('type 3: the X.509 EK certificate re-encoded, byte-exact back, verifying with the CA key', async () => {
      const issued = await t.ca.issueEk({ ekPublic: ek.parsed.raw, identity: id, format: 'c509-type3' });
      assert.equal(issued.format, 'c509-type3');
      const c = parseC509Certificate(issued.c509!);
      assert.equal(c.type, 3);
      assert.deepEqual(c509ToX509(issued.c509!), issued.der);
      verifyC509Certificate(issued.c509!, t.ca.keyStore.publicKey);
      sameFields(issued.c509!, issued.der);
      assert.ok(
        issued.c509!.length < issued.der.length,
        `C509 ${issued.c509!.length} B < DER ${issued.der.length} B`,
      );
    });

    it('type 2: natively signed, the same fields, verifying with the CA key; tampering is caught', async () => {
      const issued = await t.ca.issueEk({ ekPublic: ek.parsed.raw, identity: id, format: 'c509-type2' });
      const c = parseC509Certificate(issued.c509!);
      assert.equal(c.type, 2);
      assert.equal(
        c.signatureAlgorithm,
        keyType === 'p384' ? 1 : 23,
        'ECDSA-SHA384 (1) / RSA-PKCS1-SHA256 (23)',
      );
      verifyC509Certificate(issued.c509!, t.ca.keyStore.publicKey);
      sameFields(issued.c509!, issued.der);
      const stored = await t.ca.repository.getCertificate(issued.serial);
      assert.deepEqual(stored!.c509, issued.c509, 'the C509 form is stored with the record');

      const bad = Uint8Array.from(issued.c509!);
      bad[20]! ^= 1;
      assert.throws(
        () => verifyC509Certificate(bad, t.ca.keyStore.publicKey),
        (e: { code: string }) => e.code === 'ERR_SIGNATURE_INVALID' || e.code === 'ERR_MALFORMED',
      );
      const otherCa = await testCa({ keyType });
      try {
        assert.throws(
          () => verifyC509Certificate(issued.c509!, otherCa.ca.keyStore.publicKey),
          errorWith('ERR_SIGNATURE_INVALID', 'c509.signature.invalid'),
        );
      } finally {
        await otherCa.cleanup();
      }
    });

    it('an AK certificate (route a) as C509 type 2', async () => {
      await t.ca.issueEk({ ekPublic: ek.parsed.raw, identity: id });
      const ak = softAk();
      const manifest = servicesManifest(ek.pub, ak.pub);
      const nonce = await t.ca.createNonce(id.instanceId);
      const { report, certTable } = simGuest(t.chain).getReport(svsmReportData(nonce, manifest));
      const issued = await t.ca.issueAkFromTee({
        instanceId: id.instanceId,
        nonce,
        report,
        certTable,
        manifest,
        format: 'c509-type2',
      });
      verifyC509Certificate(issued.c509!, t.ca.keyStore.publicKey);
      sameFields(issued.c509!, issued.der);
    });
  });
}
