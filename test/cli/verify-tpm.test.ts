import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { needsVectors, readVectorJson, vectorPath } from '../helpers/vectors.js';
import { runCliSync } from './run-cli.js';

const Q = (f: string) => vectorPath('tpm', 'gce-go-tpm-tools', 'extracted-cos85-nonce9009', f);
const CA_DIR = vectorPath('tpm', 'gce-go-tpm-tools', 'ca-certs');
const tmp = mkdtempSync(join(tmpdir(), 'vouchsafe-cli-tpm-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function cli(args: string[]) {
  const r = runCliSync(['verify', 'tpm', ...args]);
  return { code: r.code, stdout: r.stdout.toString('utf8'), stderr: r.stderr };
}

const base = (bank: string, extra: string[] = []) => [
  '--quote',
  Q(`quote_${bank}.attest.bin`),
  '--sig',
  Q(`quote_${bank}.sig.tpmt_signature.bin`),
  '--pcrs',
  Q(`quote_${bank}.pcrs.json`),
  '--ak-cert',
  Q('ak_cert.der'),
  '--roots',
  CA_DIR,
  '--at',
  '2024-06-01T00:00:00Z',
  ...extra,
];

describe('vouchsafe verify tpm', needsVectors, () => {
  it('accepts the real GCE sha384-bank quote (exit 0) and prints identity and claims as JSON', () => {
    const r = cli(base('sha384', ['--nonce', '9009', '--ak-pub', Q('ak_pub.tpmt_public.bin'), '--json']));
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.verdict, 'accepted');
    assert.equal(out.claims.nonce, '9009');
    assert.equal(out.claims.identity.instanceId, '6797026933021542085');
    assert.equal(out.claims.identity.projectId, 'google.com:wuale-gcp-testing');
    assert.equal(out.claims.akName, '000bf175bdb57297b2b289973f819863d6c9d09c236725676914f4248c9a2404c2a4');
    const want = readVectorJson(...['tpm', 'gce-go-tpm-tools', 'extracted-cos85-nonce9009', 'verified.json'])
      .quotes[2];
    assert.equal(out.claims.pcrDigest, want.pcrDigest);
    assert.equal(Object.keys(out.claims.pcrs.sha384).length, 24);
  });

  it('accepts the bank-keyed PCR JSON form too (human output)', () => {
    const pcrs = join(tmp, 'banked.json');
    const values = JSON.parse(
      JSON.stringify(
        readVectorJson('tpm', 'gce-go-tpm-tools', 'extracted-cos85-nonce9009', 'quote_sha1.pcrs.json'),
      ),
    );
    writeFileSync(pcrs, JSON.stringify({ sha1: values }));
    const args = base('sha1', ['--nonce', '9009']);
    args[args.indexOf('--pcrs') + 1] = pcrs;
    const r = cli(args);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^accepted/);
    assert.match(r.stdout, /cos-test/);
  });

  it('rejects a wrong nonce with exit 1 and prints code and reason', () => {
    const r = cli(base('sha256', ['--nonce', '9008']));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /ERR_BINDING_MISMATCH tpm\.quote\.nonce/);
    const noNonce = cli(base('sha256'));
    assert.equal(noNonce.code, 1);
  });

  it('rejects when the roots directory holds only another PKI (exit 1)', () => {
    const dir = join(tmp, 'other-pki');
    rmSync(dir, { recursive: true, force: true });
    spawnSync('mkdir', ['-p', dir]);
    for (const f of ['gcp_ek_ak_ca_root.crt', 'gcp_ek_ak_ca_intermediate_v3.crt'])
      symlinkSync(join(CA_DIR, f), join(dir, f));
    const args = base('sha256', ['--nonce', '9009', '--json']);
    args[args.indexOf('--roots') + 1] = dir;
    const r = cli(args);
    assert.equal(r.code, 1);
    assert.equal(JSON.parse(r.stdout).error.reason, 'x509.chain.no_path');
  });

  it('unusable input exits 2: missing file, bad PCR JSON, malformed quote, no such roots dir', () => {
    const missing = base('sha256', ['--nonce', '9009']);
    missing[missing.indexOf('--quote') + 1] = join(tmp, 'nope.bin');
    assert.equal(cli(missing).code, 2);
    const badJson = join(tmp, 'bad.json');
    writeFileSync(badJson, '{"0": "zz"}');
    const bad = base('sha256', ['--nonce', '9009']);
    bad[bad.indexOf('--pcrs') + 1] = badJson;
    const r = cli(bad);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /ERR_INVALID_ARGUMENT cli\.pcrs/);
    const shortQuote = join(tmp, 'short.bin');
    writeFileSync(shortQuote, Uint8Array.of(0xff, 0x54, 0x43, 0x47, 0x80, 0x18, 0x00));
    const mal = base('sha256', ['--nonce', '9009']);
    mal[mal.indexOf('--quote') + 1] = shortQuote;
    const m = cli(mal);
    assert.equal(m.code, 2);
    assert.match(m.stderr, /ERR_MALFORMED tpm\.attest\.truncated/);
    const noDir = base('sha256');
    noDir[noDir.indexOf('--roots') + 1] = join(tmp, 'no-such-dir');
    assert.equal(cli(noDir).code, 2);
    assert.equal(cli(['--quote', Q('quote_sha1.attest.bin')]).code, 2, 'missing required options');
  });
});
