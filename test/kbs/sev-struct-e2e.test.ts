/**
 * Trustee's own SEV-SNP evidence form, end to end: the independent KBS client sends the report as the sev
 * crate's struct (what the CoCo guest attester and svsm PR #1122's aproxy in `kbs-trustee` mode post) to a
 * broker started as the product starts it (startBroker, SQLite, the KBS on). The broker rebuilds the
 * report bytes from the fields and verifies the signature over them like any report.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PROBLEM_TYPE_BASE } from '../../src/kbs/index.js';
import { sharedSimChain } from '../../src/sim/snp/index.js';
import { type Json, type KbsBrokerStack, startKbsBroker } from './broker-stack.js';
import { simKds } from './harness.js';
import { type HttpResult, IndependentKbsClient, makeTeeKey } from './independent-client.js';

const SEALING = 'vouchsafe/sealing-key/current';

function assertRefused(r: HttpResult, status: number, reason: string): void {
  assert.equal(r.status, status, JSON.stringify(r.json));
  assert.match(r.contentType, /^application\/problem\+json/);
  assert.equal((r.json as { reason?: string }).reason, reason);
}

describe('KBS: Trustee struct-form SNP evidence through startBroker', () => {
  let s: KbsBrokerStack;
  const served: string[] = [];
  before(async () => {
    s = await startKbsBroker({ kds: simKds(await sharedSimChain('Milan'), served) });
  });
  after(async () => {
    await s?.close();
  });

  /** One attestation with the struct form; `edit` may change the primary evidence before it is sent. */
  async function attestStruct(o: { withCerts: boolean; edit?: (primary: Json) => void }) {
    const inst = await s.register();
    const fw = s.firmware(inst.hostData);
    const client = new IndependentKbsClient(s.b.url);
    const auth = await client.auth();
    assert.equal(auth.status, 200);
    const key = await makeTeeKey('P-384');
    const body = (await client.attestation({
      key,
      evidence: (rd) => fw.getReport(rd),
      spelling: 'sev-struct',
      withCerts: o.withCerts,
    })) as Json;
    o.edit?.(body['tee-evidence'].primary_evidence);
    return { inst, client, key, body, res: await client.attest(body) };
  }

  it('with cert_chain [{cert_type, data}]: token, then the instance sealing key; KDS not asked', async () => {
    served.length = 0;
    const { inst, client, key, body, res } = await attestStruct({ withCerts: true });
    const primary = body['tee-evidence'].primary_evidence;
    assert.equal(typeof primary.attestation_report.measurement[0], 'number');
    assert.deepEqual(
      primary.cert_chain.map((c: { cert_type: string }) => c.cert_type),
      ['VCEK', 'ASK', 'ARK'],
    );
    assert.equal(res.status, 200, JSON.stringify(res.json));
    const r = await client.resource(SEALING);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.deepEqual(await IndependentKbsClient.open(r.json, key), await s.storedKey(inst.id));
    assert.deepEqual(served, []);
  });

  it('with cert_chain left out (PR #1122 aproxy): certificates from KDS, key released', async () => {
    served.length = 0;
    const { inst, client, key, body, res } = await attestStruct({ withCerts: false });
    assert.equal('cert_chain' in body['tee-evidence'].primary_evidence, false);
    assert.equal(res.status, 200, JSON.stringify(res.json));
    assert.ok(served.length > 0, 'the VCEK came from KDS');
    const r = await client.resource(SEALING);
    assert.deepEqual(await IndependentKbsClient.open(r.json, key), await s.storedKey(inst.id));
  });

  it('a field changed within its range: the rebuilt bytes are not what the firmware signed (refused)', async () => {
    const { res } = await attestStruct({
      withCerts: true,
      edit: (p) => {
        p.attestation_report.guest_svn += 1;
      },
    });
    assert.equal(res.status, 401, JSON.stringify(res.json));
    const p = res.json as { type: string; code: string };
    assert.equal(p.type, `${PROBLEM_TYPE_BASE}evidence-invalid`);
    assert.equal(p.code, 'ERR_SIGNATURE_INVALID');
  });

  it('a struct that does not say exactly one report: 400 evidence-malformed with the codec reason', async () => {
    const { res } = await attestStruct({
      withCerts: true,
      edit: (p) => {
        // A Milan TCB has no FMC byte: the bytes would drop it.
        p.attestation_report.reported_tcb.fmc = 1;
      },
    });
    assertRefused(res, 400, 'snp.sev_json.tcb_layout');
    const { res: extra } = await attestStruct({
      withCerts: true,
      edit: (p) => {
        p.attestation_report.reserved = [0, 0, 0, 0];
      },
    });
    assertRefused(extra, 400, 'snp.sev_json.unknown_key');
  });
});

describe('KBS: TEE names as kbs-types spells them today', () => {
  let s: KbsBrokerStack;
  before(async () => {
    s = await startKbsBroker();
  });
  after(async () => {
    await s?.close();
  });

  it('snp, az-snp-vtpm and tdx are attested; every other name, old spellings included, is refused with kbs.tee', async () => {
    for (const tee of ['snp', 'az-snp-vtpm', 'tdx']) {
      assert.equal((await new IndependentKbsClient(s.b.url).auth({ tee })).status, 200);
    }
    for (const tee of ['az-tdx-vtpm', 'hygondcu', 'tpm', 'TDX', 'sample', 'azsnpvtpm', 'sev', 'SNP']) {
      const r = await new IndependentKbsClient(s.b.url).auth({ tee });
      assert.equal((r.json as { reason?: string }).reason, 'kbs.tee', `${tee}: ${JSON.stringify(r.json)}`);
      assert.ok(r.status >= 400 && r.status < 500, `${tee}: ${r.status}`);
    }
  });
});
