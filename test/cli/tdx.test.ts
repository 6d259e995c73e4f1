/**
 * `vouchsafe verify tdx` and `inspect tdx` run as a user runs them (bin/vouchsafe.js), on the real vectors
 * with `--collateral DIR` (fully offline): exit codes 0 / 1 / 2 and the JSON verdict, as `verify snp`.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { tdxCaseNow } from '../evidence/tdx/vector-collateral.js';
import { needsVectors, readVectorJson, vectorPath } from '../helpers/vectors.js';
import { runCli } from './run-cli.js';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const verifyArgs = (name: string, ...more: string[]) => [
  'verify',
  'tdx',
  vectorPath('tdx', name, 'quote.bin'),
  '--collateral',
  vectorPath('tdx', name),
  '--at',
  tdxCaseNow(name).toISOString(),
  ...more,
];

describe('vouchsafe verify tdx / inspect tdx', needsVectors, () => {
  it('the UpToDate v4 quote is accepted offline from its collateral directory (exit 0), JSON verdict', async () => {
    const r = await runCli(verifyArgs('phala-dcap-qvl-v4', '--json'));
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    const e = readVectorJson('tdx', 'phala-dcap-qvl-v4', 'expected.json');
    assert.equal(out.verdict, 'accepted');
    assert.equal(out.claims.mrTd, e.quote_fields.body.mr_td);
    assert.equal(out.claims.tcb.status, 'UpToDate');
    assert.equal(out.claims.revocationChecked, true);
    assert.equal(out.collateral.source, 'directory');
    assert.ok(out.appraisal.unchecked.includes('mr_td'));
  });

  it('a policy naming another MRTD, and the outdated quote, are rejected (exit 1) with their codes', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vouchsafe-tdx-cli-'));
    dirs.push(dir);
    const policy = join(dir, 'policy.json');
    await writeFile(policy, JSON.stringify({ mrTd: ['00'.repeat(48)] }));
    const r = await runCli(verifyArgs('phala-dcap-qvl-v4', '--policy', policy));
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout, /verdict\s+REJECTED/);
    assert.match(r.stderr, /tdx\.mr_td/);
    const o = await runCli(verifyArgs('phala-dcap-qvl-v5-outdated', '--json'));
    assert.equal(o.code, 1, o.stderr);
    assert.deepEqual(
      JSON.parse(o.stdout).appraisal.failures.map((f: { code: string }) => f.code),
      ['tdx.tcb_status'],
    );
  });

  it('collateral out of date is rejected (exit 1); collateral for another platform is unusable (exit 2)', async () => {
    const late = await runCli([...verifyArgs('phala-dcap-qvl-v4'), '--at', '2030-01-01T00:00:00Z', '--json']);
    assert.equal(late.code, 1);
    assert.equal(JSON.parse(late.stdout).error.code, 'ERR_CHAIN_INVALID');
    const other = await runCli([
      'verify',
      'tdx',
      vectorPath('tdx', 'phala-dcap-qvl-v4', 'quote.bin'),
      '--collateral',
      vectorPath('tdx', 'google-go-tdx-guest-spr-e4-v4'),
      '--json',
    ]);
    assert.equal(other.code, 2);
    assert.equal(JSON.parse(other.stdout).error.reason, 'pcs.directory.fmspc');
    const garbage = await runCli([
      'verify',
      'tdx',
      vectorPath('tdx', 'phala-dcap-qvl-v4', 'tcb_info.json'),
      '--json',
    ]);
    assert.equal(garbage.code, 2);
    assert.equal(JSON.parse(garbage.stdout).error.code, 'ERR_MALFORMED');
  });

  it('--offline with an empty cache is unusable (exit 2, pcs.offline_missing): no network', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vouchsafe-tdx-cli-'));
    dirs.push(dir);
    const r = await runCli([
      'verify',
      'tdx',
      vectorPath('tdx', 'phala-dcap-qvl-v4', 'quote.bin'),
      '--offline',
      '--cache-dir',
      dir,
      '--json',
    ]);
    assert.equal(r.code, 2);
    assert.equal(JSON.parse(r.stdout).error.reason, 'pcs.offline_missing');
  });

  it('inspect tdx decodes every field without verifying (exit 0)', async () => {
    const r = await runCli([
      'inspect',
      'tdx',
      vectorPath('tdx', 'phala-dcap-qvl-v5-outdated', 'quote.bin'),
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    const e = readVectorJson('tdx', 'phala-dcap-qvl-v5-outdated', 'expected.json').quote_fields;
    assert.equal(out.header.version, e.header.version);
    assert.equal(out.body.mrTd, e.body.mr_td);
    const text = await runCli(['inspect', 'tdx', vectorPath('tdx', 'phala-dcap-qvl-v4', 'quote.bin')]);
    assert.equal(text.code, 0);
    assert.match(text.stdout, /Not verified/);
  });
});
