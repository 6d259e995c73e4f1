import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sharedSimChain, signReport } from '../../src/sim/snp/index.js';
import { needsVectors, vectorPath } from '../helpers/vectors.js';
import { runCli } from './run-cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'vs-cli-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function chainArgs(dir: string, leaf = 'vcek', mid = 'ask'): string[] {
  return [
    `--${leaf}`,
    join(dir, `${leaf}.pem`),
    `--${mid}`,
    join(dir, `${mid}.pem`),
    '--ark',
    join(dir, 'ark.pem'),
  ];
}

describe('vouchsafe verify snp on real reports', needsVectors, () => {
  const snp = (c: string) => vectorPath('snp', c);

  it('accepts a real Turin report with its chain: exit 0, claims in JSON', async () => {
    const r = await runCli([
      'verify',
      'snp',
      join(snp('microsoft-tav-turin'), 'report.bin'),
      ...chainArgs(snp('microsoft-tav-turin')),
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.verdict, 'accepted');
    assert.equal(out.claims.product, 'Turin');
    assert.equal(out.claims.verification.rootTrust, 'pinned');
    assert.ok(out.appraisal.unchecked.includes('measurements'));
  });

  it('rejects trustee-milan by default (provisional firmware), accepts it when permitted', async () => {
    const args = [
      'verify',
      'snp',
      join(snp('trustee-milan'), 'report.bin'),
      ...chainArgs(snp('trustee-milan')),
    ];
    const no = await runCli([...args, '--json']);
    assert.equal(no.code, 1);
    assert.deepEqual(
      JSON.parse(no.stdout).appraisal.failures.map((f: { code: string }) => f.code),
      ['snp.firmware.provisional'],
    );
    const yes = await runCli([...args, '--permit-provisional-firmware']);
    assert.equal(yes.code, 0, yes.stderr);
    assert.match(yes.stdout, /verdict\s+ACCEPTED/);
  });

  it('verifies a VLEK report from its real certificate table at valid_at_unix', async () => {
    const c = snp('constellation-aws-milan-vlek-2023');
    const r = await runCli([
      'verify',
      'snp',
      join(c, 'report.bin'),
      '--cert-table',
      join(c, 'certs_table.bin'),
      '--ark',
      join(c, 'ark.pem'),
      '--asvk',
      join(c, 'asvk.pem'),
      '--at',
      '1682101816',
      '--permit-provisional-firmware',
      '--offline',
      '--cache-dir',
      join(tmp, 'empty-cache'),
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr || r.stdout);
    const out = JSON.parse(r.stdout);
    assert.equal(out.claims.signer, 'VLEK');
    assert.equal(out.certificates.leaf, 'cert-table');
  });

  it('rejects report_invalid.bin for its signature: exit 1, ERR_SIGNATURE_INVALID', async () => {
    const c = snp('constellation-aws-milan-vlek-2023');
    const r = await runCli([
      'verify',
      'snp',
      join(c, 'report_invalid.bin'),
      ...chainArgs(c, 'vlek', 'asvk'),
      '--at',
      '1682101816',
      '--json',
    ]);
    assert.equal(r.code, 1);
    assert.equal(JSON.parse(r.stdout).error.code, 'ERR_SIGNATURE_INVALID');
  });

  it('offline without the certificates in the cache: exit 2, ERR_COLLATERAL_UNAVAILABLE', async () => {
    const r = await runCli([
      'verify',
      'snp',
      join(snp('microsoft-tav-milan'), 'report.bin'),
      '--offline',
      '--cache-dir',
      join(tmp, 'none'),
      '--json',
    ]);
    assert.equal(r.code, 2);
    assert.equal(JSON.parse(r.stdout).error.code, 'ERR_COLLATERAL_UNAVAILABLE');
  });
});

describe('vouchsafe verify snp / inspect snp on simulated and bad input', () => {
  let dir: string;
  let rootPin: string;
  before(async () => {
    const chain = await sharedSimChain('Genoa');
    dir = join(tmp, 'sim');
    rmSync(dir, { recursive: true, force: true });
    const { mkdirSync } = await import('node:fs');
    mkdirSync(dir);
    writeFileSync(join(dir, 'report.bin'), signReport({}, chain));
    writeFileSync(join(dir, 'vcek.pem'), chain.vcek.der);
    writeFileSync(join(dir, 'ask.pem'), chain.ask.der);
    writeFileSync(join(dir, 'ark.pem'), chain.ark.der);
    rootPin = `Genoa:${chain.rootSha256}`;
  });

  it('a simulator report is rejected unless its root is configured with --trust-root', async () => {
    const args = ['verify', 'snp', join(dir, 'report.bin'), ...chainArgs(dir), '--json'];
    const no = await runCli(args);
    assert.equal(no.code, 1);
    assert.equal(JSON.parse(no.stdout).error.reason, 'snp.chain.root_untrusted');
    const yes = await runCli([...args, '--trust-root', rootPin]);
    assert.equal(yes.code, 0, yes.stderr || yes.stdout);
    assert.equal(JSON.parse(yes.stdout).claims.verification.rootTrust, 'configured');
  });

  it('garbage input: exit 2 with a typed error, never a stack trace', async () => {
    writeFileSync(join(dir, 'garbage.bin'), Buffer.alloc(100, 7));
    const r = await runCli(['verify', 'snp', join(dir, 'garbage.bin'), ...chainArgs(dir)]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^error: ERR_MALFORMED snp\.report\.size/);
    const i = await runCli(['inspect', 'snp', join(dir, 'missing.bin')]);
    assert.equal(i.code, 2);
    assert.match(i.stderr, /ERR_INVALID_ARGUMENT cli\.input/);
  });

  it('inspect snp decodes every field as JSON', async () => {
    const r = await runCli(['inspect', 'snp', join(dir, 'report.bin'), '--json']);
    assert.equal(r.code, 0, r.stderr);
    const c = JSON.parse(r.stdout);
    assert.equal(c.product, 'Genoa');
    assert.equal(c.signatureAlgo, 1);
    assert.equal(typeof c.currentTcb.snp, 'number');
  });
});
