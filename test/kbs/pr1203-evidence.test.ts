/**
 * svsm PR #1203's SNP evidence `{"Snp":{"report","certs_buf"?}}` (what its SVSM posts as primary_evidence,
 * head bdf46eda kernel/src/attest.rs): parsed strictly by src/kbs/evidence.ts, and end to end through a
 * broker started as the product starts it, where it is verified like the other forms.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseSnpPrimaryEvidence } from '../../src/kbs/evidence.js';
import { PROBLEM_TYPE_BASE } from '../../src/kbs/index.js';
import { sharedSimChain } from '../../src/sim/snp/index.js';
import { throwsCode } from '../helpers/assert-error.js';
import { type Json, type KbsBrokerStack, startKbsBroker } from './broker-stack.js';
import { simKds } from './harness.js';
import { IndependentKbsClient, makeTeeKey } from './independent-client.js';

const SEALING = 'vouchsafe/sealing-key/current';
const b64 = (n: number, fill = 1) => Buffer.alloc(n, fill).toString('base64');

describe('KBS evidence: the svsm PR #1203 form, strictly', () => {
  it('exactly the SVSM\'s shape: {"Snp":{"report"}}, and with certs_buf', () => {
    const r = parseSnpPrimaryEvidence({ Snp: { report: b64(0x4a0) } });
    assert.equal(r.spelling, 'svsm-pr1203');
    assert.deepEqual(r.report, new Uint8Array(0x4a0).fill(1));
    assert.equal(r.certTable, undefined);
    const c = parseSnpPrimaryEvidence({ Snp: { report: b64(0x4a0), certs_buf: b64(100, 7) } });
    assert.deepEqual(c.certTable, new Uint8Array(100).fill(7));
  });

  it('hostile variants: one typed refusal each', () => {
    const cases: [string, unknown, string][] = [
      [
        'a second top-level key',
        { Snp: { report: b64(0x4a0) }, 'snp-report': b64(0x4a0) },
        'kbs.evidence.shape',
      ],
      ['another variant beside Snp', { Snp: { report: b64(0x4a0) }, Tdx: {} }, 'kbs.evidence.shape'],
      ['Snp not an object', { Snp: b64(0x4a0) }, 'kbs.evidence.shape'],
      ['Snp an array', { Snp: [b64(0x4a0)] }, 'kbs.evidence.shape'],
      ['Snp null', { Snp: null }, 'kbs.evidence.shape'],
      ['no report', { Snp: {} }, 'kbs.evidence.shape'],
      ['report as byte numbers', { Snp: { report: [1, 2, 3] } }, 'kbs.evidence.shape'],
      ['report null', { Snp: { report: null } }, 'kbs.evidence.shape'],
      ['an unknown inner key', { Snp: { report: b64(0x4a0), cert_chain: null } }, 'kbs.evidence.shape'],
      [
        'the kebab spelling of certs_buf',
        { Snp: { report: b64(0x4a0), 'certs-buf': b64(10) } },
        'kbs.evidence.shape',
      ],
      // libaproxy's own reader refuses null here (its base64 option reader wants a string).
      ['certs_buf null', { Snp: { report: b64(0x4a0), certs_buf: null } }, 'kbs.evidence.shape'],
      ['certs_buf a number', { Snp: { report: b64(0x4a0), certs_buf: 5 } }, 'kbs.evidence.shape'],
      ['URL-safe base64', { Snp: { report: 'a-b_' } }, 'kbs.evidence.base64'],
      ['unpadded base64', { Snp: { report: 'QQ' } }, 'kbs.evidence.base64'],
      ['a huge report', { Snp: { report: b64(5000) } }, 'kbs.evidence.size'],
      [
        'a certs_buf over the table bound',
        { Snp: { report: b64(0x4a0), certs_buf: b64((1 << 20) + 3) } },
        'kbs.evidence.size',
      ],
    ];
    for (const [what, v, reason] of cases) {
      try {
        throwsCode(() => parseSnpPrimaryEvidence(v), 'ERR_MALFORMED', reason);
      } catch (e) {
        throw new Error(`${what}: ${(e as Error).message}`, { cause: e });
      }
    }
  });
});

describe('KBS: svsm PR #1203 evidence through startBroker', () => {
  let s: KbsBrokerStack;
  const served: string[] = [];
  before(async () => {
    s = await startKbsBroker({ kds: simKds(await sharedSimChain('Milan'), served) });
  });
  after(async () => {
    await s?.close();
  });

  async function attest1203(o: { withCerts: boolean; edit?: (primary: Json) => void }) {
    const inst = await s.register();
    const fw = s.firmware(inst.hostData);
    const client = new IndependentKbsClient(s.b.url);
    assert.equal((await client.auth()).status, 200);
    const key = await makeTeeKey('P-384');
    const body = (await client.attestation({
      key,
      evidence: (rd) => fw.getReport(rd),
      spelling: 'svsm-pr1203',
      withCerts: o.withCerts,
    })) as Json;
    o.edit?.(body['tee-evidence'].primary_evidence);
    return { inst, client, key, body, res: await client.attest(body) };
  }

  it('as the SVSM sends it (no certs_buf): certificates from KDS, token, then the sealing key', async () => {
    served.length = 0;
    const { inst, client, key, body, res } = await attest1203({ withCerts: false });
    assert.deepEqual(Object.keys(body['tee-evidence'].primary_evidence.Snp), ['report']);
    assert.equal(res.status, 200, JSON.stringify(res.json));
    assert.ok(served.length > 0, 'the VCEK came from KDS');
    const r = await client.resource(SEALING);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.deepEqual(await IndependentKbsClient.open(r.json, key), await s.storedKey(inst.id));
  });

  it('with certs_buf: verified from the table alone (KDS not asked)', async () => {
    served.length = 0;
    const { inst, client, key, res } = await attest1203({ withCerts: true });
    assert.equal(res.status, 200, JSON.stringify(res.json));
    assert.deepEqual(served, []);
    const r = await client.resource(SEALING);
    assert.deepEqual(await IndependentKbsClient.open(r.json, key), await s.storedKey(inst.id));
  });

  it('a report byte changed: 401 evidence-invalid, ERR_SIGNATURE_INVALID (the same pipeline checks it)', async () => {
    const { res } = await attest1203({
      withCerts: true,
      edit: (p) => {
        const raw = Buffer.from(p.Snp.report, 'base64');
        raw[0x90] = raw[0x90]! ^ 1; // MEASUREMENT
        p.Snp.report = raw.toString('base64');
      },
    });
    assert.equal(res.status, 401, JSON.stringify(res.json));
    const p = res.json as { type: string; code: string };
    assert.equal(p.type, `${PROBLEM_TYPE_BASE}evidence-invalid`);
    assert.equal(p.code, 'ERR_SIGNATURE_INVALID');
  });

  it('a malformed PR #1203 form: 400 with kbs.evidence.shape', async () => {
    const { res } = await attest1203({
      withCerts: false,
      edit: (p) => {
        p.Snp.certs_buf = null;
      },
    });
    assert.equal(res.status, 400, JSON.stringify(res.json));
    assert.equal((res.json as { reason?: string }).reason, 'kbs.evidence.shape');
  });
});
