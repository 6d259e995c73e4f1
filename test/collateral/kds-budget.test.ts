/**
 * The global KDS fetch budget and the negative cache (src/collateral/kds-budget.ts): a flood of unsigned
 * reports, each naming a fresh CHIP_ID, costs a loopback fake KDS at most the budget, and a CHIP_ID KDS has
 * already refused is not asked again. The clock is a counter the test moves; nothing waits on time.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { KdsClient } from '../../src/collateral/kds-client.js';
import { AttestationError, ErrorCode } from '../../src/errors.js';
import { verifySnpAttestation } from '../../src/evidence/snp/attestation.js';
import { encodePem } from '../../src/formats/pem.js';
import { parseReport } from '../../src/formats/snp/report.js';
import {
  SIM_DEFAULT_MEASUREMENT,
  SIM_DEFAULT_POLICY,
  type SimChain,
  SimSnpFirmware,
  sharedSimChain,
} from '../../src/sim/snp/index.js';

let chain: SimChain;
let server: Server;
let base = '';
const hits: string[] = [];
/** 'missing': every VCEK is a 404 (a made-up CHIP_ID); 'real': the simulator's VCEK for any URL. */
let mode: 'missing' | 'real' = 'missing';

before(async () => {
  chain = await sharedSimChain('Milan');
  server = createServer((req, res) => {
    hits.push(req.url ?? '');
    if (req.url?.includes('/cert_chain')) {
      res
        .writeHead(200)
        .end(encodePem('CERTIFICATE', chain.ask.der) + encodePem('CERTIFICATE', chain.ark.der));
      return;
    }
    if (mode === 'missing') res.writeHead(404).end();
    else res.writeHead(200).end(Buffer.from(chain.vcek.der));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  await new Promise<void>((r) => server.close(() => r()));
});

/** A signed simulator report with its CHIP_ID (offset 0x1A0, 64 bytes) replaced: the signature no longer holds. */
function forgedReport(fw: SimSnpFirmware, chipId: Uint8Array): Uint8Array {
  const report = new Uint8Array(fw.getReport(new Uint8Array(64)).report);
  report.set(chipId, 0x1a0);
  return report;
}

function reasonOf(e: unknown): string {
  assert.ok(e instanceof AttestationError, String(e));
  assert.equal(e.code, ErrorCode.CollateralUnavailable);
  return e.reason;
}

describe('KDS fetch budget', () => {
  it('a flood of unsigned reports with fresh CHIP_IDs costs KDS at most the budget', async () => {
    hits.length = 0;
    mode = 'missing';
    let clock = 1_000_000;
    const kds = new KdsClient({
      baseUrl: base,
      minIntervalMs: 0,
      now: () => clock,
      sleep: async () => undefined,
      budget: { vcekFetches: 5, windowMs: 60_000, negativeTtlMs: 600_000 },
    });
    const fw = new SimSnpFirmware(chain, {
      measurement: SIM_DEFAULT_MEASUREMENT,
      policy: SIM_DEFAULT_POLICY,
      hostData: new Uint8Array(32),
    });
    const reasons = new Map<string, number>();
    for (let i = 0; i < 100; i++) {
      const report = forgedReport(fw, randomBytes(64));
      const r = await verifySnpAttestation({ report }, { now: new Date(), getter: kds }).then(
        () => 'accepted',
        reasonOf,
      );
      reasons.set(r, (reasons.get(r) ?? 0) + 1);
    }
    const vcekHits = hits.filter((h) => h.includes('/vcek/v1/') && !h.includes('cert_chain'));
    assert.equal(vcekHits.length, 5, 'KDS saw exactly the budget');
    assert.deepEqual(Object.fromEntries(reasons), { 'kds.not_found': 5, 'kds.fetch_budget': 95 });

    // The window slides: once it has passed, the budget is available again (and only the budget).
    clock += 60_000;
    hits.length = 0;
    for (let i = 0; i < 10; i++) {
      await kds.getVcek('Milan', randomBytes(64), 0n).catch(reasonOf);
    }
    assert.equal(hits.length, 5);
  });

  it('a CHIP_ID KDS refused is answered from the negative cache until the TTL passes', async () => {
    hits.length = 0;
    mode = 'missing';
    let clock = 5_000_000;
    const kds = new KdsClient({
      baseUrl: base,
      minIntervalMs: 0,
      now: () => clock,
      budget: { vcekFetches: 100, negativeTtlMs: 1_000 },
    });
    const chip = randomBytes(64);
    for (let i = 0; i < 20; i++) {
      assert.equal(await kds.getVcek('Milan', chip, 0n).catch(reasonOf), 'kds.not_found');
    }
    assert.equal(hits.length, 1, 'one request, then the negative cache');
    clock += 1_000;
    mode = 'real';
    // After the TTL KDS is asked again (here it answers a VCEK that is not the one asked for).
    assert.equal(await kds.getVcek('Milan', chip, 0n).catch(reasonOf), 'kds.bad_response');
    assert.equal(hits.length, 2);
    assert.equal(await kds.getVcek('Milan', chip, 0n).catch(reasonOf), 'kds.bad_response');
    assert.equal(hits.length, 2, 'a bad response is remembered too');
  });

  it('a spent budget does not block chains, CRLs or VCEKs already cached', async () => {
    hits.length = 0;
    mode = 'real';
    const kds = new KdsClient({
      baseUrl: base,
      minIntervalMs: 0,
      now: () => 0,
      budget: { vcekFetches: 1 },
    });
    const fw = new SimSnpFirmware(chain, {
      measurement: SIM_DEFAULT_MEASUREMENT,
      policy: SIM_DEFAULT_POLICY,
      hostData: new Uint8Array(32),
    });
    const report = parseReport(fw.getReport(new Uint8Array(64)).report);
    await kds.getVcekForReport(report, 'Milan');
    assert.equal(await kds.getVcek('Milan', randomBytes(64), 0n).catch(reasonOf), 'kds.fetch_budget');
    await kds.getVcekForReport(report, 'Milan');
    await kds.getCertChain('Milan', 'vcek');
    assert.equal(hits.filter((h) => h.includes('cert_chain')).length, 1);
  });

  it('refuses a negative budget option', () => {
    assert.throws(
      () => new KdsClient({ budget: { vcekFetches: -1 } }),
      (e: unknown) => e instanceof AttestationError && e.reason === 'kds.options',
    );
  });
});
