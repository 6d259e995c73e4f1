import assert from 'node:assert/strict';

import { before, describe, it } from 'node:test';
import { createTrustStore, verifyCertPath } from '../../../src/evidence/tpm/cert-path.js';
import { decodePem } from '../../../src/formats/pem.js';
import { KeyUsage } from '../../../src/formats/x509/certificate.js';
import { newKeyPairSync } from '../../../src/util/key-pair.js';
import { needsVectors, readVector, readVectorText } from '../../helpers/vectors.js';
import { issueCa, issueLeaf, makeRoot, T0, type TestCa, x509 } from './test-ca.js';

const G = ['tpm', 'gce-go-tpm-tools'];
const ca = (f: string) => readVector(...G, 'ca-certs', f);
const gceTrust = () =>
  createTrustStore(
    [ca('tpm_ek_root_1.cer'), ca('gcp_ek_ak_ca_root.crt')],
    [
      ca('tpm_ek_intermediate_2.crt'),
      ca('tpm_ek_intermediate_3.crt'),
      ca('gcp_ek_ak_ca_intermediate_v3.crt'),
    ],
  );
const AT = new Date('2024-06-01T00:00:00Z');
const DAY = 86_400_000;

describe('certificate paths of real GCE EK/AK certificates', needsVectors, () => {
  // `openssl verify -attime 1717200000 -CAfile roots -untrusted intermediates` says OK for all nine.
  const leaves: [string, number, string][] = [
    ['pca_tpm_ecc_enc_cert.pem', KeyUsage.keyAgreement, 'gcp_ek_ak_ca_root.crt'],
    ['pca_tpm_ecc_sign_cert.pem', KeyUsage.digitalSignature, 'gcp_ek_ak_ca_root.crt'],
    ['pca_tpm_rsa_enc_cert.pem', KeyUsage.keyEncipherment, 'gcp_ek_ak_ca_root.crt'],
    ['pca_tpm_rsa_sign_cert.pem', KeyUsage.digitalSignature, 'gcp_ek_ak_ca_root.crt'],
    ['uca_tpm_ecc_enc_cert.pem', KeyUsage.keyAgreement, 'tpm_ek_root_1.cer'],
    ['uca_tpm_ecc_sign_cert.pem', KeyUsage.digitalSignature, 'tpm_ek_root_1.cer'],
    ['uca_tpm_rsa_enc_cert.pem', KeyUsage.keyEncipherment, 'tpm_ek_root_1.cer'],
    ['uca_tpm_rsa_sign_cert.pem', KeyUsage.digitalSignature, 'tpm_ek_root_1.cer'],
  ];
  for (const [file, ku, root] of leaves) {
    it(`${file} chains to ${root} (critical dirName-only SAN tolerated where present)`, () => {
      const der = decodePem(readVectorText(...G, 'certificates', file), 'test')[0]!.der;
      const path = verifyCertPath(der, { now: AT, trust: gceTrust(), leafKeyUsage: ku });
      assert.equal(path.certificates.length, 3);
      assert.deepEqual(path.certificates[2]!.der, ca(root));
    });
  }

  it('the AK certificate chains via tpm_ek_intermediate_2 to tpm_ek_root_1', () => {
    const path = verifyCertPath(readVector(...G, 'extracted-cos85-nonce9009', 'ak_cert.der'), {
      now: AT,
      trust: gceTrust(),
      leafKeyUsage: KeyUsage.digitalSignature,
    });
    assert.deepEqual(
      path.certificates.map((c) => c.der),
      [
        readVector(...G, 'extracted-cos85-nonce9009', 'ak_cert.der'),
        ca('tpm_ek_intermediate_2.crt'),
        ca('tpm_ek_root_1.cer'),
      ],
    );
  });

  it('rejects: wrong key usage for the leaf, the other PKI only, no intermediate, outside validity', () => {
    const ak = readVector(...G, 'extracted-cos85-nonce9009', 'ak_cert.der');
    const opts = { now: AT, trust: gceTrust(), leafKeyUsage: KeyUsage.digitalSignature };
    assert.throws(() => verifyCertPath(ak, { ...opts, leafKeyUsage: KeyUsage.keyEncipherment }), {
      code: 'ERR_CHAIN_INVALID',
      reason: 'x509.chain.leaf_key_usage',
    });
    const otherPki = createTrustStore(
      [ca('gcp_ek_ak_ca_root.crt')],
      [ca('gcp_ek_ak_ca_intermediate_v3.crt')],
    );
    assert.throws(() => verifyCertPath(ak, { ...opts, trust: otherPki }), { reason: 'x509.chain.no_path' });
    const noIntermediate = createTrustStore([ca('tpm_ek_root_1.cer')]);
    assert.throws(() => verifyCertPath(ak, { ...opts, trust: noIntermediate }), {
      reason: 'x509.chain.no_path',
    });
    // ...but the intermediate may come with the evidence.
    verifyCertPath(ak, { ...opts, trust: noIntermediate, intermediates: [ca('tpm_ek_intermediate_2.crt')] });
    assert.throws(() => verifyCertPath(ak, { ...opts, now: new Date('2021-08-01T00:00:00Z') }), {
      reason: 'x509.chain.not_yet_valid',
    });
    assert.throws(() => verifyCertPath(ak, { ...opts, now: new Date('2052-01-01T00:00:00Z') }), {
      reason: 'x509.chain.expired',
    });
  });
});

describe('certificate path rules (generated PKI)', () => {
  let root: TestCa;
  let inter: TestCa;
  const leafKey = newKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
  const opts = (trust: ReturnType<typeof createTrustStore>, extra: Uint8Array[] = []) => ({
    now: T0,
    trust,
    intermediates: extra,
    leafKeyUsage: KeyUsage.digitalSignature,
  });
  before(async () => {
    root = await makeRoot();
    inter = await issueCa(root, { subject: 'CN=Test Intermediate', ca: { pathLength: 0 } });
  });

  it('accepts root → intermediate → leaf', async () => {
    const leaf = await issueLeaf(inter, { subject: 'CN=ak' }, leafKey);
    const p = verifyCertPath(leaf, opts(createTrustStore([root.der]), [inter.der]));
    assert.equal(p.certificates.length, 3);
    assert.ok(p.leafKey.equals(leafKey));
  });

  it('pathLenConstraint: a second intermediate under pathLength 0 is refused', async () => {
    const sub = await issueCa(inter, { subject: 'CN=Sub', ca: {} });
    const leaf = await issueLeaf(sub, { subject: 'CN=ak' }, leafKey);
    assert.throws(() => verifyCertPath(leaf, opts(createTrustStore([root.der]), [inter.der, sub.der])), {
      code: 'ERR_CHAIN_INVALID',
      reason: 'x509.chain.path_length',
    });
  });

  it('an issuer that is not a CA, or lacks keyCertSign, cannot issue', async () => {
    const notCa = await issueCa(root, {
      subject: 'CN=Not a CA',
      noBasicConstraints: true,
      keyUsage: x509.KeyUsageFlags.keyCertSign,
    });
    const leaf1 = await issueLeaf(notCa, { subject: 'CN=ak' }, leafKey);
    assert.throws(() => verifyCertPath(leaf1, opts(createTrustStore([root.der]), [notCa.der])), {
      reason: 'x509.chain.not_ca',
    });
    const noSign = await issueCa(root, {
      subject: 'CN=No keyCertSign',
      ca: {},
      keyUsage: x509.KeyUsageFlags.digitalSignature,
    });
    const leaf2 = await issueLeaf(noSign, { subject: 'CN=ak' }, leafKey);
    assert.throws(() => verifyCertPath(leaf2, opts(createTrustStore([root.der]), [noSign.der])), {
      reason: 'x509.chain.key_usage',
    });
  });

  it('an unknown critical extension in the leaf or an intermediate is refused; non-critical is fine', async () => {
    const crit = [{ oid: '1.3.6.1.4.1.99999.1', critical: true, value: Uint8Array.of(5, 0) }];
    const leaf = await issueLeaf(inter, { subject: 'CN=ak', extensions: crit }, leafKey);
    assert.throws(() => verifyCertPath(leaf, opts(createTrustStore([root.der]), [inter.der])), {
      reason: 'x509.chain.unhandled_critical_extension',
    });
    const ok = await issueLeaf(
      inter,
      { subject: 'CN=ak', extensions: [{ ...crit[0]!, critical: false }] },
      leafKey,
    );
    verifyCertPath(ok, opts(createTrustStore([root.der]), [inter.der]));
    const critInter = await issueCa(root, { subject: 'CN=Crit', ca: {}, extensions: crit });
    const leaf2 = await issueLeaf(critInter, { subject: 'CN=ak' }, leafKey);
    assert.throws(() => verifyCertPath(leaf2, opts(createTrustStore([root.der]), [critInter.der])), {
      reason: 'x509.chain.unhandled_critical_extension',
    });
    // The caller may declare that it processes an extension.
    verifyCertPath(leaf, {
      ...opts(createTrustStore([root.der]), [inter.der]),
      handledCritical: ['1.3.6.1.4.1.99999.1'],
    });
  });

  it('an expired intermediate or root fails even when the leaf is valid', async () => {
    const old = await issueCa(root, {
      subject: 'CN=Old',
      ca: {},
      notBefore: new Date(T0.getTime() - 100 * DAY),
      notAfter: new Date(T0.getTime() - DAY),
    });
    const leaf = await issueLeaf(old, { subject: 'CN=ak' }, leafKey);
    assert.throws(() => verifyCertPath(leaf, opts(createTrustStore([root.der]), [old.der])), {
      reason: 'x509.chain.expired',
    });
    const oldRoot = await makeRoot('CN=Old Root', {
      notBefore: new Date(T0.getTime() - 10 * DAY),
      notAfter: new Date(T0.getTime() - DAY),
    });
    const leaf2 = await issueLeaf(oldRoot, { subject: 'CN=ak' }, leafKey);
    assert.throws(() => verifyCertPath(leaf2, opts(createTrustStore([oldRoot.der]))), {
      reason: 'x509.chain.expired',
    });
  });

  it('a same-named impostor issuer (other key) does not chain; the real one in the pool still does', async () => {
    const impostorRoot = await makeRoot('CN=Test TPM Root');
    const impostorInter = await issueCa(impostorRoot, { subject: 'CN=Test Intermediate', ca: {} });
    const forged = await issueLeaf(impostorInter, { subject: 'CN=ak' }, leafKey);
    assert.throws(
      () => verifyCertPath(forged, opts(createTrustStore([root.der]), [impostorInter.der, inter.der])),
      {
        reason: 'x509.chain.no_path',
      },
    );
    const genuine = await issueLeaf(inter, { subject: 'CN=ak' }, leafKey);
    verifyCertPath(genuine, opts(createTrustStore([root.der]), [impostorInter.der, inter.der]));
  });

  it('cross-signed loops terminate', async () => {
    const a = await issueCa(root, { subject: 'CN=Loop A', ca: {} });
    const b = await issueCa(a, { subject: 'CN=Loop B', ca: {} });
    const aByB = await issueCa(b, { subject: 'CN=Loop A', ca: {} });
    const leaf = await issueLeaf(b, { subject: 'CN=ak' }, leafKey);
    const otherRoot = await makeRoot('CN=Unrelated');
    assert.throws(
      () => verifyCertPath(leaf, opts(createTrustStore([otherRoot.der]), [a.der, b.der, aByB.der])),
      {
        reason: 'x509.chain.no_path',
      },
    );
  });

  it('garbage where a certificate should be is MalformedEvidence, and a trust store needs roots', () => {
    assert.throws(
      () => verifyCertPath(Uint8Array.of(0x30, 0x03, 1, 2, 3), opts(createTrustStore([root.der]))),
      {
        code: 'ERR_MALFORMED',
      },
    );
    assert.throws(() => createTrustStore([]), {
      code: 'ERR_INVALID_ARGUMENT',
      reason: 'x509.trust.no_roots',
    });
  });
});
