/**
 * AMD CRLs in a started broker (src/api/start.ts, src/collateral/crl-keeper.ts): checked by default when KDS is
 * configured, from the cache, refreshed by the keeper before nextUpdate (triggered here, never waited for),
 * a stale CRL refused unless within the operator's grace, and an offline cache serving the CRL it holds.
 * KDS is a loopback stand-in serving the simulator chain's CRLs; the broker's clock is injected.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import type { StartBrokerOptions } from '../../src/api/index.js';
import { KdsClient } from '../../src/collateral/kds-client.js';
import { createCrl, type SimChain, sharedSimChain } from '../../src/sim/snp/index.js';
import { type FakeKds, startFakeKds } from '../kbs/fake-kds.js';
import { startTestBroker, type TestBroker } from './helpers.js';

const DAY = 86_400_000;

describe('AMD CRLs checked by default', () => {
  let chain: SimChain;
  let kds: FakeKds;
  let dir: string;
  const logs: string[] = [];
  let askSerial: bigint;
  // The broker's clock starts once the chain exists: the chain's certificates are valid from the second
  // they were made in (X.509 times have no fractions), so a clock read before it could fall just before
  // their notBefore and refuse the root (a race on a second boundary, seen under a loaded CI run).
  let t0 = 0;
  let t = 0;
  /** The revoked CRL's nextUpdate. */
  let revokedNext: Date;

  before(async () => {
    chain = await sharedSimChain('Milan');
    t0 = Date.now();
    t = t0;
    revokedNext = new Date(t0 + 2 * 365 * DAY);
    askSerial = BigInt(`0x${new X509Certificate(Buffer.from(chain.ask.der)).serialNumber}`);
    kds = await startFakeKds(chain);
    dir = mkdtempSync(join(tmpdir(), 'vouchsafe-crl-'));
  });
  after(async () => {
    await kds.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const start = (o: Partial<StartBrokerOptions>) =>
    startTestBroker({
      dataDir: join(dir, 'data'),
      // What `kds: { baseUrl }` builds, without the 10 s per-URL throttle (the refresh re-asks the same URL).
      kds: new KdsClient({
        baseUrl: kds.url,
        cacheDir: join(dir, 'data', 'kds-cache'),
        minIntervalMs: 0,
        now: () => t,
      }),
      crl: undefined, // the default
      now: () => t,
      logger: pino({ level: 'info' }, { write: (s: string) => void logs.push(s) }),
      ...o,
    });
  const attest = async (k: TestBroker) => {
    const inst = await k.register();
    return k.call('POST', '/v1/attest', (await k.attestBody(k.firmware(inst.hostData))).body);
  };

  it('fetches and checks the CRL; the keeper refresh replaces it; a revoked ASK is refused; a stale CRL is refused', async () => {
    const k = await start({});
    try {
      assert.ok(k.b.crl, 'revocation is checked without any option');
      const ok = await attest(k);
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      assert.ok(kds.served.includes('/vcek/v1/Milan/crl'));

      // Not due yet (a year before nextUpdate): the refresh asks nothing.
      const before = kds.served.length;
      assert.deepEqual(await k.b.crl.refresh(), { refreshed: 0, failed: 0 });
      assert.equal(kds.served.length, before);

      // KDS publishes a CRL revoking the ASK; within the lead of the old one's nextUpdate the refresh fetches it.
      kds.setCrl(
        await createCrl(chain, {
          revokedSerials: [askSerial],
          thisUpdate: new Date(t0),
          nextUpdate: revokedNext,
        }),
      );
      t = t0 + 365 * DAY - 60 * 60_000;
      assert.deepEqual(await k.b.crl.refresh(), { refreshed: 1, failed: 0 });
      const revoked = await attest(k);
      assert.equal(revoked.status, 403, JSON.stringify(revoked.body));
      assert.deepEqual(
        [revoked.body.code, revoked.body.reason],
        ['ERR_CHAIN_INVALID', 'snp.intermediate_revoked'],
      );

      // KDS fails and the CRL in hand passes its nextUpdate: refused as missing collateral, not as revoked.
      kds.setCrl(null);
      t = revokedNext.getTime() + 60_000;
      const stale = await attest(k);
      assert.equal(stale.status, 503, JSON.stringify(stale.body));
      assert.deepEqual(
        [stale.body.code, stale.body.reason],
        ['ERR_COLLATERAL_UNAVAILABLE', 'api.collateral.crl_stale'],
      );
      assert.deepEqual(await k.b.crl.refresh(), { refreshed: 0, failed: 1 });
      assert.ok(logs.some((l) => l.includes('"event":"crl_refresh_failed"')));
    } finally {
      await k.close();
    }
  });

  it('with a grace period, the stale CRL is still used while KDS is down (after a restart, from the cache)', async () => {
    t = revokedNext.getTime() + 60 * 60_000;
    const k = await start({ crlGraceMs: 2 * 60 * 60_000 });
    try {
      const r = await attest(k);
      // The cached CRL is past nextUpdate but within the grace: it is checked, and still revokes the ASK.
      assert.equal(r.status, 403, JSON.stringify(r.body));
      assert.equal(r.body.reason, 'snp.intermediate_revoked');
      assert.ok(logs.some((l) => l.includes('"event":"crl_grace"')));
    } finally {
      await k.close();
    }
  });

  it('offline, the cached CRL is served without asking KDS', async () => {
    t = t0 + DAY;
    const served = kds.served.length;
    const k = await start({ kds: { baseUrl: kds.url, offline: true } });
    try {
      const r = await attest(k);
      assert.equal(r.status, 403, JSON.stringify(r.body));
      assert.equal(r.body.reason, 'snp.intermediate_revoked');
      assert.equal(kds.served.length, served);
    } finally {
      await k.close();
    }
  });

  it('opting out (crl: none) is logged at warn and checks nothing', async () => {
    const k = await start({ crl: 'none', dataDir: join(dir, 'none') });
    try {
      assert.equal(k.b.crl, undefined);
      const line = logs.find((l) => l.includes('"event":"crl_off"'));
      assert.ok(line);
      assert.equal(JSON.parse(line).level, 40);
      assert.equal((await attest(k)).status, 200);
    } finally {
      await k.close();
    }
  });
});
