/**
 * COCONUT-SVSM's own host proxy, unmodified (../shared/tools/aproxy/aproxy: svsm main f4bc4bcd, protocol
 * 0.1.0, `--protocol kbs`), in front of the broker as the product starts it (startBroker, the KBS on, with
 * `aproxyResourcePath` because aproxy fetches only default/sample/test). The guest library speaks 0.1.0 like
 * an SVSM: a report and no certificate table, so the broker fetches the VCEK from a loopback KDS.
 *
 * Also: what the real aproxy does on guest errors (it exits; docs/protocol.md §3.1), observed, with the same
 * inputs sent to Vouchsafe's proxy in test/proxy/aproxy-exits.test.ts.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { bootGuest, simulatorReportProvider } from '../../src/guest/index.js';
import { KbsProxyBackend } from '../../src/proxy/backends/kbs/index.js';
import { startProxy } from '../../src/proxy/index.js';
import { type SimSnpFirmware, sharedSimChain } from '../../src/sim/snp/index.js';
import { type KbsBrokerStack, startKbsBroker } from '../kbs/broker-stack.js';
import { type FakeKds, startFakeKds } from '../kbs/fake-kds.js';
import { RawClient } from '../proxy/raw-client.js';
import { GUEST_ERRORS } from './aproxy-0.1.0-guest-errors.js';
import { type RealAproxy, startRealAproxy } from './real-aproxy.js';

const svsm = (fw: SimSnpFirmware) =>
  simulatorReportProvider({ getReport: (rd) => ({ report: fw.getReport(rd).report }) });

let s: KbsBrokerStack;
let kds: FakeKds;
let aproxy: RealAproxy | undefined;
let n = 0;

before(async () => {
  kds = await startFakeKds(await sharedSimChain('Milan'));
  s = await startKbsBroker({ kds: { baseUrl: kds.url }, kbs: { aproxyResourcePath: true } });
});
after(async () => {
  await aproxy?.stop();
  await s?.close();
  await kds?.close();
});

async function freshAproxy(): Promise<RealAproxy> {
  await aproxy?.stop();
  aproxy = await startRealAproxy('aproxy', {
    url: s.b.url,
    protocol: 'kbs',
    socket: join(s.dir, `aproxy-${++n}.sock`),
  });
  return aproxy;
}

/** Runs `fn`, adding aproxy's stderr to a failure (its only account of what went wrong). */
async function explained<T>(a: RealAproxy, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    const audit = await s.admin('GET', '/v1/admin/audit?limit=1000');
    const last = audit.body.entries?.slice(-3);
    throw new Error(`aproxy stderr: ${a.stderr().slice(0, 800)}; last audit: ${JSON.stringify(last)}`, {
      cause: e,
    });
  }
}

describe('the unmodified aproxy (0.1.0) with the guest library and startBroker', () => {
  it('releases the key; reboots within the lease (each a new launch) boot at once; state sealed through aproxy opens through our proxy and back', async () => {
    const a = await freshAproxy();
    const inst = await s.register();
    const statePath = join(s.dir, 'svsm.state');
    const boot = (connect: string, fw: SimSnpFirmware) =>
      bootGuest({ connect, provider: svsm(fw), statePath, version: '0.1.0', timeoutMs: 10_000 });

    const viaAproxy = `unix:${a.socket}`;
    const first = await explained(a, () => boot(viaAproxy, s.firmware(inst.hostData)));
    assert.equal(first.firstBoot, true);
    assert.ok(
      kds.served.some((p) => p.endsWith('/cert_chain')),
      'the VCEK chain came from the KDS',
    );

    // Three reboots inside the 5-minute lease, each a fresh launch with its own REPORT_ID.
    const reportIds = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const fw = s.firmware(inst.hostData);
      const again = await explained(a, () => boot(viaAproxy, fw));
      assert.equal(again.firstBoot, false);
      assert.deepEqual(again.state, first.state);
      reportIds.add(
        Buffer.from(fw.getReport(new Uint8Array(64)).report.subarray(0x140, 0x160)).toString('hex'),
      );
    }
    assert.equal(reportIds.size, 3, 'each launch has its own REPORT_ID');

    // The same state file opens through Vouchsafe's own proxy (KBS backend) ...
    const ours = await startProxy({
      listen: `unix:${join(s.dir, 'ours.sock')}`,
      backend: new KbsProxyBackend({ url: s.b.url }),
      logger: pino({ level: 'silent' }),
      timeouts: { readMs: 5000, backendMs: 10_000, sessionMs: 20_000 },
      closeGraceMs: 100,
    });
    try {
      const viaOurs = await boot(ours.address, s.firmware(inst.hostData));
      assert.deepEqual(viaOurs.state, first.state);
    } finally {
      await ours.close();
    }
    // ... and back through aproxy.
    const back = await explained(a, () => boot(viaAproxy, s.firmware(inst.hostData)));
    assert.deepEqual(back.state, first.state);

    // Every release was the broker's decision: a new launch during the live lease took over.
    const audit = await s.admin('GET', '/v1/admin/audit?limit=1000');
    const mine = audit.body.entries.filter((e: { instance: string }) => e.instance === inst.id);
    assert.deepEqual(
      mine.map((e: { kind: string; decision: string }) => `${e.kind}:${e.decision}`),
      ['register:accept', ...Array(6).fill('release:accept')],
    );
  });
});

describe('what the unmodified aproxy does on guest errors (observed; docs/protocol.md)', () => {
  for (const c of GUEST_ERRORS) {
    it(`${c.name}: ${c.aproxyExits ? 'exits with status 1' : 'keeps running'}`, {
      timeout: 60_000,
    }, async () => {
      const a = await freshAproxy();
      const inst = await s.register();
      const fw = s.firmware(inst.hostData);
      const client = await RawClient.connect(`unix:${a.socket}`);
      await c.drive(client, fw);
      if (c.aproxyExits) {
        assert.equal(await a.exited, 1, a.stderr());
      } else {
        // Still serving: a well-formed guest boots through it afterwards.
        const r = await explained(a, () =>
          bootGuest({
            connect: `unix:${a.socket}`,
            provider: svsm(s.firmware(inst.hostData)),
            statePath: join(s.dir, `err-${n}.state`),
            version: '0.1.0',
            timeoutMs: 10_000,
          }),
        );
        assert.equal(r.firstBoot, true);
      }
      client.socket.destroy();
    });
  }
});
