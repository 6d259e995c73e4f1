import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { parseCertificationRequest } from '../../src/ca/csr.js';
import type { RegisteredInstance, RegistryLookup } from '../../src/ca/index.js';
import { x509 } from '../../src/ca/x509-lib.js';
import { AttestationError } from '../../src/errors.js';
import { parseC509Certificate, signC509Csr } from '../../src/formats/c509/index.js';
import { specialTextFromString } from '../../src/formats/c509/name.js';
import type { PlatformIdentity } from '../../src/formats/platform-identity.js';
import { PvCall, PvFeature } from '../../src/formats/pvchannel/constants.js';
import { parsePublic } from '../../src/formats/tpm/index.js';
import { parseCertificate } from '../../src/formats/x509/certificate.js';
import { readInstanceIdentity } from '../../src/formats/x509/instance-identity.js';
import { certifyAk, certifyEk } from '../../src/guest/certify.js';
import { simulatorReportProvider } from '../../src/guest/report-provider.js';
import { inProcessRelay } from '../../src/pvchannel/ca-relay.js';
import {
  type CertifyRelay,
  certifyAkHandler,
  certifyEkHandler,
} from '../../src/pvchannel/certify-handlers.js';
import { PvClient } from '../../src/pvchannel/client.js';
import { PvDevice } from '../../src/pvchannel/device.js';
import { SIM_DEFAULT_POLICY, SimSnpFirmware } from '../../src/sim/snp/index.js';
import { toHex } from '../../src/util/bytes.js';
import { servicesManifest, softAk, softEk, type TestCa, testCa } from '../ca/fixtures.js';
import { errorWith } from '../helpers/assert-error.js';
import { ALL, offer, type Path, transportTo } from './helpers.js';

/**
 * CERTIFY_EK and CERTIFY_AK over the channel (docs/pvchannel.md §7.2): the guest library (negotiate → NONCE
 * → report → CERTIFY) against the device's handlers relaying to a CA in this process, the instance found
 * in a registry by HOST_DATA. The HTTP relay is test/api/ca-service.test.ts; swtpm and the broker are the
 * e2e (test/e2e/platform-flow.test.ts). Every refusal is also in the CA's issuance log.
 */

const IDENT_A: PlatformIdentity = {
  project: 'tenant-a',
  zone: 'europe-west4-a',
  instanceId: '7100000000000000001',
  instanceName: 'vm-a',
};
const IDENT_B: PlatformIdentity = { ...IDENT_A, instanceId: '7100000000000000002', instanceName: 'vm-b' };
const HD_A = new Uint8Array(32).fill(0xa1);
const HD_B = new Uint8Array(32).fill(0xb2);
const HD_NONE = new Uint8Array(32).fill(0xee);
/** An instance whose own policy allows another image only. */
const HD_PINNED = new Uint8Array(32).fill(0x9f);
/** The instance of the hostile-request property. */
const HD_E = new Uint8Array(32).fill(0xe5);

function registry(entries: [Uint8Array, RegisteredInstance][]): RegistryLookup {
  return async (hd) => entries.find(([k]) => toHex(k) === toHex(hd))?.[1];
}

describe('CERTIFY_EK / CERTIFY_AK over the channel', () => {
  let t: TestCa;
  const reg = registry([
    [HD_A, { id: 'uuid-a', identity: IDENT_A }],
    [HD_B, { id: 'uuid-b', identity: IDENT_B }],
    [new Uint8Array(32).fill(0xc3), { id: 'uuid-c', identity: { ...IDENT_A, instanceId: 'not-a-number' } }],
    [
      HD_E,
      { id: 'uuid-e', identity: { ...IDENT_A, instanceId: '7100000000000000005', instanceName: 'vm-e' } },
    ],
    [
      HD_PINNED,
      {
        id: 'uuid-p',
        identity: { ...IDENT_A, instanceId: '7100000000000000009', instanceName: 'vm-pinned' },
        policy: { measurements: ['ab'.repeat(48)] },
      },
    ],
  ]);

  before(async () => {
    t = await testCa();
  });
  after(async () => t.cleanup());

  function firmware(hostData: Uint8Array, vmpl = 0): SimSnpFirmware {
    return new SimSnpFirmware(t.chain, {
      measurement: new Uint8Array(48).fill(0x5a),
      policy: SIM_DEFAULT_POLICY,
      hostData,
      ...(vmpl ? { vmpl } : {}),
    });
  }

  /** A device relaying to the CA (optionally through `wrap`, a VMM that tampers), and a guest client. */
  function channel(
    o: {
      path?: Path;
      features?: bigint;
      claim?: PlatformIdentity;
      wrap?: (r: CertifyRelay) => CertifyRelay;
    } = {},
  ) {
    const relay0 = inProcessRelay(t.ca, reg, 'host-1', () => o.claim);
    const relay = o.wrap ? o.wrap(relay0) : relay0;
    const device = new PvDevice({
      offer: offer(o.features ?? ALL),
      handlers: { [PvCall.CertifyEk]: certifyEkHandler(relay), [PvCall.CertifyAk]: certifyAkHandler(relay) },
    });
    return new PvClient({ transport: transportTo(o.path ?? 'page', () => device), want: ALL });
  }

  async function lastLog() {
    const log = await t.ca.readLog(0, 10_000);
    return log[log.length - 1]!;
  }

  for (const path of ['page', 'port'] as const) {
    it(`${path} path: EK certificate with the registry's identity, then a C509 AK certificate from a C509 request`, async () => {
      const ek = softEk('rsa');
      const ak = softAk();
      const hd = path === 'page' ? HD_A : HD_B;
      const ident = path === 'page' ? IDENT_A : IDENT_B;
      const client = channel({ path, claim: ident });
      const reports = simulatorReportProvider(firmware(hd));
      const manifest = servicesManifest(ek.pub, ak.pub);
      const ekc = await certifyEk(client, { manifest, reports });
      assert.equal(ekc.format, 'x509');
      const cert = parseCertificate(ekc.certificate);
      const id = readInstanceIdentity(cert)!;
      assert.equal(id.projectId, ident.project);
      assert.equal(id.zone, ident.zone);
      assert.equal(id.instanceId.toString(), ident.instanceId);
      assert.equal(id.instanceName, ident.instanceName);
      const x = new x509.X509Certificate(Uint8Array.from(ekc.certificate).buffer);
      const caCert = new x509.X509Certificate(Uint8Array.from(ekc.chain[0]!).buffer);
      assert.ok(await x.verify({ publicKey: caCert.publicKey, signatureOnly: true }));
      assert.equal(toHex(ekc.chain[0]!), toHex(t.ca.certificate));

      // A reboot asks again with the same EK: the same certificate, logged as reused.
      const again = await certifyEk(client, { manifest, reports });
      assert.equal(toHex(again.certificate), toHex(ekc.certificate));
      assert.deepEqual((await lastLog()).reasons, ['ca.ek_reused']);

      // CERTIFY_AK with a C509 request signed by the AK, answered in C509 (bit 5 negotiated).
      const csr = signC509Csr({ subject: specialTextFromString('ak'), attributes: [] }, ak.privateKey);
      const akc = await certifyAk(client, { manifest, reports, csr, preferC509: true });
      assert.equal(akc.format, 'c509');
      const c = parseC509Certificate(akc.certificate);
      assert.equal(c.type, 2);
      const log = await lastLog();
      assert.equal(log.kind, 'ca.issue_ak');
      assert.equal(log.decision, 'accept');
      assert.equal(log.details.caller, 'host-1');
      assert.equal(log.details.brokerInstance, path === 'page' ? 'uuid-a' : 'uuid-b');
    });
  }

  it('an EK certified in C509 first is handed out as X.509 when X.509 is asked for (and reused either way)', async () => {
    const ek = softEk('ecc');
    const hd = new Uint8Array(32).fill(0xd4);
    const ident = { ...IDENT_A, instanceId: '7100000000000000004', instanceName: 'vm-d' };
    const own = registry([[hd, { id: 'uuid-d', identity: ident }]]);
    const relay = inProcessRelay(t.ca, own, 'host-1');
    const device = new PvDevice({
      offer: offer(ALL),
      handlers: { [PvCall.CertifyEk]: certifyEkHandler(relay) },
    });
    const client = new PvClient({ transport: transportTo('page', () => device), want: ALL });
    const o = { manifest: servicesManifest(ek.pub), reports: simulatorReportProvider(firmware(hd)) };
    const c509 = await certifyEk(client, { ...o, preferC509: true });
    assert.equal(c509.format, 'c509');
    assert.equal(parseC509Certificate(c509.certificate).type, 2);
    const der = await certifyEk(client, o);
    assert.equal(der.format, 'x509');
    assert.equal(readInstanceIdentity(parseCertificate(der.certificate))!.instanceName, 'vm-d');
    assert.deepEqual((await lastLog()).reasons, ['ca.ek_reused']);
  });

  describe('refusals: a stable code at the guest and an entry in the issuance log', () => {
    async function refusedWith(p: Promise<unknown>, code: string, reason: string) {
      const before = (await t.ca.readLog(0, 10_000)).length;
      await assert.rejects(p, errorWith(code, reason));
      const log = await t.ca.readLog(before, 100);
      const entry = log.find((e) => e.decision === 'refuse');
      assert.ok(entry, `a refusal was logged for ${reason}`);
      return entry;
    }

    it('an unregistered HOST_DATA', async () => {
      const ek = softEk();
      const e = await refusedWith(
        certifyEk(channel(), {
          manifest: servicesManifest(ek.pub),
          reports: simulatorReportProvider(firmware(HD_NONE)),
        }),
        'ERR_REFUSED',
        'ca.instance_unregistered',
      );
      assert.deepEqual(e.reasons, ['ca.instance_unregistered']);
    });

    it('a VMM that lies about the identity (its claim differs from the registry)', async () => {
      const ek = softEk();
      const e = await refusedWith(
        certifyEk(channel({ claim: IDENT_B }), {
          manifest: servicesManifest(ek.pub),
          reports: simulatorReportProvider(firmware(HD_A)),
        }),
        'ERR_REFUSED',
        'ca.identity_mismatch',
      );
      assert.equal(e.instance, IDENT_A.instanceId);
    });

    it('a forged report (the VMM changes a byte on the way)', async () => {
      const ek = softEk();
      const forge: (r: CertifyRelay) => CertifyRelay = (r) => ({
        ...r,
        certifyEk: (b) => {
          const report = Uint8Array.from(b.report);
          report[0x0c0]! ^= 1; // HOST_DATA: as if naming another instance
          return r.certifyEk({ ...b, report });
        },
      });
      await refusedWith(
        certifyEk(channel({ wrap: forge }), {
          manifest: servicesManifest(ek.pub),
          reports: simulatorReportProvider(firmware(HD_A)),
        }),
        'ERR_SIGNATURE_INVALID',
        'snp.signature',
      );
    });

    it('a report from VMPL1 (the guest OS, not the SVSM)', async () => {
      const ek = softEk();
      await refusedWith(
        certifyEk(channel(), {
          manifest: servicesManifest(ek.pub),
          reports: simulatorReportProvider(firmware(HD_A, 1)),
        }),
        'ERR_REFUSED',
        'ca.report_vmpl',
      );
    });

    it('an EK of another instance, and a second EK for one instance', async () => {
      const client = channel();
      // The EK certified for A (by the page-path test) presented by B's launch.
      const certsA = await t.ca.repository.listCertificates({ kind: 'ek', instanceId: IDENT_A.instanceId });
      assert.ok(certsA.length > 0);
      const ekA = certsA[0]!.ekPublic!;
      await refusedWith(
        certifyEk(client, {
          manifest: servicesManifest(parsePublic(ekA)),
          reports: simulatorReportProvider(firmware(HD_B)),
        }),
        'ERR_REFUSED',
        'ca.ek_other_instance',
      );
      await refusedWith(
        certifyEk(client, {
          manifest: servicesManifest(softEk().pub),
          reports: simulatorReportProvider(firmware(HD_A)),
        }),
        'ERR_REFUSED',
        'ca.ek_changed',
      );
    });

    it('an AK not in the manifest (the request is for another key)', async () => {
      const certsA = await t.ca.repository.listCertificates({ kind: 'ek', instanceId: IDENT_A.instanceId });
      const ekA = parsePublic(certsA[0]!.ekPublic!);
      const ak = softAk();
      const other = softAk();
      const csr = signC509Csr({ subject: specialTextFromString('ak'), attributes: [] }, other.privateKey);
      await refusedWith(
        certifyAk(channel(), {
          manifest: servicesManifest(ekA, ak.pub),
          reports: simulatorReportProvider(firmware(HD_A)),
          csr,
        }),
        'ERR_REFUSED',
        'ca.csr_key_mismatch',
      );
    });

    it('an AK whose manifest EK is not the instance EK', async () => {
      const ak = softAk();
      const csr = signC509Csr({ subject: specialTextFromString('ak'), attributes: [] }, ak.privateKey);
      await refusedWith(
        certifyAk(channel(), {
          manifest: servicesManifest(softEk().pub, ak.pub),
          reports: simulatorReportProvider(firmware(HD_A)),
          csr,
        }),
        'ERR_REFUSED',
        'ca.ek_mismatch',
      );
    });

    it('an instance id the certificate schema cannot carry', async () => {
      await refusedWith(
        certifyEk(channel(), {
          manifest: servicesManifest(softEk().pub),
          reports: simulatorReportProvider(firmware(new Uint8Array(32).fill(0xc3))),
        }),
        'ERR_REFUSED',
        'ca.instance_id_not_numeric',
      );
    });

    it('a nonce spent twice, and a nonce of another relay', async () => {
      const ek = softEk();
      const manifest = servicesManifest(ek.pub);
      const fw = firmware(HD_NONE);
      let saved: Uint8Array | undefined;
      const replay: (r: CertifyRelay) => CertifyRelay = (r) => ({
        ...r,
        certifyEk: async (b) => {
          if (!saved) {
            saved = b.nonce;
            await r.certifyEk(b).catch(() => undefined);
          }
          return r.certifyEk(b);
        },
      });
      await refusedWith(
        certifyEk(channel({ wrap: replay }), { manifest, reports: simulatorReportProvider(fw) }),
        'ERR_REFUSED',
        'ca.nonce_unknown',
      );
      const other = inProcessRelay(t.ca, reg, 'host-2');
      const steal: (r: CertifyRelay) => CertifyRelay = (r) => ({ ...r, nonce: () => other.nonce('ek') });
      await refusedWith(
        certifyEk(channel({ wrap: steal }), { manifest, reports: simulatorReportProvider(fw) }),
        'ERR_REFUSED',
        'ca.nonce_unknown',
      );
    });

    it("a launch the instance's own policy does not allow (another image), though the CA's policy would", async () => {
      const e = await refusedWith(
        certifyEk(channel(), {
          manifest: servicesManifest(softEk().pub),
          reports: simulatorReportProvider(firmware(HD_PINNED)),
        }),
        'ERR_POLICY_REJECTED',
        'snp.measurement',
      );
      assert.deepEqual(e.reasons, ['snp.measurement']);
    });

    it('a nonce past its lifetime', async () => {
      const late: (r: CertifyRelay) => CertifyRelay = (r) => ({
        ...r,
        certifyEk: async (b) => {
          const saved = t.clock.now;
          t.clock.now = new Date(saved.getTime() + 301_000); // nonceTtlSeconds is 300
          try {
            return await r.certifyEk(b);
          } finally {
            t.clock.now = saved;
          }
        },
      });
      await refusedWith(
        certifyEk(channel({ wrap: late }), {
          manifest: servicesManifest(softEk().pub),
          reports: simulatorReportProvider(firmware(HD_A)),
        }),
        'ERR_REFUSED',
        'ca.nonce_expired',
      );
    });

    it('C509 outside the negotiated set: the guest asks for X.509; a forced C509 request is refused', async () => {
      const ek = softEk();
      const client = channel({ features: ALL & ~PvFeature.C509 });
      // The library only asks for what was negotiated.
      await assert.rejects(
        certifyEk(client, {
          manifest: servicesManifest(ek.pub),
          reports: simulatorReportProvider(firmware(HD_NONE)),
          preferC509: true,
        }),
        errorWith('ERR_REFUSED', 'ca.instance_unregistered'),
      );
      const { encodeCertifyEkRequest, CertFormat } = await import('../../src/formats/pvchannel/certify.js');
      const body = encodeCertifyEkRequest(CertFormat.C509, {
        nonce: new Uint8Array(64),
        report: new Uint8Array(0x4a0),
        certTable: new Uint8Array(0),
        manifest: new Uint8Array(1),
      });
      await assert.rejects(
        client.call(PvCall.CertifyEk, body),
        errorWith('ERR_NOT_SUPPORTED', 'pvchannel.c509_not_negotiated'),
      );
    });

    it('hostile certification requests: a typed error at the guest, never a certificate (fast-check)', async () => {
      const ekE = softEk();
      const ak = softAk();
      const client = channel();
      const fw = firmware(HD_E);
      const manifest = servicesManifest(ekE.pub, ak.pub);
      await certifyEk(client, { manifest, reports: simulatorReportProvider(fw) });
      const good = signC509Csr({ subject: specialTextFromString('ak'), attributes: [] }, ak.privateKey);
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(
            fc.uint8Array({ minLength: 1, maxLength: 600 }),
            // the good request with bytes flipped, cut or extended
            fc.tuple(fc.nat(good.length - 1), fc.integer({ min: 1, max: 255 })).map(([i, x]) => {
              const b = Uint8Array.from(good);
              b[i]! ^= x;
              return b;
            }),
            fc.nat(good.length - 1).map((n) => good.subarray(0, n + 1)),
          ),
          async (csr) => {
            try {
              await certifyAk(client, { manifest, reports: simulatorReportProvider(fw), csr });
            } catch (e) {
              assert.ok(e instanceof AttestationError, String(e));
              return;
            }
            // Only a request that still verifies, for the manifest's AK, may pass (a flip the signature survives).
            const parsed = await parseCertificationRequest(csr);
            const akSpki = createPublicKey(ak.privateKey).export({ type: 'spki', format: 'der' });
            assert.equal(toHex(parsed.subjectPublicKeyInfo), toHex(new Uint8Array(akSpki)));
          },
        ),
        { numRuns: 25 },
      );
    });

    it('a payload that does not decode is BAD_PAYLOAD', async () => {
      await assert.rejects(
        channel().call(PvCall.CertifyAk, new Uint8Array([2, 0, 9, 0, 0, 0, 0, 0])),
        errorWith('ERR_INVALID_ARGUMENT', 'pvchannel.status.bad_payload'),
      );
    });
  });
});
