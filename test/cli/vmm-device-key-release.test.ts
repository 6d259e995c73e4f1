/**
 * The commands a host without vsock runs (docs/pvchannel.md §7.4): serve, proxy, `vmm-device --features
 * key-release,uefi-variables`, and `guest boot --connect pvchannel:SOCKET` twice (boot, reboot with the same
 * state); a refusal keeps its code through the channel; --help names where variables live and where
 * KEY_RELEASE goes.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { SIM_DEFAULT_MEASUREMENT } from '../../src/sim/snp/index.js';
import { toHex } from '../../src/util/bytes.js';
import { cliScratch, freePort, registerInstance, runCli, simInit } from './run-cli.js';

const { tmp, daemon } = cliScratch('vs-vmmdev-cli-');

it('vmm-device --help names the variable file and the KEY_RELEASE proxy', async () => {
  const h = await runCli(['vmm-device', '--help']);
  assert.equal(h.code, 0);
  assert.match(h.stdout, /--uefi-vars <file>/);
  assert.match(h.stdout, /--key-release-proxy <address>/);
  const missing = await runCli(['vmm-device', '--socket', join(tmp, 'x.sock'), '--features', 'key-release']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /--key-release-proxy/);
});

it('guest boot over pvchannel: boot and reboot with the state, no vsock; a rollback is still broker.rollback', async () => {
  const sim = join(tmp, 'sim');
  const data = join(tmp, 'data');
  const pin = await simInit(sim);
  const port = await freePort();
  await daemon(
    ['serve', '--listen', `127.0.0.1:${port}`, '--data', data, '--trust-sim-root', pin, '--no-kds'],
    /broker listening/,
  );
  const broker = `http://127.0.0.1:${port}`;
  const policy = join(tmp, 'policy.json');
  writeFileSync(policy, JSON.stringify({ measurements: [toHex(SIM_DEFAULT_MEASUREMENT)] }));
  const api = ['--broker', broker, '--token-file', join(data, 'admin-token')];
  const instance = await registerInstance(api, { instanceId: '43', name: 'vm2', policy });
  const aproxy = join(tmp, 'aproxy.sock');
  await daemon(['proxy', '--listen', `unix:${aproxy}`, '--broker', broker], /listening/i);
  const dev = join(tmp, 'vmm-device.sock');
  const vars = join(tmp, 'vm2.vars');
  await daemon(
    [
      'vmm-device',
      '--socket',
      dev,
      '--features',
      'key-release,uefi-variables',
      '--key-release-proxy',
      `unix:${aproxy}`,
      '--uefi-vars',
      vars,
    ],
    /vmm-device listening/,
  );

  const state = join(tmp, 'vm2.state');
  const boot = [
    'guest',
    'boot',
    '--connect',
    `pvchannel:${dev}`,
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
  const first = await runCli(boot);
  assert.equal(first.code, 0, first.stderr || first.stdout);
  assert.equal(JSON.parse(first.stdout).firstBoot, true);
  assert.equal(JSON.parse(first.stdout).brokerVerified, true);
  copyFileSync(state, `${state}.v1`);
  const second = await runCli(boot);
  assert.equal(second.code, 0, second.stderr || second.stdout);
  assert.equal(JSON.parse(second.stdout).firstBoot, false);
  assert.equal(JSON.parse(second.stdout).counter, '2');
  assert.equal(existsSync(vars), false, 'no variable was set, so no variable file was written');

  copyFileSync(`${state}.v1`, state);
  const rolled = await runCli(boot);
  assert.equal(rolled.code, 1);
  assert.equal(JSON.parse(rolled.stdout).error.reason, 'broker.rollback');
});
