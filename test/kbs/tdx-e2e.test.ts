/**
 * Intel TDX (`tee: "tdx"`) end to end: the independent KBS client posts Trustee's TDX evidence
 * `{"quote", "cc_eventlog"}` from the TDX simulator to a broker started as the product starts it
 * (startBroker, SQLite, the KBS on, collateral from the simulator's PCS-shaped source). The TD is
 * registered by MRCONFIGID; REPORTDATA is Trustee's: SHA-384 of the canonical runtime data, zero-padded.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { TdxVerifier } from '../../src/evidence/tdx/index.js';
import { replayRtmrs } from '../../src/evidence/tpm/eventlog-replay.js';
import { EV } from '../../src/formats/tpm/eventlog/event-types.js';
import { parseEventLog } from '../../src/formats/tpm/eventlog/parse.js';
import { SimTdxPlatform } from '../../src/sim/tdx/index.js';
import { toHex } from '../../src/util/bytes.js';
import { buildCcelLog } from '../evidence/tpm/eventlog/build.js';
import { type Json, type KbsBrokerStack, startKbsBroker } from './broker-stack.js';
import { type HttpResult, IndependentKbsClient, makeTeeKey } from './independent-client.js';

const SEALING = 'vouchsafe/sealing-key/current';
const MRTD = toHex(new Uint8Array(48).fill(0x7d)); // the simulator's MRTD
const p = new SimTdxPlatform();
const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');

function assertRefused(r: HttpResult, status: number, reason: string): void {
  assert.equal(r.status, status, JSON.stringify(r.json));
  assert.match(r.contentType, /^application\/problem\+json/);
  assert.equal((r.json as { reason?: string }).reason, reason, JSON.stringify(r.json));
}

const decodeJwtPayload = (t: string): Json =>
  JSON.parse(Buffer.from(t.split('.')[1]!, 'base64url').toString('utf8'));

interface AttestOptions {
  /** What the quote's REPORTDATA holds, from the binding's 64 bytes. */
  reportData?: (rd: Uint8Array) => Uint8Array;
  rtmrs?: readonly Uint8Array[];
  /** The primary evidence from the quote (default `{quote, cc_eventlog: null}`). */
  primary?: (quote: Uint8Array) => unknown;
  tee?: string;
}

describe('KBS: tdx through startBroker', () => {
  let s: KbsBrokerStack;
  before(async () => {
    s = await startKbsBroker({
      tdx: {
        collateral: { getTdxCollateral: async () => p.collateral() },
        trustedRoots: [p.rootSha256],
        verifier: new TdxVerifier(),
      },
    });
  });
  after(async () => {
    await s?.close();
  });

  let n = 0;
  async function registerTd(
    policy: unknown = { mrTd: [MRTD] },
  ): Promise<{ id: string; mrConfigId: Uint8Array }> {
    n++;
    const r = await s.admin('POST', '/v1/admin/instances', {
      project: 'tdx',
      zone: 'z1',
      instanceId: `td-${n}-${randomBytes(4).toString('hex')}`,
      instanceName: `td-${n}`,
      policy,
      tee: 'tdx',
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return { id: r.body.id, mrConfigId: Buffer.from(r.body.hostData, 'hex') };
  }

  async function attest(mrConfigId: Uint8Array, o: AttestOptions = {}) {
    const client = new IndependentKbsClient(s.b.url);
    const auth = await client.auth({ tee: o.tee ?? 'tdx' });
    assert.equal(auth.status, 200, JSON.stringify(auth.json));
    const key = await makeTeeKey('P-384');
    let rd: Uint8Array | undefined;
    const body = (await client.attestation({
      key,
      evidence: (x) => {
        rd = x;
        return { report: new Uint8Array(0) };
      },
    })) as Json;
    const quote = p.quote(o.reportData ? o.reportData(rd!) : rd!, {
      body: { mrConfigId, ...(o.rtmrs ? { rtmrs: o.rtmrs } : {}) },
    });
    body['tee-evidence'].primary_evidence = o.primary
      ? o.primary(quote)
      : { quote: b64(quote), cc_eventlog: null };
    return { client, key, res: await client.attest(body) };
  }

  it('auth names tdx; the TD gets a token and then its own sealing key', async () => {
    const td = await registerTd();
    const { client, key, res } = await attest(td.mrConfigId);
    assert.equal(res.status, 200, JSON.stringify(res.json));
    const r = await client.resource(SEALING);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.deepEqual(await IndependentKbsClient.open(r.json, key), await s.storedKey(td.id));
  });

  it('the token carries the TDX claims under tdx (no snp), the binding, the instance and the trust vector', async () => {
    const td = await registerTd();
    const { res } = await attest(td.mrConfigId);
    assert.equal(res.status, 200, JSON.stringify(res.json));
    const cpu0 = decodeJwtPayload((res.json as { token: string }).token).submods.cpu0;
    const ev = cpu0['ear.veraison.annotated-evidence'];
    assert.equal(ev.snp, undefined);
    assert.equal(ev.tdx.mrTd, MRTD);
    assert.equal(ev.tdx.mrConfigId, toHex(td.mrConfigId));
    assert.equal(ev.tdx.tcb.status, 'UpToDate');
    assert.equal(ev.binding, 'trustee-jcs-sha384');
    assert.equal(cpu0['ear.vouchsafe.platform-identity'].brokerInstanceId, td.id);
    // MRTD constrained by the policy: executables 3 (approved boot); not debuggable: runtime-opaque 2.
    assert.equal(cpu0['ear.trustworthiness-vector'].executables, 3);
    assert.equal(cpu0['ear.trustworthiness-vector']['runtime-opaque'], 2);
    assert.equal(cpu0['ear.status'], 'affirming');
    const any = await registerTd({ mrTd: 'any' });
    const r2 = await attest(any.mrConfigId);
    const v2 = decodeJwtPayload((r2.res.json as { token: string }).token).submods.cpu0;
    assert.equal(v2['ear.trustworthiness-vector'].executables, undefined);
  });

  it('REPORTDATA is Trustee rule: the 48-byte SHA-384 then zeros; another digest is broker.report_data_mismatch', async () => {
    const td = await registerTd();
    const ok = await attest(td.mrConfigId, {
      reportData: (rd) => {
        assert.deepEqual(rd.subarray(48), new Uint8Array(16));
        return rd;
      },
    });
    assert.equal(ok.res.status, 200, JSON.stringify(ok.res.json));
    const bad = await attest(td.mrConfigId, {
      reportData: (rd) => {
        const x = new Uint8Array(64);
        x.set(createHash('sha384').update(rd.subarray(0, 48)).digest());
        return x;
      },
    });
    assertRefused(bad.res, 401, 'broker.report_data_mismatch');
  });

  it('a CCEL log must replay to the quote RTMRs (tdx.ccel.rtmr_mismatch); a matching one is counted in the token', async () => {
    const td = await registerTd();
    const log = buildCcelLog([{ pcr: 2, type: EV.EFI_BOOT_SERVICES_APPLICATION, data: Uint8Array.of(1) }]);
    const withLog = (q: Uint8Array) => ({ quote: b64(q), cc_eventlog: b64(log) });
    const bad = await attest(td.mrConfigId, { primary: withLog });
    assert.equal((bad.res.json as { reason?: string }).reason, 'tdx.ccel.rtmr_mismatch');
    const rtmrs = replayRtmrs(parseEventLog(log).events);
    const ok = await attest(td.mrConfigId, { primary: withLog, rtmrs });
    assert.equal(ok.res.status, 200, JSON.stringify(ok.res.json));
    const ev = decodeJwtPayload((ok.res.json as { token: string }).token).submods.cpu0[
      'ear.veraison.annotated-evidence'
    ];
    assert.equal(ev.tdx.eventLog.events, parseEventLog(log).events.length);
  });

  it('an empty cc_eventlog is no log and aa_eventlog is ignored (as in Trustee and the CoCo attester)', async () => {
    const td = await registerTd();
    const { res } = await attest(td.mrConfigId, {
      primary: (q) => ({ quote: b64(q), cc_eventlog: '', aa_eventlog: 'not checked' }),
    });
    assert.equal(res.status, 200, JSON.stringify(res.json));
  });

  it('malformed TDX evidence is refused before the challenge is spent: shape, base64', async () => {
    const td = await registerTd();
    const cases: [(q: Uint8Array) => unknown, string][] = [
      [(q) => ({ quote: b64(q), cc_eventlog: null, extra: 1 }), 'kbs.evidence.shape'],
      [() => ({ cc_eventlog: null }), 'kbs.evidence.shape'],
      [(q) => ({ quote: b64(q), cc_eventlog: 5 }), 'kbs.evidence.shape'],
      [(q) => ({ quote: `${b64(q)}!` }), 'kbs.evidence.base64'],
      [(q) => ({ 'snp-report': b64(q) }), 'kbs.evidence.shape'],
    ];
    for (const [primary, reason] of cases) {
      assertRefused((await attest(td.mrConfigId, { primary })).res, 400, reason);
    }
  });

  it('a quote whose MRCONFIGID is not registered, and a quote in an snp session, are refused', async () => {
    const other = new Uint8Array(randomBytes(48));
    assertRefused((await attest(other)).res, 401, 'broker.unknown_instance');
    const td = await registerTd();
    assertRefused((await attest(td.mrConfigId, { tee: 'snp' })).res, 400, 'kbs.evidence.shape');
  });

  it('a policy on another MRTD rejects the TD', async () => {
    const td = await registerTd({ mrTd: [toHex(new Uint8Array(48).fill(1))] });
    const { res } = await attest(td.mrConfigId);
    assert.equal(res.status, 401, JSON.stringify(res.json));
    assert.equal((res.json as { code?: string }).code, 'ERR_POLICY_REJECTED');
    assert.ok((res.json as { failures: string[] }).failures.includes('tdx.mr_td'), JSON.stringify(res.json));
  });
});
