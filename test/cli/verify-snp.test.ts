import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadDer } from '../../src/evidence/snp/index.js';
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

describe('vouchsafe verify snp / inspect snp on Trustee SEV-SNP evidence JSON', needsVectors, () => {
  const evidence = (c: string) =>
    vectorPath('kbs', 'trustee-snp-evidence', c, 'report.bin.trustee-evidence.json');
  const snp = (c: string) => vectorPath('snp', c);

  for (const c of ['microsoft-tav-turin', 'trustee-milan']) {
    it(`${c}: the JSON evidence file gives the raw report's verdict, claims and exit status`, async () => {
      const args = [...chainArgs(snp(c)), '--json'];
      const raw = await runCli(['verify', 'snp', join(snp(c), 'report.bin'), ...args]);
      const json = await runCli(['verify', 'snp', evidence(c), ...args]);
      assert.equal(json.code, raw.code, json.stderr);
      assert.deepEqual(JSON.parse(json.stdout), JSON.parse(raw.stdout));
      assert.equal(JSON.parse(json.stdout).verdict, c === 'trustee-milan' ? 'rejected' : 'accepted');
      const ri = await runCli(['inspect', 'snp', join(snp(c), 'report.bin'), '--json']);
      const ji = await runCli(['inspect', 'snp', evidence(c), '--json']);
      assert.equal(ji.code, 0, ji.stderr);
      assert.equal(ji.stdout, ri.stdout);
    });
  }

  it("the JSON's cert_chain is the certificate table: verified offline with no certificate given", async () => {
    const c = 'microsoft-tav-genoa';
    const j = JSON.parse(readFileSync(evidence(c), 'utf8'));
    const der = (f: string) => Array.from(loadDer(readFileSync(join(snp(c), f), 'utf8')));
    j.cert_chain = [
      { cert_type: 'VCEK', data: der('vcek.pem') },
      { cert_type: 'ASK', data: der('ask.pem') },
      { cert_type: 'ARK', data: der('ark.pem') },
    ];
    const file = join(tmp, 'genoa-evidence.json');
    writeFileSync(file, JSON.stringify(j, null, 2));
    const r = await runCli([
      'verify',
      'snp',
      file,
      '--offline',
      '--cache-dir',
      join(tmp, 'no-cache'),
      '--at',
      '2026-11-28T00:00:00Z',
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr || r.stdout);
    const out = JSON.parse(r.stdout);
    assert.equal(out.claims.product, 'Genoa');
    assert.deepEqual(out.certificates, {
      leaf: 'cert-table',
      intermediate: 'cert-table',
      root: 'cert-table',
    });
  });

  it('JSON that would not rebuild exactly: exit 2 with the codec reason', async () => {
    const j = JSON.parse(readFileSync(evidence('microsoft-tav-milan'), 'utf8'));
    j.attestation_report.launch_tcb.fmc = 3; // a Milan TCB has no FMC byte
    const file = join(tmp, 'bad-evidence.json');
    writeFileSync(file, JSON.stringify(j));
    const r = await runCli(['verify', 'snp', file, ...chainArgs(snp('microsoft-tav-milan'))]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^error: ERR_MALFORMED snp\.sev_json\.tcb_layout/);
    writeFileSync(file, '{"attestation_report": ');
    const i = await runCli(['inspect', 'snp', file, '--json']);
    assert.equal(i.code, 2);
    assert.equal(JSON.parse(i.stdout).error.reason, 'snp.sev_json.json');
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
