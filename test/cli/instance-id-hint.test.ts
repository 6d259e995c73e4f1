/**
 * `vouchsafe instance show 43` (the compiled CLI): an id the broker does not know that looks like a GCE
 * instance id (all digits) gets a hint — the broker id of the instance registered with that GCE id, or that
 * these commands take the broker's id — over the admin API and on the data directory; the code and reason
 * stay `broker.instance_not_found`. Any other unknown id gets no hint.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { type RunningBroker, startBroker } from '../../src/api/index.js';
import { assertDistBuilt } from '../helpers/dist.js';
import { registerInstance, runCli } from './run-cli.js';

describe('instance show <GCE instance id>: a hint to the broker id', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vouchsafe-id-hint-'));
  let broker: RunningBroker;
  let api: string[];
  let brokerId: string;
  before(async () => {
    assertDistBuilt();
    broker = await startBroker({
      listen: '127.0.0.1:0',
      dataDir: join(dir, 'data'),
      kds: 'none',
      logger: pino({ level: 'silent' }),
    });
    api = ['--broker', broker.url, '--token-file', broker.adminTokenPath];
    const policy = join(dir, 'policy.json');
    writeFileSync(policy, JSON.stringify({ measurements: ['ab'.repeat(48)] }));
    brokerId = (await registerInstance(api, { instanceId: '43', name: 'vm43', policy })).id;
    assert.notEqual(brokerId, '43');
  });
  after(async () => {
    await broker?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('names the broker id of the instance with that GCE id (admin API and --json)', async () => {
    const r = await runCli(['instance', 'show', '43', ...api]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /broker\.instance_not_found/);
    assert.ok(r.stderr.includes(`broker id ${brokerId}`), r.stderr);
    assert.ok(r.stderr.includes(`vouchsafe instance show ${brokerId}`), r.stderr);
    const j = await runCli(['instance', 'show', '43', ...api, '--json']);
    const body = JSON.parse(j.stdout || j.stderr);
    const err = body.error ?? body;
    assert.equal(err.reason, 'broker.instance_not_found');
    assert.match(err.message, new RegExp(`broker id ${brokerId}`));
    // The broker id itself works.
    const ok = await runCli(['instance', 'show', brokerId, ...api, '--json']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(JSON.parse(ok.stdout).instanceId, '43');
  });

  it('on the data directory too (no broker process asked)', async () => {
    const r = await runCli(['instance', 'show', '43', '--data', broker.dataDir]);
    assert.notEqual(r.code, 0);
    assert.ok(r.stderr.includes(`broker id ${brokerId}`), r.stderr);
  });

  it('the same hint for the other <id> commands', async () => {
    const r = await runCli(['instance', 'reset-boot', '43', ...api]);
    assert.notEqual(r.code, 0);
    assert.ok(r.stderr.includes(`broker id ${brokerId}`), r.stderr);
  });

  it('digits no instance has: says the commands take the broker id; other ids: no hint', async () => {
    const r = await runCli(['instance', 'show', '4711', ...api]);
    assert.match(r.stderr, /looks like a GCE instance id/);
    const other = await runCli(['instance', 'show', 'no-such-id', ...api]);
    assert.match(other.stderr, /broker\.instance_not_found/);
    assert.doesNotMatch(other.stderr, /GCE/);
  });
});
