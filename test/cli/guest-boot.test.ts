import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { SIM_DEFAULT_MEASUREMENT } from '../../src/sim/snp/index.js';
import { toHex } from '../../src/util/bytes.js';
import { cliScratch, freePort, registerInstance, runCli, simInit } from './run-cli.js';

const { tmp, daemon } = cliScratch('vs-guest-cli-');

it('the commands a user runs: sim init, instance register, serve, proxy, guest boot, reboot, audit verify', async () => {
  const sim = join(tmp, 'sim');
  const data = join(tmp, 'data');
  const pin = await simInit(sim);

  const port = await freePort();
  await daemon(
    ['serve', '--listen', `127.0.0.1:${port}`, '--data', data, '--trust-sim-root', pin, '--no-kds'],
    /broker listening/,
  );
  const broker = `http://127.0.0.1:${port}`;
  const admin = ['--broker', broker, '--token-file', join(data, 'admin-token')];
  const policy = join(tmp, 'policy.json');
  writeFileSync(policy, JSON.stringify({ measurements: [toHex(SIM_DEFAULT_MEASUREMENT)] }));
  const instance = await registerInstance(admin, { instanceId: '42', name: 'vm1', policy });

  const sock = join(tmp, 'aproxy.sock');
  await daemon(['proxy', '--listen', `unix:${sock}`, '--broker', broker], /listening/i);

  const state = join(tmp, 'vm1.state');
  const boot = [
    'guest',
    'boot',
    '--connect',
    `unix:${sock}`,
    '--state',
    state,
    '--provider',
    'sim',
    '--sim-dir',
    sim,
    '--host-data',
    instance.hostData,
    '--broker-key',
    join(data, 'broker-signing-key.pem.pub'),
    '--json',
  ];
  // The first VM boots and keeps running (heartbeats), as a real SVSM would.
  const running = await daemon([...boot, '--hold', '--lease-ms', '60000'], /holding the boot lease/);
  const sealed = readFileSync(state);

  // The rule checked (docs/broker.md "Leases"): each `guest boot --provider sim` is a new launch with a fresh
  // REPORT_ID, as on hardware; a new launch while another holds a live lease follows the instance's
  // new-launch policy. Under the default, takeover, a copy would boot and supersede the first VM; under
  // refuse it is broker.clone. This instance is set to refuse (admin route, as the VMM's operator would).
  const nl = await fetch(`${broker}/v1/admin/instances/${instance.id}/new-launch`, {
    method: 'PUT',
    headers: {
      authorization: `Bearer ${readFileSync(join(data, 'admin-token'), 'utf8').trim()}`,
      'content-type': 'application/json',
    },
    body: JSON.stringify({ newLaunch: 'refuse' }),
  });
  assert.equal(nl.status, 200, await nl.text());
  const cloneState = join(tmp, 'clone.state');
  copyFileSync(state, cloneState);
  const clone = await runCli([...boot.slice(0, 5), cloneState, ...boot.slice(6)]);
  assert.equal(clone.code, 1, 'under refuse, a second launch while the first holds its lease is refused');
  assert.equal(JSON.parse(clone.stdout).error.reason, 'broker.clone');

  // The VM shuts down (SIGTERM ends its boot); the next boot is a reboot, not a clone.
  const exited = new Promise((done) => running.once('exit', done));
  running.kill('SIGTERM');
  await exited;
  const second = await runCli(boot);
  assert.equal(second.code, 0, second.stderr || second.stdout);
  const r = JSON.parse(second.stdout);
  assert.equal(r.firstBoot, false);
  assert.equal(r.counter, '2');
  assert.equal(r.brokerVerified, true);
  assert.notDeepEqual(readFileSync(state), sealed, 'the state file was re-sealed as version 2');

  const third = await runCli(boot);
  assert.equal(third.code, 0, 'without --hold the boot ends on exit, so rebooting needs no reset');
  assert.equal(JSON.parse(third.stdout).counter, '3');

  const audit = await runCli(['audit', 'verify', ...admin]);
  assert.equal(audit.code, 0, audit.stderr || audit.stdout);
});
