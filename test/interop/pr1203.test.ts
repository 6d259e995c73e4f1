/**
 * svsm PR #1203's real aproxy (aproxy-pr1203, an HTTP forwarder) between the guest library's PR #1203 dialect (which speaks KBS 0.4.0 and opens the JWE itself) and Vouchsafe's
 * KBS, in both of its --protocol modes: `kbs` (ConfigResponse `sha512` RawBinary) and `kbs-trustee` (`sha384`
 * JwsJson). The aproxy forwards auth, attest and the resource GET; the guest binds and decrypts. Both
 * evidence forms the guest can post: `{"Snp":{"report"}}` (the default, what the PR's SVSM sends) and
 * `{"snp-report","certs-buf"}`.
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
  dir = await mkdtemp(join(tmpdir(), 'vouchsafe-pr1203-'));
  env = await startKbs({ withCertSource: true });
});
after(async () => {
  await env?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('aproxy-pr1203 (svsm PR #1203) with the guest library and our KBS', () => {
  for (const protocol of ['kbs', 'kbs-trustee'] as const) {
    for (const spelling of ['svsm-pr1203', 'snp-report'] as const) {
      it(`--protocol ${protocol}, evidence ${spelling}: the PR #1203 guest gets its key twice (first boot, then unseal)`, async () => {
        const { instance, firmware } = await env.launch();
        const provider = simulatorReportProvider({
          getReport: (rd) => ({ report: firmware.getReport(rd).report }),
        });
        const aproxy = await startRealAproxy('aproxy-pr1203', {
          url: env.base,
          protocol,
          socket: join(dir, `${protocol}-${spelling}.sock`),
        });
        try {
          const statePath = join(dir, `${protocol}-${spelling}.state`);
          const connect = `unix:${aproxy.socket}`;
          // The default is the PR's own form: leave it unset to test the default.
          const o = {
            connect,
            provider,
            statePath,
            dialect: 'pr1203' as const,
            ...(spelling === 'snp-report' ? { evidenceSpelling: spelling } : {}),
          };
          const first = await bootGuest(o);
          assert.equal(first.firstBoot, true);
          await env.broker.resetBoot(instance.id, 'test: VM stopped');
          const second = await bootGuest(o);
          assert.deepEqual(second.state, first.state);
          assert.equal(second.counter, 2n);
        } catch (e) {
          throw new Error(`aproxy-pr1203 stderr: ${aproxy.stderr().slice(0, 800)}`, { cause: e });
        } finally {
          await aproxy.stop();
        }
      });
    }
  }
});
