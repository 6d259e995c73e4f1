/**
 * `vouchsafe serve`, `instance`, `audit` and `proxy` as processes (through test/api/cli-harness.ts, as
 * src/cli/main.ts will run them): over the admin API and directly on a data directory.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { type RunningBroker, startBroker } from '../../src/api/index.js';

const harness = fileURLToPath(new URL('./cli-harness.ts', import.meta.url));

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--import', 'tsx', harness, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c) => (stdout += c));
    p.stderr.on('data', (c) => (stderr += c));
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Starts a long-running command and resolves once its stderr matches `ready`. */
function startLong(
  args: string[],
  ready: RegExp,
): Promise<{ p: ChildProcess; match: RegExpMatchArray; stderr: () => string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', harness, ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    const timer = setTimeout(() => reject(new Error(`not ready: ${stderr}`)), 20_000);
    p.stderr!.on('data', (c) => {
      stderr += c;
      const m = ready.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolve({ p, match: m, stderr: () => stderr });
      }
    });
    p.on('close', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited ${code}: ${stderr}`));
    });
  });
}

const exited = (p: ChildProcess) =>
  new Promise<number | string | null>((r) => p.once('close', (code, signal) => r(code ?? signal)));

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
    const reg = await run([
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

    const list = await run(['instance', 'list', '--data', data, '--json']);
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual(
      JSON.parse(list.stdout).map((i: { id: string }) => i.id),
      [inst.id],
    );

    const show = await run(['instance', 'show', inst.id, ...api]);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, new RegExp(`HOST_DATA: +${inst.hostData}`));

    const local = await run([
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
    const bad = await run([
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
    const noData = await run(['instance', 'list', '--data', join(dir, 'nowhere')]);
    assert.equal(noData.code, 2);
    assert.match(noData.stderr, /admin\.data_dir/);
    const both = await run(['instance', 'list', '--data', data, '--broker', broker.url]);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /cli\.target/);
    writeFileSync(join(dir, 'wrong-token'), 'w'.repeat(64), { mode: 0o600 });
    const wrong = await run([
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
    const viaApi = await run([
      'audit',
      'verify',
      '--broker',
      broker.url,
      '--token-file',
      broker.adminTokenPath,
    ]);
    assert.equal(viaApi.code, 0, viaApi.stderr);
    assert.match(viaApi.stdout, /audit chain intact: \d+ entries, head [0-9a-f]{64}/);
    const show = await run(['audit', 'show', '--data', data, '--limit', '1']);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /^1\t.*\tregister\taccept\t/);
    // Someone with write access to the database edits an entry (bypassing the append-only trigger).
    const db = new Database(join(data, 'vouchsafe.db'));
    db.exec('DROP TRIGGER audit_log_no_update');
    db.prepare('UPDATE audit_log SET reasons = \'["broker.forged"]\' WHERE seq = 1').run();
    db.close();
    const broken = await run(['audit', 'verify', '--data', data, '--json']);
    assert.equal(broken.code, 1);
    assert.deepEqual(JSON.parse(broken.stdout), { ok: false, entries: 0, seq: 1, problem: 'audit.hash' });
  });

  it('serve starts a broker (creating its data dir) and stops on SIGTERM; proxy relays to it', async () => {
    const d2 = join(dir, 'served');
    const s = await startLong(
      ['serve', '--listen', '127.0.0.1:0', '--data', d2, '--no-kds', '--log-level', 'warn'],
      /listening on (http:\/\/127\.0\.0\.1:\d+)/,
    );
    try {
      const url = s.match[1]!;
      assert.deepEqual(await (await fetch(`${url}/healthz`)).json(), { status: 'ok' });
      assert.match(s.stderr(), /broker-signing-key\.pem\.pub/);
      const sock = join(dir, 'proxy.sock');
      const p = await startLong(
        ['proxy', '--listen', `unix:${sock}`, '--broker', url, '--log-level', 'warn'],
        /proxy listening on unix:/,
      );
      p.p.kill('SIGTERM');
      assert.equal(await exited(p.p), 0, p.stderr());
    } finally {
      s.p.kill('SIGTERM');
      assert.equal(await exited(s.p), 0, s.stderr());
    }
  });

  it('--help shows examples', async () => {
    for (const cmd of [['serve'], ['instance', 'register'], ['audit', 'verify'], ['proxy']]) {
      const r = await run([...cmd, '--help']);
      assert.equal(r.code, 0);
      assert.match(r.stdout, /Examples?:/, cmd.join(' '));
    }
  });
});
