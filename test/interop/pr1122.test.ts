/**
 * svsm PR #1122's real aproxy (aproxy-pr1122) between the guest library's PR #1122 dialect and Vouchsafe's
 * KBS, in both of its --protocol modes: `kbs` (SHA-512 RawBinary, `snp-report` evidence) and `kbs-trustee`
 * (SHA-384 JwsJson; the aproxy posts Trustee's sev-crate struct form of the report, which the KBS decodes
 * with src/formats/snp/sev-json.ts).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { bootGuest, simulatorReportProvider } from '../../src/guest/index.js';
import { type KbsTestEnv, startKbs } from '../kbs/harness.js';
import { startRealAproxy } from './real-aproxy.js';

let dir: string;
let env: KbsTestEnv;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vouchsafe-pr1122-'));
  env = await startKbs({ withCertSource: true });
});
after(async () => {
  await env?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('aproxy-pr1122 (svsm PR #1122) with the guest library and our KBS', () => {
  for (const protocol of ['kbs', 'kbs-trustee'] as const) {
    it(`--protocol ${protocol}: the PR #1122 guest gets its key twice (first boot, then unseal)`, async () => {
      const { instance, firmware } = await env.launch();
      const provider = simulatorReportProvider({
        getReport: (rd) => ({ report: firmware.getReport(rd).report }),
      });
      const aproxy = await startRealAproxy('aproxy-pr1122', {
        url: env.base,
        protocol,
        socket: join(dir, `${protocol}.sock`),
      });
      try {
        const statePath = join(dir, `${protocol}.state`);
        const connect = `unix:${aproxy.socket}`;
        const first = await bootGuest({ connect, provider, statePath, dialect: 'pr1122' });
        assert.equal(first.firstBoot, true);
        await env.broker.resetBoot(instance.id, 'test: VM stopped');
        const second = await bootGuest({ connect, provider, statePath, dialect: 'pr1122' });
        assert.deepEqual(second.state, first.state);
        assert.equal(second.counter, 2n);
      } catch (e) {
        throw new Error(`aproxy-pr1122 stderr: ${aproxy.stderr().slice(0, 800)}`, { cause: e });
      } finally {
        await aproxy.stop();
      }
    });
  }
});
