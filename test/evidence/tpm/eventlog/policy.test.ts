/**
 * The measured-boot policy: every rule shown rejecting on a built log (each failure code asserted), defaults
 * and 'any', the unverified-data rules, and the real GCE/Ubuntu logs' claims.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { replayEventLog } from '../../../../src/evidence/tpm/eventlog-replay.js';
import { verifyEventLog } from '../../../../src/evidence/tpm/eventlog-verify.js';
import { TPM_ALG } from '../../../../src/formats/tpm/constants.js';
import { EV } from '../../../../src/formats/tpm/eventlog/event-types.js';
import { parseEventLog } from '../../../../src/formats/tpm/eventlog/parse.js';
import { appraiseTpmBoot } from '../../../../src/policy/tpm/appraise.js';
import { parseTpmBootPolicy } from '../../../../src/policy/tpm/parse.js';
import type { TpmBootPolicy } from '../../../../src/policy/tpm/policy.js';
import { needsVectors, readVector } from '../../../helpers/vectors.js';
import { type BuildEvent, buildEventLog, imageLoad, sha256List, uefiVariable } from './build.js';

const GLOBAL = '8be4df61-93ca-11d2-aa0d-00e098032b8c';
const DB = 'd719b2cb-3d3a-4596-a3bc-dad00e67656f';
const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const SHIM = sha('shim');
const KERNEL = sha('kernel');
const REVOKED = new Uint8Array(32).fill(0xee);

interface Opts {
  secureBoot?: number;
  separatorError?: number;
  noSeparator?: number;
  cmdline?: string;
  badCmdlineDigest?: boolean;
  dbx?: Uint8Array[];
}

/** A systemd-boot style log: shim then the kernel in PCR 4, the command line in PCR 8. */
function bootLog(o: Opts = {}): BuildEvent[] {
  const ev: BuildEvent[] = [
    {
      pcr: 7,
      type: EV.EFI_VARIABLE_DRIVER_CONFIG,
      data: uefiVariable(GLOBAL, 'SecureBoot', Uint8Array.of(o.secureBoot ?? 1)),
    },
    {
      pcr: 7,
      type: EV.EFI_VARIABLE_DRIVER_CONFIG,
      data: uefiVariable(DB, 'dbx', sha256List(o.dbx ?? [REVOKED])),
    },
  ];
  for (let p = 0; p < 8; p++) {
    if (p === o.noSeparator) continue;
    const v = new Uint8Array(4);
    if (p === o.separatorError) v[0] = 1;
    ev.push({ pcr: p, type: EV.SEPARATOR, data: v });
  }
  ev.push(
    {
      pcr: 4,
      type: EV.EFI_BOOT_SERVICES_APPLICATION,
      data: imageLoad('\\EFI\\shim.efi'),
      digests: { [TPM_ALG.SHA256]: Buffer.from(SHIM, 'hex') },
    },
    {
      pcr: 4,
      type: EV.EFI_BOOT_SERVICES_APPLICATION,
      data: imageLoad('\\vmlinuz'),
      digests: { [TPM_ALG.SHA256]: Buffer.from(KERNEL, 'hex') },
    },
  );
  const cmd = Buffer.from(`${o.cmdline ?? 'root=/dev/vda1 ro quiet'}\0`, 'utf16le');
  ev.push({
    pcr: 8,
    type: EV.IPL,
    data: cmd,
    ...(o.badCmdlineDigest ? { hashed: Buffer.from('other') } : {}),
  });
  return ev;
}

function appraise(events: BuildEvent[], policy: TpmBootPolicy) {
  const log = parseEventLog(buildEventLog(events));
  const bank = replayEventLog(log).find((b) => b.hashAlg === TPM_ALG.SHA256)!;
  return appraiseTpmBoot(verifyEventLog(log, [{ hashAlg: TPM_ALG.SHA256, values: bank.pcrs }]), policy);
}
const codes = (a: { failures: readonly { code: string }[] }) => a.failures.map((f) => f.code);

const FULL: TpmBootPolicy = {
  bootLoaders: [SHIM, KERNEL],
  kernels: [KERNEL],
  cmdline: { require: ['ro'], forbid: ['init'] },
  requiredDbxDigests: [Buffer.from(REVOKED).toString('hex')],
};

describe('measured-boot policy', () => {
  it('accepts a good boot; unset rules without defaults are listed as not checked', () => {
    const a = appraise(bootLog(), {});
    assert.deepEqual(codes(a), []);
    assert.deepEqual(a.checked, ['requireSecureBoot', 'requireSeparators']);
    assert.deepEqual(a.unchecked, ['bootLoaders', 'kernels', 'cmdline', 'requiredDbxDigests']);
    const full = appraise(bootLog(), FULL);
    assert.deepEqual(codes(full), []);
    assert.deepEqual(full.unchecked, []);
  });

  it('requireSecureBoot (default on) rejects SecureBoot=0; false and any do not check it', () => {
    assert.deepEqual(codes(appraise(bootLog({ secureBoot: 0 }), {})), ['tpm.secure_boot']);
    assert.deepEqual(codes(appraise(bootLog({ secureBoot: 0 }), { requireSecureBoot: false })), []);
    const any = appraise(bootLog({ secureBoot: 0 }), { requireSecureBoot: 'any' });
    assert.deepEqual(codes(any), []);
    assert.ok(any.unchecked.includes('requireSecureBoot'));
  });

  it('requireSeparators rejects an error separator and a missing one, each listed', () => {
    assert.deepEqual(codes(appraise(bootLog({ separatorError: 3, noSeparator: 5 }), {})), [
      'tpm.separator',
      'tpm.separator',
    ]);
  });

  it('bootLoaders rejects an unlisted application; kernels rejects an unlisted kernel', () => {
    assert.deepEqual(codes(appraise(bootLog(), { bootLoaders: [SHIM] })), ['tpm.boot_loader']);
    assert.deepEqual(codes(appraise(bootLog(), { kernels: [SHIM] })), ['tpm.kernel']);
  });

  it('cmdline: require, forbid (name and name=value) and exact each reject', () => {
    assert.deepEqual(
      codes(appraise(bootLog({ cmdline: 'root=/dev/vda1 quiet' }), { cmdline: { require: ['ro'] } })),
      ['tpm.cmdline'],
    );
    assert.deepEqual(
      codes(appraise(bootLog({ cmdline: 'ro init=/bin/sh' }), { cmdline: { forbid: ['init'] } })),
      ['tpm.cmdline'],
    );
    assert.deepEqual(codes(appraise(bootLog(), { cmdline: { exact: ['ro'] } })), ['tpm.cmdline']);
  });

  it('cmdline rules refuse a command line whose event digest is not of its data', () => {
    assert.deepEqual(codes(appraise(bootLog({ badCmdlineDigest: true }), { cmdline: { require: ['ro'] } })), [
      'tpm.cmdline.unverified',
    ]);
  });

  it('requiredDbxDigests rejects a dbx lacking a revocation', () => {
    assert.deepEqual(codes(appraise(bootLog({ dbx: [new Uint8Array(32)] }), FULL)), ['tpm.dbx']);
  });

  it('every failure is listed at once', () => {
    const a = appraise(
      bootLog({ secureBoot: 0, separatorError: 0, dbx: [new Uint8Array(32)], cmdline: 'init=x' }),
      { ...FULL, bootLoaders: [SHIM], kernels: [SHIM] },
    );
    assert.deepEqual(codes(a), [
      'tpm.secure_boot',
      'tpm.separator',
      'tpm.boot_loader',
      'tpm.kernel',
      'tpm.cmdline',
      'tpm.cmdline',
      'tpm.dbx',
    ]);
  });

  it('events in PCRs the quote does not cover are not evidence', () => {
    const log = parseEventLog(buildEventLog(bootLog()));
    const bank = replayEventLog(log).find((b) => b.hashAlg === TPM_ALG.SHA256)!;
    const values = new Map([...bank.pcrs].filter(([p]) => p !== 7));
    const a = appraiseTpmBoot(verifyEventLog(log, [{ hashAlg: TPM_ALG.SHA256, values }]), {});
    assert.deepEqual(codes(a), ['tpm.secure_boot', 'tpm.separator']);
  });

  it('parseTpmBootPolicy refuses unknown keys, empty lists, bad hex and an empty cmdline rule', () => {
    for (const bad of [
      { requireSecureBot: true },
      { kernels: [] },
      { kernels: ['abcd'] },
      { cmdline: {} },
      { cmdline: { require: ['a b'] } },
      { requireSeparators: 'yes' },
    ]) {
      assert.throws(
        () => parseTpmBootPolicy(bad),
        (e: { reason: string }) => e.reason === 'policy.invalid',
      );
    }
  });
});

describe('measured-boot policy: real logs', needsVectors, () => {
  it('ubuntu-2404: Secure Boot off, GRUB kernel and command line found and verified', () => {
    const log = parseEventLog(readVector('tpm', 'eventlogs', 'ubuntu-2404-amd-sevsnp', 'eventlog.bin'));
    const bank = replayEventLog(log).find((b) => b.hashAlg === TPM_ALG.SHA256)!;
    const a = appraiseTpmBoot(verifyEventLog(log, [{ hashAlg: TPM_ALG.SHA256, values: bank.pcrs }]), {
      cmdline: { require: ['ro'] },
    });
    assert.deepEqual(codes(a), ['tpm.secure_boot']);
    assert.equal(a.claims.kernel?.source, 'PCR 9 /vmlinuz-6.8.0-1010-gcp');
    assert.equal(a.claims.cmdline?.verified, true);
  });

  it('arch: the command line of flagged event 24 is refused as unverified', () => {
    const log = parseEventLog(readVector('tpm', 'eventlogs', 'arch-linux-workstation', 'eventlog.bin'));
    const bank = replayEventLog(log).find((b) => b.hashAlg === TPM_ALG.SHA256)!;
    const a = appraiseTpmBoot(verifyEventLog(log, [{ hashAlg: TPM_ALG.SHA256, values: bank.pcrs }]), {
      requireSecureBoot: 'any',
      cmdline: { require: ['rw'] },
    });
    assert.deepEqual(codes(a), ['tpm.cmdline.unverified']);
  });
});
