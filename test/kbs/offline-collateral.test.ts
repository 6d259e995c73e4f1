/**
 * A guest that sends no certificate table (what a real SVSM does) against a broker started offline
 * (`kds: { offline: true }`, what `vouchsafe serve --kds-offline` passes), whose only collateral is what was
 * imported into `<data>/kds-cache` (src/collateral/import.ts, `vouchsafe collateral import`). The KDS base
 * URL points at a loopback server that records every request: it must see none.
 *
 * First with nothing imported: a typed 503 ERR_COLLATERAL_UNAVAILABLE `kds.offline_missing` whose detail
 * names the missing item and the commands that fill the directory, logged with its reason, no key created.
 * Then the operator imports the VCEK and the chain while the broker runs, and the same guest gets its
 * instance's key without a restart (an offline miss is not remembered). docs/broker.md "Collateral for
 * guests that send no certificate table".
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { type RunningBroker, startBroker } from '../../src/api/index.js';
import { openFileKek } from '../../src/broker/kek.js';
import { openSealingKey } from '../../src/broker/sealing-key.js';
import { importCollateral } from '../../src/collateral/import.js';
import { ErrorCode } from '../../src/errors.js';
import { encodePem } from '../../src/formats/pem.js';
import {
  SIM_DEFAULT_MEASUREMENT,
  SIM_DEFAULT_POLICY,
  type SimChain,
  SimSnpFirmware,
  sharedSimChain,
} from '../../src/sim/snp/index.js';
import { fromHex, toHex } from '../../src/util/bytes.js';
import { type FakeKds, startFakeKds } from './fake-kds.js';
import { IndependentKbsClient, makeTeeKey } from './independent-client.js';

let chain: SimChain;
let kds: FakeKds;
let dir: string;
let broker: RunningBroker;
let fw: SimSnpFirmware;
let instanceId: string;
const logs: string[] = [];

before(async () => {
  chain = await sharedSimChain('Milan');
  kds = await startFakeKds(chain);
  dir = mkdtempSync(join(tmpdir(), 'vouchsafe-offline-collateral-'));
  broker = await startBroker({
    listen: '127.0.0.1:0',
    dataDir: join(dir, 'data'),
    trustedRoots: [{ product: 'Milan', sha256: chain.rootSha256 }],
    // What `serve --kds-url <url> --kds-offline` passes; the cache directory is <data>/kds-cache.
    kds: { baseUrl: kds.url, offline: true },
    crl: 'none',
    logger: pino({ level: 'info' }, { write: (s: string) => void logs.push(s) }),
  });
  const reg = await broker.app.inject({
    method: 'POST',
    url: '/v1/admin/instances',
    headers: { authorization: `Bearer ${broker.adminToken}` },
    payload: {
      project: 'offline',
      zone: 'z',
      instanceId: 'offline-1',
      instanceName: 'vm',
      policy: { measurements: [toHex(SIM_DEFAULT_MEASUREMENT)] },
    },
  });
  assert.equal(reg.statusCode, 201, reg.body);
  instanceId = reg.json().id;
  fw = new SimSnpFirmware(chain, {
    measurement: SIM_DEFAULT_MEASUREMENT,
    policy: SIM_DEFAULT_POLICY,
    hostData: fromHex(reg.json().hostData)!,
  });
});

after(async () => {
  await broker?.close();
  await kds?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The report alone: no certificate table, as a real SVSM sends it. */
const reportOnly = async (rd: Uint8Array) => ({ report: (await fw.getReport(rd)).report });

describe('offline collateral for a guest without a certificate table', () => {
  it('nothing imported: typed 503 kds.offline_missing naming what to import; logged; no key; no network', async () => {
    const since = logs.length;
    const c = new IndependentKbsClient(broker.url);
    assert.equal((await c.auth()).status, 200);
    const t = await c.attest(await c.attestation({ key: await makeTeeKey('P-256'), evidence: reportOnly }));
    const p = t.json as Record<string, unknown>;
    assert.equal(t.status, 503, JSON.stringify(p));
    assert.equal(p.code, ErrorCode.CollateralUnavailable);
    assert.equal(p.reason, 'kds.offline_missing');
    // The detail says which item is missing and how to fill the directory.
    assert.match(String(p.detail), /VCEK/i);
    assert.match(String(p.detail), /collateral import/);
    assert.ok(logs.slice(since).some((l) => l.includes('"reason":"kds.offline_missing"')));
    assert.deepEqual(await broker.store.listKeys(instanceId), []);
    assert.deepEqual(kds.served, [], 'offline: KDS never asked');
  });

  it('after an import into <data>/kds-cache the same guest gets its key, still without network', async () => {
    const src = join(dir, 'from-another-machine');
    mkdirSync(src);
    writeFileSync(join(src, 'vcek.der'), chain.vcek.der);
    writeFileSync(
      join(src, 'cert_chain.pem'),
      encodePem('CERTIFICATE', chain.ask.der) + encodePem('CERTIFICATE', chain.ark.der),
    );
    const imported = await importCollateral(src, join(broker.dataDir, 'kds-cache'));
    assert.deepEqual(imported.imported.map((e) => e.item.kind).sort(), ['cert_chain', 'vcek']);

    const { secret } = await new IndependentKbsClient(broker.url).run({
      kind: 'P-384',
      evidence: reportOnly,
      path: 'vouchsafe/sealing-key/current',
    });
    const recs = await broker.store.listKeys(instanceId);
    assert.equal(recs.length, 1);
    assert.deepEqual(secret, await openSealingKey(openFileKek(join(broker.dataDir, 'kek')), recs[0]!));
    assert.deepEqual(kds.served, [], 'offline: KDS never asked');
  });
});
