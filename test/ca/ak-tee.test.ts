import assert from 'node:assert/strict';
import { createHash, verify } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { certificatePem, type IssuedCertificate } from '../../src/ca/index.js';
import { x509 } from '../../src/ca/x509-lib.js';
import type { SnpCollateralGetter } from '../../src/evidence/snp/index.js';
import { encodeServicesManifest, svsmReportData } from '../../src/formats/svsm/manifest.js';
import { encodeVtpmManifestV1 } from '../../src/formats/svsm/vtpm.js';
import { parseTpm2bPublic, publicToKeyObject } from '../../src/formats/tpm/index.js';
import { parseCertificate } from '../../src/formats/x509/certificate.js';
import { readInstanceIdentity } from '../../src/formats/x509/instance-identity.js';
import { createCrl, type SimSnpFirmware, sharedSimChain } from '../../src/sim/snp/index.js';
import { SimTdxPlatform } from '../../src/sim/tdx/index.js';
import { toHex } from '../../src/util/bytes.js';
import { errorWith } from '../helpers/assert-error.js';
import {
  identity,
  openssl,
  refused,
  servicesManifest,
  simGuest,
  softAk,
  softEk,
  stopAllTpms,
  type TestCa,
  testCa,
  type VtpmKeys,
  vtpmWithKeys,
} from './fixtures.js';

/**
 * Route (a), end to end: a real vTPM (swtpm) holds the EK and AK; the simulated SVSM puts their public
 * areas into a services manifest (v1) and asks the simulated AMD firmware for a VMPL0 report whose
 * REPORT_DATA = SHA-512(nonce || manifest); the CA verifies the report with the SNP verifier (the
 * simulator's root configured), checks nonce, coverage, EK and AK, and issues the AK certificate.
 */

describe('AK certificate, route (a): SNP report over the SVSM services manifest', () => {
  let t: TestCa;
  let v: VtpmKeys;
  let fw: SimSnpFirmware;
  let ekCert: IssuedCertificate;
  const id = identity(10);

  before(async () => {
    t = await testCa();
    v = await vtpmWithKeys('rsa', 'ecc');
    ekCert = await t.ca.issueEk({ ekPublic: v.ekFile, identity: id });
    fw = simGuest(t.chain);
  });
  after(async () => {
    await stopAllTpms();
    await t.cleanup();
  });

  /** What the SVSM does for SVSM_ATTEST_SERVICES: report over SHA-512(nonce || manifest). */
  async function attest(manifest: Uint8Array, guest = fw, instance: bigint = id.instanceId) {
    const nonce = await t.ca.createNonce(instance);
    const { report, certTable } = guest.getReport(svsmReportData(nonce, manifest));
    return { instanceId: instance, nonce, report, certTable, manifest };
  }

  it('issues the AK certificate for the vTPM AK in a v1 manifest, and the TPM AK signs under it', async () => {
    const req = await attest(servicesManifest(v.ek, v.ak));
    const issued = await t.ca.issueAkFromTee(req);
    const cert = new x509.X509Certificate(Uint8Array.from(issued.der).buffer);
    const caCert = new x509.X509Certificate(Uint8Array.from(t.ca.certificate).buffer);
    assert.ok(await cert.verify({ publicKey: caCert.publicKey, signatureOnly: true }));
    assert.equal(issued.kind, 'ak');

    // the certified key is the vTPM's AK
    const akSpki = publicToKeyObject(v.ak).export({ type: 'spki', format: 'der' });
    assert.equal(toHex(new Uint8Array(cert.publicKey.rawData)), toHex(akSpki));
    assert.deepEqual([...cert.getExtension(x509.ExtendedKeyUsageExtension)!.usages], ['2.23.133.8.3']);
    const ku = cert.getExtension(x509.KeyUsagesExtension)!;
    assert.equal(ku.usages, x509.KeyUsageFlags.digitalSignature);
    assert.equal(ku.critical, true);
    assert.equal(
      cert.subject,
      `L=europe-west4-a, O=Vouchsafe Platform CA, OU=vouchsafe-test, CN=${id.instanceId}`,
    );
    assert.equal(
      cert.extensions.find((e) => e.type === '2.5.29.17')!.critical,
      false,
      'SAN not critical: subject set',
    );
    assert.equal(cert.notAfter.getTime() - cert.notBefore.getTime(), 365 * 86_400_000, 'AK lifetime 1 year');
    // the identity comes from the instance's EK certificate
    assert.deepEqual(readInstanceIdentity(parseCertificate(issued.der)), id);
    assert.deepEqual(readInstanceIdentity(parseCertificate(ekCert.der)), id);

    // The certificate is useful: a signature the vTPM's AK makes verifies with the certified key.
    writeFileSync(join(v.t.dir, 'msg.bin'), 'attested by the vTPM AK');
    v.t.tool('tpm2_flushcontext', ['-t']);
    v.t.tool('tpm2_sign', ['-c', 'ak.ctx', '-g', 'sha256', '-f', 'plain', '-o', 'msg.sig', 'msg.bin']);
    const sig = readFileSync(join(v.t.dir, 'msg.sig'));
    const nodeKey = publicToKeyObject(parseTpm2bPublic(v.akFile));
    assert.ok(verify('sha256', Buffer.from('attested by the vTPM AK'), parseCertificateKey(issued.der), sig));
    assert.ok(verify('sha256', Buffer.from('attested by the vTPM AK'), nodeKey, sig));

    // openssl agrees on the chain and the profile
    const f = join(t.dir, 'ak.pem');
    const ca = join(t.dir, 'ca.pem');
    writeFileSync(f, certificatePem(issued.der));
    writeFileSync(ca, certificatePem(t.ca.certificate));
    assert.match(openssl(['verify', '-CAfile', ca, '-purpose', 'any', f]), /OK/);
    const text = openssl(['x509', '-in', f, '-noout', '-text']);
    assert.match(text, /X509v3 Extended Key Usage: *\n\s+2\.23\.133\.8\.3\n/);
    assert.match(text, /X509v3 Key Usage: critical\n\s+Digital Signature\n/);

    // the issuance is logged with the route and the report's digest
    const log = await t.ca.readLog();
    const entry = log[log.length - 1]!;
    assert.equal(entry.kind, 'ca.issue_ak');
    assert.equal(entry.decision, 'accept');
    assert.equal(entry.details.route, 'tee');
    assert.equal(entry.details.serial, issued.serial);
    assert.equal(entry.details.ekSerial, ekCert.serial);
    assert.equal(entry.evidenceDigest, createHash('sha256').update(req.report).digest('hex'));
  });

  it('accepts the single-service form (the vTPM payload alone, SVSM_ATTEST_SINGLE_SERVICE)', async () => {
    const issued = await t.ca.issueAkFromTee(await attest(encodeVtpmManifestV1(v.ek, v.ak)));
    assert.equal(issued.kind, 'ak');
  });

  it('refuses a TDX quote over SHA-512(nonce || manifest): route (a) takes SNP only (docs/ca.md "TDX")', async () => {
    const req = await attest(servicesManifest(v.ek, v.ak));
    const quote = new SimTdxPlatform().quote(svsmReportData(req.nonce, req.manifest));
    await assert.rejects(
      t.ca.issueAkFromTee({ ...req, report: quote }),
      (e: { code?: string; reason?: string }) => e.code === 'ERR_MALFORMED' && /^snp\./.test(e.reason ?? ''),
    );
  });

  it('refuses a report that does not cover the manifest', async () => {
    const req = await attest(servicesManifest(v.ek, v.ak));
    // the host swaps in its own AK after the report was made
    const swapped = servicesManifest(v.ek, softAk().pub);
    await assert.rejects(
      t.ca.issueAkFromTee({ ...req, manifest: swapped }),
      refused('ca.manifest_not_covered'),
    );
  });

  it('refuses a stale nonce', async () => {
    const req = await attest(servicesManifest(v.ek, v.ak));
    const saved = t.clock.now;
    t.clock.now = new Date(saved.getTime() + 301_000); // TTL 300 s
    try {
      await assert.rejects(t.ca.issueAkFromTee(req), refused('ca.nonce_expired'));
    } finally {
      t.clock.now = saved;
    }
  });

  it('refuses an unknown nonce, a reused nonce and a nonce issued for another instance', async () => {
    const manifest = servicesManifest(v.ek, v.ak);
    const forged = new Uint8Array(64).fill(9);
    const { report, certTable } = fw.getReport(svsmReportData(forged, manifest));
    await assert.rejects(
      t.ca.issueAkFromTee({ instanceId: id.instanceId, nonce: forged, report, certTable, manifest }),
      refused('ca.nonce_unknown'),
    );
    const req = await attest(manifest);
    await t.ca.issueAkFromTee(req);
    await assert.rejects(t.ca.issueAkFromTee(req), refused('ca.nonce_unknown'), 'single use');
    const other = await attest(manifest, fw, identity(11).instanceId);
    await assert.rejects(
      t.ca.issueAkFromTee({ ...other, instanceId: id.instanceId }),
      refused('ca.nonce_unknown'),
    );
  });

  it("refuses an EK that is not the instance's certified EK, and an instance without one", async () => {
    const otherEk = softEk('rsa').pub;
    await assert.rejects(
      t.ca.issueAkFromTee(await attest(servicesManifest(otherEk, v.ak))),
      refused('ca.ek_mismatch'),
    );
    const stranger = identity(12).instanceId;
    await assert.rejects(
      t.ca.issueAkFromTee(await attest(servicesManifest(v.ek, v.ak), fw, stranger)),
      refused('ca.instance_unknown'),
    );
  });

  it('refuses a v0 manifest (EK only: it cannot vouch for an AK) and a manifest without the vTPM', async () => {
    await assert.rejects(
      t.ca.issueAkFromTee(await attest(servicesManifest(v.ek))),
      refused('ca.manifest_no_ak'),
    );
    const noVtpm = encodeServicesManifest([
      { guid: 'a4453a59-9e1b-4787-a033-1986d6adbe55', payload: new Uint8Array(8) },
    ]);
    await assert.rejects(t.ca.issueAkFromTee(await attest(noVtpm)), refused('ca.manifest_no_vtpm'));
  });

  it('refuses an AK that is not a restricted signing key (an unrestricted key made in the same vTPM)', async () => {
    v.t.tool('tpm2_createprimary', [
      '-C',
      'o',
      '-G',
      'ecc',
      '-a',
      'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign',
      '-c',
      'plain.ctx',
    ]);
    v.t.tool('tpm2_readpublic', ['-c', 'plain.ctx', '-o', 'plain.pub']);
    v.t.tool('tpm2_flushcontext', ['-t']);
    const plain = parseTpm2bPublic(new Uint8Array(readFileSync(join(v.t.dir, 'plain.pub'))));
    assert.equal(plain.objectAttributes & 0x10000, 0, 'not restricted');
    await assert.rejects(
      t.ca.issueAkFromTee(await attest(servicesManifest(v.ek, plain))),
      refused('ca.ak_attributes'),
    );
    // nor a restricted decryption key (the EK itself) posing as the AK
    await assert.rejects(
      t.ca.issueAkFromTee(await attest(servicesManifest(v.ek, v.ek))),
      refused('ca.ak_attributes'),
    );
  });

  it('refuses a report requested at VMPL1 (the guest OS, not the SVSM)', async () => {
    const guestOs = simGuest(t.chain, { vmpl: 1 });
    await assert.rejects(
      t.ca.issueAkFromTee(await attest(servicesManifest(v.ek, v.ak), guestOs)),
      refused('ca.report_vmpl'),
    );
  });

  it('refuses a tampered report (signature) and one missing its certificates', async () => {
    const req = await attest(servicesManifest(v.ek, v.ak));
    const report = Uint8Array.from(req.report);
    report[0x90]! ^= 1; // MEASUREMENT
    await assert.rejects(
      t.ca.issueAkFromTee({ ...req, report }),
      errorWith('ERR_SIGNATURE_INVALID', 'snp.signature'),
    );
    const req2 = await attest(servicesManifest(v.ek, v.ak));
    await assert.rejects(
      t.ca.issueAkFromTee({ ...req2, certTable: new Uint8Array(24) }),
      errorWith('ERR_COLLATERAL_UNAVAILABLE', 'snp.certs_missing'),
    );
  });

  it('refuses a report whose EK certificate has been revoked', async () => {
    const inst = identity(13);
    const ek2 = await t.ca.issueEk({ ekPublic: v.ekFile, identity: inst });
    await t.ca.revoke(ek2.serial, 1);
    await assert.rejects(
      t.ca.issueAkFromTee(await attest(servicesManifest(v.ek, v.ak), fw, inst.instanceId)),
      refused('ca.instance_unknown'),
    );
  });

  it('logs every refusal and keeps the log chain intact', async () => {
    const log = await t.ca.readLog();
    const reasons = log.filter((e) => e.decision === 'refuse').flatMap((e) => e.reasons);
    for (const r of [
      'ca.manifest_not_covered',
      'ca.nonce_expired',
      'ca.nonce_unknown',
      'ca.ek_mismatch',
      'ca.instance_unknown',
      'ca.manifest_no_ak',
      'ca.manifest_no_vtpm',
      'ca.ak_attributes',
      'ca.report_vmpl',
      'snp.signature',
    ]) {
      assert.ok(reasons.includes(r), `refusal ${r} is logged`);
    }
    assert.equal((await t.ca.verifyLog()).ok, true);
  });
});

describe('AK certificate, route (a): SNP trust and policy', () => {
  const ek = softEk('rsa');
  const ak = softAk();
  const id = identity(20);

  async function setup(config: Parameters<typeof testCa>[0]) {
    const t = await testCa(config);
    await t.ca.issueEk({ ekPublic: ek.parsed.raw, identity: id });
    const manifest = servicesManifest(ek.pub, ak.pub);
    const nonce = await t.ca.createNonce(id.instanceId);
    const { report, certTable } = simGuest(t.chain).getReport(svsmReportData(nonce, manifest));
    return { t, req: { instanceId: id.instanceId, nonce, report, certTable, manifest } };
  }

  it("refuses a report from a root that is not configured (the simulator's root is not AMD's)", async () => {
    const { t, req } = await setup({ config: { snp: { trustedRoots: [], policy: {} } } });
    try {
      await assert.rejects(
        t.ca.issueAkFromTee(req),
        errorWith('ERR_CHAIN_INVALID', 'snp.chain.root_untrusted'),
      );
    } finally {
      await t.cleanup();
    }
  });

  /** AMD KDS as the CA sees it: serves the simulator's VCEK and chain, and a CRL revoking `revoked`. */
  async function simCollateral(revoked: readonly bigint[] = []) {
    const chain = await sharedSimChain('Milan');
    const crl = await createCrl(chain, { revokedSerials: revoked });
    const calls: string[] = [];
    const getter: SnpCollateralGetter = {
      async getVcekForReport() {
        calls.push('vcek');
        return chain.vcek.der;
      },
      async getCertChain() {
        calls.push('chain');
        return { intermediate: chain.ask.der, ark: chain.ark.der } as Awaited<
          ReturnType<SnpCollateralGetter['getCertChain']>
        >;
      },
      async getCrl() {
        calls.push('crl');
        return { der: crl } as Awaited<ReturnType<SnpCollateralGetter['getCrl']>>;
      },
    };
    return { getter, calls };
  }

  it('KDS fallback: a report sent without its certificate table verifies with certificates from AMD KDS', async () => {
    const kds = await simCollateral();
    const { t, req } = await setup({ snpCollateral: kds.getter });
    try {
      const { certTable: _none, ...bare } = req;
      const issued = await t.ca.issueAkFromTee(bare);
      assert.equal(issued.kind, 'ak');
      assert.deepEqual(kds.calls, ['vcek', 'chain']);
    } finally {
      await t.cleanup();
    }
  });

  it('snp.intermediate_revoked: with checkRevocations the CA checks the ASK against the AMD CRL', async () => {
    const kds = await simCollateral([0x10001n]); // the simulator's Milan ASK serial, as AMD's
    const { t, req } = await setup({ snpCollateral: kds.getter, checkRevocations: true });
    try {
      await assert.rejects(
        t.ca.issueAkFromTee(req),
        errorWith('ERR_CHAIN_INVALID', 'snp.intermediate_revoked'),
      );
      assert.deepEqual(kds.calls, ['crl']);
    } finally {
      await t.cleanup();
    }
    const ok = await simCollateral();
    const good = await setup({ snpCollateral: ok.getter, checkRevocations: true });
    try {
      assert.equal((await good.t.ca.issueAkFromTee(good.req)).kind, 'ak');
    } finally {
      await good.t.cleanup();
    }
  });

  it('ca.snp.collateral: checkRevocations without a collateral source is refused when the CA opens', async () => {
    await assert.rejects(
      testCa({ checkRevocations: true }),
      errorWith('ERR_INVALID_ARGUMENT', 'ca.snp.collateral'),
    );
  });

  it('applies the SNP policy and lists every failure', async () => {
    const chain = await sharedSimChain('Milan');
    const { t, req } = await setup({
      config: {
        snp: {
          trustedRoots: [{ product: 'Milan', sha256: chain.rootSha256 }],
          policy: { measurements: ['00'.repeat(48)], hostData: '22'.repeat(32) },
        },
      },
    });
    try {
      await assert.rejects(t.ca.issueAkFromTee(req), (e: { code: string; failures: { code: string }[] }) => {
        assert.equal(e.code, 'ERR_POLICY_REJECTED');
        assert.deepEqual(e.failures.map((f) => f.code).sort(), ['snp.host_data', 'snp.measurement']);
        return true;
      });
      const log = await t.ca.readLog();
      assert.deepEqual(log[log.length - 1]!.reasons.slice().sort(), ['snp.host_data', 'snp.measurement']);
    } finally {
      await t.cleanup();
    }
  });
});

function parseCertificateKey(der: Uint8Array) {
  const spki = parseCertificate(der).subjectPublicKeyInfo;
  return { key: Buffer.from(spki), format: 'der' as const, type: 'spki' as const };
}
