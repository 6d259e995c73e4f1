/**
 * Fault: AMD KDS answering 429 (rate limited) and 500 while guests attest. The broker runs with a KDS
 * client pointed at a loopback fake KDS (its waits recorded, not slept); a guest sends its report without
 * a certificate table (so the VCEK must come from KDS) through the KBS protocol (the independent RCAR
 * client of test/kbs). While KDS fails, each exchange is refused with a typed CollateralUnavailable
 * (`kds.http_error`, `kds.rate_limited`) as a 503 problem document, the refusal is logged with its reason,
 * no key changes and the audit chain verifies; once KDS answers again the same guest gets its own key.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { type RunningBroker, startBroker } from '../../src/api/index.js';
import { openFileKek } from '../../src/broker/kek.js';
import { openSealingKey } from '../../src/broker/sealing-key.js';
import { KdsClient } from '../../src/collateral/kds-client.js';
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
import { IndependentKbsClient, makeTeeKey } from '../kbs/independent-client.js';

type Mode = { status: 200 } | { status: 500 } | { status: 429; retryAfter?: string };

let chain: SimChain;
let kds: Server;
let mode: Mode = { status: 200 };
const served: string[] = [];
const waits: number[] = [];
const logs: string[] = [];
let dir: string;
let broker: RunningBroker;
let fw: SimSnpFirmware;
let instanceId: string;

before(async () => {
  chain = await sharedSimChain('Milan');
  kds = createServer((req, res) => {
    served.push(`${mode.status} ${req.url}`);
    if (mode.status === 500) {
      res.writeHead(500).end('upstream exploded');
      return;
    }
    if (mode.status === 429) {
      res.writeHead(429, mode.retryAfter ? { 'retry-after': mode.retryAfter } : {}).end();
      return;
    }
    if (req.url?.includes('/cert_chain')) {
      res
        .writeHead(200, { 'content-type': 'application/x-pem-file' })
        .end(encodePem('CERTIFICATE', chain.ask.der) + encodePem('CERTIFICATE', chain.ark.der));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(Buffer.from(chain.vcek.der));
  });
  await new Promise<void>((r) => kds.listen(0, '127.0.0.1', () => r()));
  const port = (kds.address() as { port: number }).port;
  dir = mkdtempSync(join(tmpdir(), 'vouchsafe-fault-kds-'));
  broker = await startBroker({
    listen: '127.0.0.1:0',
    dataDir: join(dir, 'data'),
    trustedRoots: [{ product: 'Milan', sha256: chain.rootSha256 }],
    kds: new KdsClient({
      baseUrl: `http://127.0.0.1:${port}`,
      minIntervalMs: 0,
      sleep: async (ms) => void waits.push(ms),
      retry: { maxRetries: 3, baseDelayMs: 10_000, maxDelayMs: 60_000 },
    }),
    crl: 'none',
    logger: pino({ level: 'info' }, { write: (s: string) => void logs.push(s) }),
  });
  const reg = await broker.app.inject({
    method: 'POST',
    url: '/v1/admin/instances',
    headers: { authorization: `Bearer ${broker.adminToken}` },
    payload: {
      project: 'faults',
      zone: 'z',
      instanceId: 'kds-1',
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
  await new Promise<void>((r) => (kds ? kds.close(() => r()) : r()));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The report alone: no certificate table, so the broker must ask KDS for the VCEK. */
const reportOnly = async (rd: Uint8Array) => ({ report: (await fw.getReport(rd)).report });

/** The instance's stored (wrapped) keys: a refusal must leave them exactly as they were. */
async function keyList(): Promise<string[]> {
  return (await broker.store.listKeys(instanceId)).map((k) => `v${k.version}:${toHex(k.wrapped)}`);
}

async function storedKey(): Promise<Uint8Array> {
  const recs = await broker.store.listKeys(instanceId);
  return openSealingKey(
    openFileKek(join(broker.dataDir, 'kek')),
    recs.reduce((x, y) => (y.version > x.version ? y : x)),
  );
}

async function auditOk(): Promise<void> {
  const r = await broker.app.inject({
    method: 'GET',
    url: '/v1/admin/audit/verify',
    headers: { authorization: `Bearer ${broker.adminToken}` },
  });
  assert.equal(r.json().ok, true, r.body);
}

/** One RCAR exchange that must be refused at attest; returns the problem document. */
async function refusedAttest(): Promise<{ status: number; json: Record<string, unknown> }> {
  const c = new IndependentKbsClient(broker.url);
  const a = await c.auth();
  assert.equal(a.status, 200);
  const body = await c.attestation({ key: await makeTeeKey('P-256'), evidence: reportOnly });
  const t = await c.attest(body);
  return { status: t.status, json: t.json as Record<string, unknown> };
}

/** Whether each refusal above left a log line naming its reason (asserted in its own test below). */
const refusalsLogged: boolean[] = [];

function loggedReason(reason: string, since: number): boolean {
  return logs.slice(since).some((l) => l.includes(`"reason":"${reason}"`));
}

describe('fault: KDS answers 429 and 500', () => {
  // Order matters: nothing is in the broker's KDS cache until the last test succeeds.
  it('429 forever: bounded exponential back-off, then a typed 503 (kds.rate_limited); nothing lost', async () => {
    const keys = await keyList();
    const since = logs.length;
    waits.length = 0;
    mode = { status: 429 };
    const r = await refusedAttest();
    assert.equal(r.status, 503, JSON.stringify(r.json));
    assert.equal(r.json.code, ErrorCode.CollateralUnavailable);
    assert.equal(r.json.reason, 'kds.rate_limited');
    assert.deepEqual(waits, [10_000, 20_000, 40_000], "back-off doubles from AMD's 10 s window, 3 retries");
    refusalsLogged.push(loggedReason('kds.rate_limited', since));
    assert.deepEqual(await keyList(), keys);
    await auditOk();
  });

  it('429 with a Retry-After beyond the cap: gives up at once (no wait), typed kds.rate_limited', async () => {
    waits.length = 0;
    mode = { status: 429, retryAfter: '3600' };
    const r = await refusedAttest();
    assert.equal(r.status, 503, JSON.stringify(r.json));
    assert.equal(r.json.reason, 'kds.rate_limited');
    assert.deepEqual(waits, []);
  });

  it('500: a typed 503 (kds.http_error); nothing lost', async () => {
    const keys = await keyList();
    const since = logs.length;
    mode = { status: 500 };
    const r = await refusedAttest();
    assert.equal(r.status, 503, JSON.stringify(r.json));
    assert.equal(r.json.code, ErrorCode.CollateralUnavailable);
    assert.equal(r.json.reason, 'kds.http_error');
    refusalsLogged.push(loggedReason('kds.http_error', since));
    assert.deepEqual(await keyList(), keys);
    await auditOk();
  });

  it('each KDS refusal is logged with its reason', () => {
    assert.deepEqual(refusalsLogged, [true, true]);
  });

  it('KDS back: the same guest gets its own key, and the audit chain verifies', async () => {
    mode = { status: 200 };
    const { secret } = await new IndependentKbsClient(broker.url).run({
      kind: 'P-384',
      evidence: reportOnly,
      path: 'vouchsafe/sealing-key/current',
    });
    assert.deepEqual(secret, await storedKey());
    assert.equal((await keyList()).length, 1);
    assert.ok(
      served.some((x) => x.startsWith('200 ')),
      'the VCEK came from the fake KDS',
    );
    await auditOk();
  });
});
