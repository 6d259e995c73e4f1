/**
 * The guest errors on which COCONUT's unmodified aproxy exits (test/interop/aproxy-0.1.0-guest-errors.ts,
 * checked against the real binary in test/interop/aproxy-0.1.0.test.ts) must not stop Vouchsafe's proxy:
 * one guest's bad input ends that guest's session only. After each row, on the same running proxy, another
 * guest speaking 0.1.0 still gets its key (docs/protocol.md §3.1).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { bootGuest, simulatorReportProvider } from '../../src/guest/index.js';
import { SEALING_KEY_PATH } from '../../src/kbs/index.js';
import { KbsProxyBackend } from '../../src/proxy/backends/kbs/index.js';
import { type RunningProxy, startProxy } from '../../src/proxy/index.js';
import { sharedSimChain } from '../../src/sim/snp/index.js';
import { GUEST_ERRORS } from '../interop/aproxy-0.1.0-guest-errors.js';
import { type KbsBrokerStack, startKbsBroker } from '../kbs/broker-stack.js';
import { simKds } from '../kbs/harness.js';
import { RawClient } from './raw-client.js';

let s: KbsBrokerStack;
let proxy: RunningProxy;

before(async () => {
  s = await startKbsBroker({ kds: simKds(await sharedSimChain('Milan')) });
  proxy = await startProxy({
    listen: `unix:${join(s.dir, 'proxy.sock')}`,
    backend: new KbsProxyBackend({ url: s.b.url, resourcePath: SEALING_KEY_PATH }),
    logger: pino({ level: 'silent' }),
    timeouts: { readMs: 5000, backendMs: 10_000, sessionMs: 20_000 },
    closeGraceMs: 100,
  });
});
after(async () => {
  await proxy?.close();
  await s?.close();
});

describe("Vouchsafe's proxy survives every guest error that makes aproxy exit", () => {
  let n = 0;
  for (const c of GUEST_ERRORS) {
    it(`${c.name} (aproxy ${c.aproxyExits ? 'exits' : 'survives'}): the session ends, the proxy serves the next guest`, async () => {
      const inst = await s.register();
      const client = await RawClient.connect(proxy.address);
      await c.drive(client, s.firmware(inst.hostData));
      // The bad session ends (the proxy hangs up or answers and the row hangs up); it does not linger.
      client.end();
      await client.closed(10_000);
      const fw = s.firmware(inst.hostData);
      const r = await bootGuest({
        connect: proxy.address,
        provider: simulatorReportProvider({ getReport: (rd) => ({ report: fw.getReport(rd).report }) }),
        statePath: join(s.dir, `guest-${++n}.state`),
        version: '0.1.0',
        timeoutMs: 10_000,
      });
      assert.equal(r.firstBoot, true);
    });
  }
});
