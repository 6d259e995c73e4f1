/**
 * `vouchsafe serve` (KBS on) and `vouchsafe proxy --protocol kbs` as processes (bin/vouchsafe.js): a
 * 0.1.0 guest boots through them, the token
 * keys rotate with `vouchsafe token-keys rotate`, and both stop cleanly on SIGTERM.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { bootGuest, simulatorReportProvider } from '../../src/guest/index.js';
import {
  SIM_DEFAULT_MEASUREMENT,
  SIM_DEFAULT_POLICY,
  SimSnpFirmware,
  sharedSimChain,
} from '../../src/sim/snp/index.js';
import { fromHex, toHex } from '../../src/util/bytes.js';
import { exited, runCli, startCli } from '../cli/run-cli.js';

describe('vouchsafe serve + vouchsafe proxy --protocol kbs as processes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vouchsafe-kbs-cli-'));
  const data = join(dir, 'data');
  const running: ChildProcess[] = [];
  after(() => {
    for (const p of running) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('serve the KBS, relay a 0.1.0 guest through it, rotate the token key, stop on SIGTERM', async () => {
    const chain = await sharedSimChain('Milan');
    const s = await startCli(
      [
        'serve',
        '--listen',
        '127.0.0.1:0',
        '--data',
        data,
        '--no-kds',
        '--trust-sim-root',
        `Milan:${chain.rootSha256}`,
        '--kbs-aproxy-path',
        '--kbs-max-sessions',
        '20000',
        '--log-level',
        'warn',
      ],
      /KBS: +(http:\/\/127\.0\.0\.1:\d+)\/kbs\/v0 \(token issuer (\S+);[^\n]*\n[^\n]*token keys: +(in the store \(sqlite\)),/,
    );
    running.push(s.p);
    const url = s.match[1]!;
    assert.equal(s.match[2], url, 'the token issuer is the broker URL');
    assert.equal(s.match[3], 'in the store (sqlite)');
    assert.equal(
      existsSync(join(data, 'token-keys.json')),
      false,
      'no token key file: the keys are in the store',
    );
    assert.match(s.output(), /default\/sample\/test/);
    assert.match(
      s.output(),
      /; at most 20000 sessions;/,
      'the session limit given is the one the KBS runs with',
    );

    const token = readFileSync(join(data, 'admin-token'), 'utf8').trim();
    const reg = await fetch(`${url}/v1/admin/instances`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        project: 'cli',
        zone: 'z',
        instanceId: '1',
        instanceName: 'vm-1',
        policy: { measurements: [toHex(SIM_DEFAULT_MEASUREMENT)] },
      }),
    });
    assert.equal(reg.status, 201);
    const inst = (await reg.json()) as { hostData: string };

    const sock = join(dir, 'kbs.sock');
    const p = await startCli(
      ['proxy', '--listen', `unix:${sock}`, '--broker', url, '--protocol', 'kbs', '--log-level', 'warn'],
      /proxy listening on unix:\S+ -> \S+ \(kbs\)/,
    );
    running.push(p.p);

    const fw = new SimSnpFirmware(chain, {
      measurement: SIM_DEFAULT_MEASUREMENT,
      policy: SIM_DEFAULT_POLICY,
      hostData: fromHex(inst.hostData)!,
    });
    const booted = await bootGuest({
      connect: `unix:${sock}`,
      provider: simulatorReportProvider(fw),
      statePath: join(dir, 'guest.state'),
      version: '0.1.0',
      timeoutMs: 15_000,
    });
    assert.equal(booted.firstBoot, true);

    const before = (await (await fetch(`${url}/.well-known/jwks.json`)).json()) as {
      keys: { kid: string }[];
    };
    assert.equal(before.keys.length, 1);
    const rot = await runCli([
      'token-keys',
      'rotate',
      '--broker',
      url,
      '--token-file',
      join(data, 'admin-token'),
      '--json',
    ]);
    assert.equal(rot.code, 0, rot.stderr);
    const r = JSON.parse(rot.stdout) as { kid: string; published: string[] };
    assert.deepEqual(r.published, [r.kid, before.keys[0]!.kid]);
    const afterRot = (await (await fetch(`${url}/kbs/v0/.well-known/jwks`)).json()) as {
      keys: { kid: string }[];
    };
    assert.deepEqual(
      afterRot.keys.map((k) => k.kid),
      r.published,
    );
    const wrongToken = join(dir, 'wrong-token');
    writeFileSync(wrongToken, `${'0'.repeat(64)}\n`, { mode: 0o600 });
    const refused = await runCli(['token-keys', 'rotate', '--broker', url, '--token-file', wrongToken]);
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /ERR_REFUSED api\.admin\.unauthorized/);

    p.p.kill('SIGTERM');
    assert.equal(await exited(p.p), 0, p.output());
    s.p.kill('SIGTERM');
    assert.equal(await exited(s.p), 0, s.output());
  });

  it('refuses --resource-path for the native protocol and kbs options with --no-kbs (exit 2)', async () => {
    const a = await runCli([
      'proxy',
      '--listen',
      `unix:${join(dir, 'x.sock')}`,
      '--broker',
      'http://127.0.0.1:1',
      '--resource-path',
      'a/b/c',
    ]);
    assert.equal(a.code, 2);
    assert.match(a.stderr, /cli\.options/);
    const b = await runCli([
      'serve',
      '--listen',
      '127.0.0.1:0',
      '--data',
      join(dir, 'd2'),
      '--no-kbs',
      '--kbs-aproxy-path',
    ]);
    assert.equal(b.code, 2);
    assert.match(b.stderr, /cli\.options/);
    for (const extra of [
      ['--no-kbs', '--kbs-max-sessions', '5'],
      ['--kbs-max-sessions', '0'],
    ]) {
      const r = await runCli(['serve', '--listen', '127.0.0.1:0', '--data', join(dir, 'd4'), ...extra]);
      assert.equal(r.code, 2, extra.join(' '));
      assert.match(r.stderr, extra[0] === '--no-kbs' ? /cli\.options/ : /--kbs-max-sessions/);
    }
    const c = await runCli([
      'serve',
      '--listen',
      '127.0.0.1:0',
      '--data',
      join(dir, 'd3'),
      '--public-url',
      'ftp://x',
    ]);
    assert.equal(c.code, 2);
    assert.match(c.stderr, /cli\.public_url/);
  });
});
