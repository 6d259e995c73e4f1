/**
 * `vouchsafe instance register --new-launch` and `instance set-new-launch` as processes (bin/vouchsafe.js),
 * over the admin API (PUT /v1/admin/instances/:id/new-launch) and directly on the data directory: the policy
 * is stored, shown, audited, and a value that is not a policy is a usage error (exit 2) that changes nothing.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { type RunningBroker, startBroker } from '../../src/api/index.js';
import { runCli } from '../cli/run-cli.js';

describe('vouchsafe instance: the new-launch policy', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vouchsafe-cli-new-launch-'));
  const data = join(dir, 'data');
  const policy = join(dir, 'policy.json');
  let broker: RunningBroker;
  let api: string[];
  before(async () => {
    writeFileSync(policy, JSON.stringify({ measurements: ['ab'.repeat(48)] }));
    broker = await startBroker({
      listen: '127.0.0.1:0',
      dataDir: data,
      kds: 'none',
      logger: pino({ level: 'silent' }),
    });
    api = ['--broker', broker.url, '--token-file', broker.adminTokenPath];
  });
  after(async () => {
    await broker?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const registerArgs = (id: string) => [
    'instance',
    'register',
    '--project',
    'p',
    '--zone',
    'z',
    '--instance-id',
    id,
    '--name',
    'vm',
    '--policy',
    policy,
  ];
  const stored = async (id: string) => (await broker.broker.getInstance(id))?.newLaunch;

  it('register --new-launch refuse over the admin API stores and prints it; the default is takeover', async () => {
    const r = await runCli([...registerArgs('nl-1'), '--new-launch', 'refuse', ...api, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const inst = JSON.parse(r.stdout);
    assert.equal(inst.newLaunch, 'refuse');
    assert.equal(await stored(inst.id), 'refuse');

    const d = await runCli([...registerArgs('nl-2'), ...api, '--json']);
    assert.equal(d.code, 0, d.stderr);
    assert.equal(JSON.parse(d.stdout).newLaunch, 'takeover');
  });

  it('register --new-launch allow on the data directory', async () => {
    const r = await runCli([...registerArgs('nl-3'), '--new-launch', 'allow', '--data', data]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /new launch: +allow/);
  });

  it('set-new-launch changes it over the API and on the data directory, audited; show prints it', async () => {
    const reg = await runCli([...registerArgs('nl-4'), ...api, '--json']);
    const { id } = JSON.parse(reg.stdout);

    const viaApi = await runCli(['instance', 'set-new-launch', id, 'refuse', ...api, '--json']);
    assert.equal(viaApi.code, 0, viaApi.stderr);
    assert.deepEqual(JSON.parse(viaApi.stdout), { ok: true, newLaunch: 'refuse' });
    assert.equal(await stored(id), 'refuse');

    const local = await runCli(['instance', 'set-new-launch', id, 'allow', '--data', data]);
    assert.equal(local.code, 0, local.stderr);
    assert.equal(await stored(id), 'allow');

    const show = await runCli(['instance', 'show', id, ...api]);
    assert.match(show.stdout, /new launch: +allow/);

    const audit = await broker.broker.readAudit(0, 1000);
    const sets = audit.filter((e) => e.kind === 'new_launch' && e.instance === id);
    assert.deepEqual(
      sets.map((e) => [e.decision, e.details.newLaunch]),
      [
        ['accept', 'refuse'],
        ['accept', 'allow'],
      ],
    );
  });

  it('a value that is not a policy, or an unknown id, is refused and changes nothing', async () => {
    const reg = await runCli([...registerArgs('nl-5'), ...api, '--json']);
    const { id } = JSON.parse(reg.stdout);
    const bad = await runCli(['instance', 'set-new-launch', id, 'sometimes', ...api]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /sometimes/);
    const badReg = await runCli([...registerArgs('nl-6'), '--new-launch', 'never', ...api]);
    assert.equal(badReg.code, 2);
    assert.equal(await stored(id), 'takeover');
    assert.equal((await broker.broker.listInstances()).filter((i) => i.instanceId === 'nl-6').length, 0);

    const unknown = await runCli(['instance', 'set-new-launch', 'no-such-id', 'refuse', ...api]);
    assert.equal(unknown.code, 2, unknown.stderr);
    assert.match(unknown.stderr, /broker\.instance_not_found/);
  });
});
