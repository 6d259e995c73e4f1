/**
 * Azure confidential VMs (`tee: "az-snp-vtpm"`) end to end: the independent KBS client posts the simulated
 * Azure VM's evidence (HCL report + vTPM quote, Trustee's v0/v1/v2 JSON) to a broker started as the
 * product starts it (startBroker, SQLite, the KBS on, KDS simulated for ASK/ARK). The VM is registered by
 * the SHA-256 of its vmUniqueId, since Azure leaves HOST_DATA zero.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { azureVmIdentity } from '../../src/evidence/az-snp-vtpm/index.js';
import { SimAzureVm } from '../../src/sim/azure/index.js';
import { sharedSimChain } from '../../src/sim/snp/index.js';
import { toHex } from '../../src/util/bytes.js';
import { GOOD_MEASUREMENT, type Json, type KbsBrokerStack, startKbsBroker } from './broker-stack.js';
import { simKds } from './harness.js';
import { type HttpResult, IndependentKbsClient, makeTeeKey, type TeeKey } from './independent-client.js';

const SEALING = 'vouchsafe/sealing-key/current';
const TEE = 'az-snp-vtpm';

function assertRefused(r: HttpResult, status: number, reason: string): void {
  assert.equal(r.status, status, JSON.stringify(r.json));
  assert.match(r.contentType, /^application\/problem\+json/);
  assert.equal((r.json as { reason?: string }).reason, reason, JSON.stringify(r.json));
}

const decodeJwtPayload = (t: string): Json =>
  JSON.parse(Buffer.from(t.split('.')[1]!, 'base64url').toString('utf8'));

let seq = 0;

describe('KBS: az-snp-vtpm through startBroker', () => {
  let s: KbsBrokerStack;
  before(async () => {
    s = await startKbsBroker({
      kds: simKds(await sharedSimChain('Milan')),
      logger: (await import('pino')).pino({ level: 'error' }),
    });
  });
  after(async () => {
    await s?.close();
  });

  /** A simulated Azure VM with its own vmUniqueId, and (unless `register` is false) its instance. */
  async function azureVm(o: { policy?: unknown; register?: boolean } = {}) {
    const n = ++seq;
    const vmUniqueId = `9A1B0EF8-0000-4000-8000-${String(n).padStart(12, '0')}`;
    const vm = new SimAzureVm(s.chain, {
      vmConfiguration: { 'secure-boot': true, 'tpm-enabled': true, vmUniqueId },
    });
    const inst =
      o.register === false
        ? undefined
        : await s.b.broker.registerInstance({
            project: 'azure',
            zone: 'westeurope-1',
            instanceId: `az-${n}-${Date.now()}`,
            instanceName: `azure-vm-${n}`,
            policy: (o.policy ?? { snp: { measurements: [GOOD_MEASUREMENT] }, pcrs: 'any' }) as never,
            hostData: azureVmIdentity(vmUniqueId)!,
          });
    return { vm, inst, vmUniqueId };
  }

  /**
   * /auth as `tee`, then /attest with the VM's evidence of `version` over Trustee's runtime-data digest
   * (the CoCo Azure attester's nonce: SHA-384 of the canonical runtime data, 48 bytes). `nonce` overrides
   * what the quote carries.
   */
  async function attest(
    vm: SimAzureVm,
    o: { version?: 0 | 1 | 2; tee?: string; nonce?: (digest: Uint8Array) => Uint8Array; key?: TeeKey } = {},
  ) {
    const client = new IndependentKbsClient(s.b.url);
    const auth = await client.auth({ tee: o.tee ?? TEE });
    assert.equal(auth.status, 200, JSON.stringify(auth.json));
    const key = o.key ?? (await makeTeeKey('P-256'));
    let digest: Uint8Array | undefined;
    const body = (await client.attestation({
      key,
      evidence: async (rd) => {
        digest = rd.subarray(0, 48);
        return { report: new Uint8Array(0) };
      },
    })) as Json;
    const nonce = o.nonce ? o.nonce(digest!) : digest!;
    body['tee-evidence'].primary_evidence = vm.evidence(nonce, o.version ?? 2);
    return { client, key, body, res: await client.attest(body) };
  }

  for (const version of [0, 1, 2] as const) {
    it(`v${version}: token, then the instance's sealing key`, async () => {
      const { vm, inst } = await azureVm();
      const { client, key, res } = await attest(vm, { version });
      assert.equal(res.status, 200, JSON.stringify(res.json));
      const r = await client.resource(SEALING);
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.deepEqual(await IndependentKbsClient.open(r.json, key), await s.storedKey(inst!.id));
    });
  }

  it('the token carries the HCL report SNP claims and the PCRs, vm-configuration beside them', async () => {
    const { vm, inst, vmUniqueId } = await azureVm();
    const { res } = await attest(vm);
    assert.equal(res.status, 200, JSON.stringify(res.json));
    const claims = decodeJwtPayload((res.json as { token: string }).token);
    const ev = claims.submods.cpu0['ear.veraison.annotated-evidence'];
    assert.equal(ev.snp.measurement, GOOD_MEASUREMENT);
    assert.equal(ev['az-snp-vtpm'].tpm.pcr07, toHex(new Uint8Array(32).fill(7)));
    assert.equal(ev['az-snp-vtpm'].azure.vmConfiguration.vmUniqueId, vmUniqueId);
    assert.equal(ev.binding, 'trustee-jcs-sha384');
    assert.equal(claims.submods.cpu0['ear.vouchsafe.platform-identity'].brokerInstanceId, inst!.id);
  });

  it('PCR rules: an allowed value releases; another value is policy-rejected naming azure.pcr', async () => {
    const pcr7 = toHex(new Uint8Array(32).fill(7));
    const ok = await azureVm({ policy: { snp: { measurements: [GOOD_MEASUREMENT] }, pcrs: { 7: [pcr7] } } });
    assert.equal((await attest(ok.vm)).res.status, 200);
    const other = toHex(new Uint8Array(32).fill(0xee));
    const bad = await azureVm({
      policy: { snp: { measurements: [GOOD_MEASUREMENT] }, pcrs: { 7: [other], 11: [other] } },
    });
    const { res } = await attest(bad.vm);
    assertRefused(res, 401, 'azure.pcr');
    assert.deepEqual((res.json as { failures: string[] }).failures, ['azure.pcr', 'azure.pcr']);
  });

  it('a VM whose vmUniqueId is not registered: unknown-instance (HOST_DATA, zero on Azure, names nothing)', async () => {
    const { vm } = await azureVm({ register: false });
    assertRefused((await attest(vm)).res, 401, 'broker.unknown_instance');
  });

  it('a quote over another nonce: report-data-mismatch', async () => {
    const { vm } = await azureVm();
    const { res } = await attest(vm, {
      nonce: (d) => createHash('sha384').update(d).digest(),
    });
    assertRefused(res, 401, 'broker.report_data_mismatch');
  });

  it('the session keeps the /auth TEE: Azure evidence in an snp session, and SNP evidence in an Azure one, are malformed', async () => {
    const { vm } = await azureVm();
    assertRefused((await attest(vm, { tee: 'snp' })).res, 400, 'kbs.evidence.shape');
    const client = new IndependentKbsClient(s.b.url);
    assert.equal((await client.auth({ tee: TEE })).status, 200);
    const inst = await s.register();
    const fw = s.firmware(inst.hostData);
    const body = await client.attestation({
      key: await makeTeeKey('P-256'),
      evidence: (rd) => fw.getReport(rd),
    });
    assertRefused(await client.attest(body), 400, 'azure.evidence.shape');
  });

  it('registering a vmUniqueId twice is refused (broker.host_data_exists): one VM, one key', async () => {
    const { vmUniqueId } = await azureVm();
    await assert.rejects(
      s.b.broker.registerInstance({
        project: 'azure',
        zone: 'westeurope-1',
        instanceId: `dup-${Date.now()}`,
        instanceName: 'dup',
        policy: { snp: {}, pcrs: 'any' },
        hostData: azureVmIdentity(vmUniqueId.toLowerCase())!,
      }),
      (e: { code?: string; reason?: string }) => e.reason === 'broker.host_data_exists',
    );
  });
});
