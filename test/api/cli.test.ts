/**
 * `vouchsafe serve`, `instance`, `audit` and `proxy` as processes (bin/vouchsafe.js): over the admin API
 * and directly on a data directory.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { type RunningBroker, startBroker } from '../../src/api/index.js';
import { exited, runCli, startCli } from '../cli/run-cli.js';

describe('vouchsafe CLI: serve, instance, audit, proxy', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vouchsafe-cli-'));
  const data = join(dir, 'data');
  const policy = join(dir, 'policy.json');
  let broker: RunningBroker;
  before(async () => {
    writeFileSync(policy, JSON.stringify({ measurements: ['ab'.repeat(48)] }));
    broker = await startBroker({
      listen: '127.0.0.1:0',
      dataDir: data,
      kds: 'none',
      logger: pino({ level: 'silent' }),
    });
  });
  after(async () => {
    await broker?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('instance register/list/show over the admin API and on the data directory', async () => {
    const api = ['--broker', broker.url, '--token-file', broker.adminTokenPath];
    const reg = await runCli([
      'instance',
      'register',
      '--project',
      'p',
      '--zone',
      'z',
      '--instance-id',
      'cli-1',
      '--name',
      'vm',
      '--policy',
      policy,
      ...api,
      '--json',
    ]);
    assert.equal(reg.code, 0, reg.stderr);
    const inst = JSON.parse(reg.stdout);
    assert.match(inst.hostData, /^[0-9a-f]{64}$/);

    const list = await runCli(['instance', 'list', '--data', data, '--json']);
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual(
      JSON.parse(list.stdout).map((i: { id: string }) => i.id),
      [inst.id],
    );

    const show = await runCli(['instance', 'show', inst.id, ...api]);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, new RegExp(`HOST_DATA: +${inst.hostData}`));

    const local = await runCli([
      'instance',
      'register',
      '--project',
      'p',
      '--zone',
      'z',
      '--instance-id',
      'cli-2',
      '--name',
      'vm2',
      '--policy',
      policy,
      '--data',
      data,
    ]);
    assert.equal(local.code, 0, local.stderr);
    assert.match(local.stdout, /HOST_DATA \(base64\): [A-Za-z0-9+/]{43}=/);
    assert.equal(
      (await broker.broker.listInstances()).length,
      2,
      'the running broker sees what was registered directly',
    );
  });

  it('fails with exit 2 and a stable reason for unusable input; 1 for a refused token', async () => {
    writeFileSync(join(dir, 'bad.json'), '{"measurements":["zz"]}');
    const bad = await runCli([
      'instance',
      'register',
      '--project',
      'p',
      '--zone',
      'z',
      '--instance-id',
      'x',
      '--name',
      'x',
      '--policy',
      join(dir, 'bad.json'),
      '--data',
      data,
    ]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /ERR_INVALID_ARGUMENT policy\.invalid/);
    const noData = await runCli(['instance', 'list', '--data', join(dir, 'nowhere')]);
    assert.equal(noData.code, 2);
    assert.match(noData.stderr, /admin\.data_dir/);
    const both = await runCli(['instance', 'list', '--data', data, '--broker', broker.url]);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /cli\.target/);
    writeFileSync(join(dir, 'wrong-token'), 'w'.repeat(64), { mode: 0o600 });
    const wrong = await runCli([
      'audit',
      'verify',
      '--broker',
      broker.url,
      '--token-file',
      join(dir, 'wrong-token'),
    ]);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /ERR_REFUSED api\.admin\.unauthorized/);
  });

  it('audit verify: 0 for an intact chain (API and data dir), 1 for a tampered one', async () => {
    const viaApi = await runCli([
      'audit',
      'verify',
      '--broker',
      broker.url,
      '--token-file',
      broker.adminTokenPath,
    ]);
    assert.equal(viaApi.code, 0, viaApi.stderr);
    assert.match(viaApi.stdout, /audit chain intact: \d+ entries, head [0-9a-f]{64}/);
    const show = await runCli(['audit', 'show', '--data', data, '--limit', '1']);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /^1\t.*\tregister\taccept\t/);
    // Someone with write access to the database edits an entry (bypassing the append-only trigger).
    const db = new Database(join(data, 'vouchsafe.db'));
    db.exec('DROP TRIGGER audit_log_no_update');
    db.prepare('UPDATE audit_log SET reasons = \'["broker.forged"]\' WHERE seq = 1').run();
    db.close();
    const broken = await runCli(['audit', 'verify', '--data', data, '--json']);
    assert.equal(broken.code, 1);
    assert.deepEqual(JSON.parse(broken.stdout), { ok: false, entries: 0, seq: 1, problem: 'audit.hash' });
  });

  it('serve starts a broker (creating its data dir) and stops on SIGTERM; proxy relays to it', async () => {
    const d2 = join(dir, 'served');
    const s = await startCli(
      ['serve', '--listen', '127.0.0.1:0', '--data', d2, '--no-kds', '--log-level', 'warn'],
      /listening on (http:\/\/127\.0\.0\.1:\d+)/,
    );
    try {
      const url = s.match[1]!;
      assert.deepEqual(await (await fetch(`${url}/healthz`)).json(), { status: 'ok' });
      assert.match(s.output(), /broker-signing-key\.pem\.pub/);
      const sock = join(dir, 'proxy.sock');
      const p = await startCli(
        ['proxy', '--listen', `unix:${sock}`, '--broker', url, '--log-level', 'warn'],
        /proxy listening on unix:/,
      );
      p.p.kill('SIGTERM');
      assert.equal(await exited(p.p), 0, p.output());
    } finally {
      s.p.kill('SIGTERM');
      assert.equal(await exited(s.p), 0, s.output());
    }
  });

  it('--help shows examples', async () => {
    for (const cmd of [['serve'], ['instance', 'register'], ['audit', 'verify'], ['proxy']]) {
      const r = await runCli([...cmd, '--help']);
      assert.equal(r.code, 0);
      assert.match(r.stdout, /Examples?:/, cmd.join(' '));
    }
  });
});
