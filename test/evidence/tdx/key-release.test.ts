/**
 * TDX key release end to end (issue 12): a TDX instance is registered with an MRCONFIGID, the TDX
 * simulator's quote with that MRCONFIGID and the /v1 REPORTDATA gets the key over HTTP; MRCONFIGID is
 * looked up with the TEE, so an SNP report whose HOST_DATA is the first 32 bytes of a registered
 * MRCONFIGID names nothing, and a quote with another MRCONFIGID is `broker.unknown_instance`.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { TdxVerifier } from '../../../src/evidence/tdx/index.js';
import { replayRtmrs } from '../../../src/evidence/tpm/eventlog-replay.js';
import { computeReportData } from '../../../src/formats/aproxy/report-data.js';
import type { NegotiationParam } from '../../../src/formats/aproxy/types.js';
import { EV } from '../../../src/formats/tpm/eventlog/event-types.js';
import { parseEventLog } from '../../../src/formats/tpm/eventlog/parse.js';
import { generateP521KeyPair, p521PointOf } from '../../../src/native/p521.js';
import { SimTdxPlatform } from '../../../src/sim/tdx/index.js';
import { toHex } from '../../../src/util/bytes.js';
import { type Json, startTestBroker, type TestBroker } from '../../api/helpers.js';
import { buildCcelLog } from '../tpm/eventlog/build.js';

const p = new SimTdxPlatform();
const TDX_POLICY = { mrTd: 'any' };
const b64 = (x: Uint8Array) => Buffer.from(x).toString('base64');
let t: TestBroker;

before(async () => {
  t = await startTestBroker({
    tdx: {
      collateral: { getTdxCollateral: async () => p.collateral() },
      trustedRoots: [p.rootSha256],
      verifier: new TdxVerifier(),
    },
  });
});
after(() => t.close());

let n = 0;
async function registerTdx(extra: Record<string, unknown> = {}): Promise<{ status: number; body: Json }> {
  n++;
  return t.admin('POST', '/v1/admin/instances', {
    project: 'tdx',
    zone: 'z1',
    instanceId: `td-${n}-${randomBytes(4).toString('hex')}`,
    instanceName: `td-${n}`,
    policy: TDX_POLICY,
    tee: 'tdx',
    ...extra,
  });
}

/** A /v1/attest body (0.2.0, no state) for a TD whose quote carries `mrConfigId`. */
async function tdxAttestBody(mrConfigId: Uint8Array, ccel?: Uint8Array, rtmrs?: readonly Uint8Array[]) {
  const c = await t.call('POST', '/v1/challenge', { tee: 'tdx', version: '0.2.0' });
  assert.equal(c.status, 200, JSON.stringify(c.body));
  const challenge = new Uint8Array(Buffer.from(c.body.challenge, 'base64'));
  const key = p521PointOf((await generateP521KeyPair()).publicKey);
  const rd = computeReportData(c.body.params as NegotiationParam[], {
    challenge,
    key,
    stateCounter: null,
    stateDigest: null,
  });
  const quote = p.quote(rd, { body: { mrConfigId, ...(rtmrs ? { rtmrs } : {}) } });
  return {
    tee: 'tdx',
    version: '0.2.0',
    report: b64(quote),
    ...(ccel ? { certTable: b64(ccel) } : {}),
    challenge: c.body.challenge,
    key: { x: b64(key.x), y: b64(key.y) },
    stateCounter: null,
    stateDigest: null,
  };
}

describe('TDX key release over /v1', () => {
  it('registers a TDX instance with a random 48-byte MRCONFIGID and releases its key to its TD', async () => {
    const reg = await registerTdx();
    assert.equal(reg.status, 201, JSON.stringify(reg.body));
    assert.equal(reg.body.tee, 'tdx');
    assert.equal(reg.body.identityField, 'MRCONFIGID');
    assert.match(reg.body.hostData, /^[0-9a-f]{96}$/);
    const r = await t.call('POST', '/v1/attest', await tdxAttestBody(Buffer.from(reg.body.hostData, 'hex')));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.instance, reg.body.id);
  });

  it('registers a chosen MRCONFIGID; a quote with another MRCONFIGID is broker.unknown_instance', async () => {
    const chosen = new Uint8Array(randomBytes(48));
    const reg = await registerTdx({ hostData: toHex(chosen) });
    assert.equal(reg.status, 201, JSON.stringify(reg.body));
    assert.equal(reg.body.hostData, toHex(chosen));
    const other = Uint8Array.from(chosen);
    other[47]! ^= 1;
    const r = await t.call('POST', '/v1/attest', await tdxAttestBody(other));
    assert.deepEqual([r.body.code, r.body.reason], ['ERR_REFUSED', 'broker.unknown_instance']);
    const ok = await t.call('POST', '/v1/attest', await tdxAttestBody(chosen));
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
  });

  it('an SNP report whose HOST_DATA is the first 32 bytes of a TDX MRCONFIGID names no instance', async () => {
    const reg = await registerTdx();
    const prefix = reg.body.hostData.slice(0, 64);
    const { body } = await t.attestBody(t.firmware(prefix));
    const r = await t.call('POST', '/v1/attest', body);
    assert.deepEqual([r.body.code, r.body.reason], ['ERR_REFUSED', 'broker.unknown_instance']);
  });

  it('an SNP instance registered with the same 32 bytes is found only by the SNP report', async () => {
    const reg = await registerTdx();
    const prefix: string = reg.body.hostData.slice(0, 64);
    const snp = await t.admin('POST', '/v1/admin/instances', {
      project: 'tdx',
      zone: 'z1',
      instanceId: `snp-${randomBytes(4).toString('hex')}`,
      instanceName: 'snp-twin',
      policy: { measurements: 'any' },
      hostData: prefix,
    });
    assert.equal(snp.status, 201, JSON.stringify(snp.body));
    assert.equal(snp.body.tee, 'snp');
    const { body } = await t.attestBody(t.firmware(prefix));
    const r = await t.call('POST', '/v1/attest', body);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.instance, snp.body.id);
  });

  it('refuses a chosen value of the wrong length or all zero, and a TDX policy that does not parse', async () => {
    const short = await registerTdx({ hostData: toHex(new Uint8Array(32).fill(1)) });
    assert.deepEqual([short.status, short.body.reason], [400, 'broker.host_data']);
    const zero = await registerTdx({ hostData: toHex(new Uint8Array(48)) });
    assert.deepEqual([zero.status, zero.body.reason], [400, 'broker.host_data']);
    const bad = await registerTdx({ policy: { measurements: 'any' } });
    assert.deepEqual([bad.status, bad.body.reason], [400, 'policy.invalid']);
  });

  it('a CCEL log given with the quote must replay to its RTMRs (tdx.ccel.rtmr_mismatch)', async () => {
    const reg = await registerTdx();
    const mrConfigId = Buffer.from(reg.body.hostData, 'hex');
    const log = buildCcelLog([{ pcr: 2, type: EV.EFI_BOOT_SERVICES_APPLICATION, data: Uint8Array.of(1) }]);
    // The simulator's RTMRs are zero: RTMR1 differs from the log's.
    const bad = await t.call('POST', '/v1/attest', await tdxAttestBody(mrConfigId, log));
    assert.deepEqual([bad.body.code, bad.body.reason], ['ERR_BINDING_MISMATCH', 'tdx.ccel.rtmr_mismatch']);
    const rtmrs = replayRtmrs(parseEventLog(log).events);
    const ok = await t.call('POST', '/v1/attest', await tdxAttestBody(mrConfigId, log, rtmrs));
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    const junk = await t.call('POST', '/v1/attest', await tdxAttestBody(mrConfigId, Uint8Array.of(1, 2, 3)));
    assert.equal(junk.body.code, 'ERR_MALFORMED');
  });
});
