/** describeTpmBootPolicy: every rule's effective setting, defaults included, agreeing with the appraisal. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { replayEventLog } from '../../../../src/evidence/tpm/eventlog-replay.js';
import { verifyEventLog } from '../../../../src/evidence/tpm/eventlog-verify.js';
import { TPM_ALG } from '../../../../src/formats/tpm/constants.js';
import { EV } from '../../../../src/formats/tpm/eventlog/event-types.js';
import { parseEventLog } from '../../../../src/formats/tpm/eventlog/parse.js';
import { appraiseTpmBoot } from '../../../../src/policy/tpm/appraise.js';
import { describeTpmBootPolicy } from '../../../../src/policy/tpm/describe.js';
import type { TpmBootPolicy } from '../../../../src/policy/tpm/policy.js';
import { buildEventLog } from './build.js';

const D = 'ab'.repeat(32);

describe('describeTpmBootPolicy', () => {
  it('the empty policy: the two defaults enforced, every list rule not checked', () => {
    assert.deepEqual(
      describeTpmBootPolicy({}).map((s) => [s.rule, s.setting, s.enforced]),
      [
        ['requireSecureBoot', 'true (default)', true],
        ['requireSeparators', 'true (default)', true],
        ['bootLoaders', 'not checked (unset)', false],
        ['kernels', 'not checked (unset)', false],
        ['cmdline', 'not checked (unset)', false],
        ['requiredDbxDigests', 'not checked (unset)', false],
      ],
    );
  });

  it("explicit settings, 'any' and false are shown as such", () => {
    const s = describeTpmBootPolicy({
      requireSecureBoot: 'any',
      requireSeparators: false,
      bootLoaders: [D, D.toUpperCase()],
      kernels: [D],
      cmdline: { require: ['ro'], forbid: ['init'] },
      requiredDbxDigests: [D],
    });
    assert.deepEqual(
      s.map((x) => [x.setting, x.enforced]),
      [
        ['any (not checked)', false],
        ['false', false],
        ['one of 2 SHA-256 digests', true],
        [`SHA-256 ${D}`, true],
        ['requires ro; forbids init', true],
        ['dbx holds all of 1', true],
      ],
    );
  });

  it('a malformed policy is refused (policy.invalid)', () => {
    assert.throws(
      () => describeTpmBootPolicy({ kernels: [] } as TpmBootPolicy),
      (e: { reason: string }) => e.reason === 'policy.invalid',
    );
  });

  it('what it calls enforced is exactly what the appraisal checks', () => {
    const raw = buildEventLog([{ pcr: 4, type: EV.EFI_BOOT_SERVICES_APPLICATION, data: new Uint8Array(8) }]);
    const log = parseEventLog(raw);
    const bank = replayEventLog(log).find((b) => b.hashAlg === TPM_ALG.SHA256)!;
    const verified = verifyEventLog(log, [{ hashAlg: TPM_ALG.SHA256, values: bank.pcrs }]);
    const policies: TpmBootPolicy[] = [
      {},
      { requireSecureBoot: false, requireSeparators: 'any' },
      { bootLoaders: [D], kernels: 'any', cmdline: { exact: ['x'] }, requiredDbxDigests: [D] },
    ];
    for (const p of policies) {
      const enforced = describeTpmBootPolicy(p)
        .filter((s) => s.enforced)
        .map((s) => s.rule);
      assert.deepEqual(enforced, appraiseTpmBoot(verified, p).checked, JSON.stringify(p));
    }
  });
});
