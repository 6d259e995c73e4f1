/** `vouchsafe inspect eventlog` and `vouchsafe verify tpm --event-log` on the real GCE quote and logs. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runCliSync } from '../../../cli/run-cli.js';
import { needsVectors, readVectorJson, vectorPath } from '../../../helpers/vectors.js';

const Q = (f: string) => vectorPath('tpm', 'gce-go-tpm-tools', 'extracted-cos85-nonce9009', f);
const tmp = mkdtempSync(join(tmpdir(), 'vouchsafe-cli-eventlog-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const verify = (extra: string[]) => {
  const r = runCliSync([
    'verify',
    'tpm',
    '--quote',
    Q('quote_sha256.attest.bin'),
    '--sig',
    Q('quote_sha256.sig.tpmt_signature.bin'),
    '--pcrs',
    Q('quote_sha256.pcrs.json'),
    '--ak-cert',
    Q('ak_cert.der'),
    '--roots',
    vectorPath('tpm', 'gce-go-tpm-tools', 'ca-certs'),
    '--at',
    '2024-06-01T00:00:00Z',
    '--nonce',
    '9009',
    '--event-log',
    Q('event_log.bin'),
    '--json',
    ...extra,
  ]);
  return { code: r.code, out: JSON.parse(r.stdout.toString('utf8') || r.stderr || '{}') };
};

describe('vouchsafe inspect eventlog / verify tpm --event-log', needsVectors, () => {
  it('inspect eventlog --json: every event decoded, replayed PCRs per bank equal expected.json', () => {
    const log = vectorPath('tpm', 'eventlogs', 'ubuntu-2404-amd-sevsnp', 'eventlog.bin');
    const r = runCliSync(['inspect', 'eventlog', log, '--json']);
    assert.equal(r.code, 0);
    const out = JSON.parse(r.stdout.toString('utf8'));
    const want = readVectorJson('tpm', 'eventlogs', 'ubuntu-2404-amd-sevsnp', 'expected.json');
    assert.deepEqual(out.replayedPcrs, want.replayed_pcrs);
    assert.equal(out.events.length, want.events);
    assert.ok(out.events.every((e: { detail: { kind: string } }) => e.detail.kind !== 'undecodable'));
    assert.equal(out.events[25].detail.image.devicePath.filePath, '\\EFI\\ubuntu\\shimx64.efi');
  });

  it('verify tpm --event-log: quote + log accepted with the default boot policy (Secure Boot on in COS 85)', () => {
    const r = verify([]);
    assert.equal(r.code, 0, JSON.stringify(r.out));
    assert.deepEqual(r.out.claims.eventLog.verifiedPcrs, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.deepEqual(r.out.claims.eventLog.checked, ['requireSecureBoot', 'requireSeparators']);
    assert.deepEqual(r.out.claims.eventLog.rules[0], {
      rule: 'requireSecureBoot',
      setting: 'true (default)',
      enforced: true,
    });
  });

  it('verify tpm --boot-policy explains every rule in text output, as verify snp does', () => {
    const p = join(tmp, 'explain.json');
    writeFileSync(p, JSON.stringify({ requireSeparators: 'any', cmdline: 'any' }));
    const r = runCliSync([
      'verify',
      'tpm',
      '--quote',
      Q('quote_sha256.attest.bin'),
      '--sig',
      Q('quote_sha256.sig.tpmt_signature.bin'),
      '--pcrs',
      Q('quote_sha256.pcrs.json'),
      '--ak-cert',
      Q('ak_cert.der'),
      '--roots',
      vectorPath('tpm', 'gce-go-tpm-tools', 'ca-certs'),
      '--at',
      '2024-06-01T00:00:00Z',
      '--nonce',
      '9009',
      '--event-log',
      Q('event_log.bin'),
      '--boot-policy',
      p,
    ]);
    const text = r.stdout.toString('utf8');
    assert.equal(r.code, 0, r.stderr);
    assert.match(text, /boot rule +requireSecureBoot: true \(default\)/);
    assert.match(text, /boot rule +requireSeparators: any \(not checked\)/);
    assert.match(text, /boot rule +kernels: not checked \(unset\)/);
    assert.match(text, /not checked +requireSeparators, bootLoaders, kernels, cmdline, requiredDbxDigests/);
  });

  it('verify tpm --event-log --boot-policy: a rule failing exits 1 with its code', () => {
    const p = join(tmp, 'boot.json');
    writeFileSync(p, JSON.stringify({ kernels: ['00'.repeat(32)] }));
    const r = verify(['--boot-policy', p]);
    assert.equal(r.code, 1);
    assert.equal(r.out.error.code, 'ERR_POLICY_REJECTED');
    assert.deepEqual(
      r.out.error.failures.map((f: { code: string }) => f.code),
      ['tpm.kernel'],
    );
  });

  it('verify tpm --event-log with another machine’s log: exit 1, eventlog.pcr_mismatch', () => {
    const r = runCliSync([
      'verify',
      'tpm',
      '--quote',
      Q('quote_sha256.attest.bin'),
      '--sig',
      Q('quote_sha256.sig.tpmt_signature.bin'),
      '--pcrs',
      Q('quote_sha256.pcrs.json'),
      '--ak-cert',
      Q('ak_cert.der'),
      '--roots',
      vectorPath('tpm', 'gce-go-tpm-tools', 'ca-certs'),
      '--at',
      '2024-06-01T00:00:00Z',
      '--nonce',
      '9009',
      '--event-log',
      vectorPath('tpm', 'eventlogs', 'cos-93-amd-sev', 'eventlog.bin'),
      '--json',
    ]);
    assert.equal(r.code, 1);
    const out = JSON.parse(r.stdout.toString('utf8') || r.stderr);
    assert.equal(out.error.reason, 'eventlog.pcr_mismatch');
  });
});
