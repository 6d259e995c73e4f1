import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runPlatformFlow } from '../../src/cli/demo/platform.js';
import type { DemoEvent } from '../../src/cli/demo/scenario.js';
import { toHex } from '../../src/util/bytes.js';

/**
 * The whole platform-identity flow end to end (issue 11), as `vouchsafe demo --platform` runs it: broker +
 * platform CA service + host proxy + VMM device relaying over HTTP + simulated SVSM with a real vTPM (swtpm,
 * its state encrypted under a key from the released state). Needs swtpm and tpm2-tools: without them the
 * flow fails naming the Debian packages (never skipped).
 */
describe('platform flow: key release, vTPM, CERTIFY_EK, CERTIFY_AK, quote, reboot, refusals', () => {
  it('runs every step as expected, each refusal with its stable code and an audit entry', async () => {
    const lines: DemoEvent[] = [];
    const run = await runPlatformFlow((e) => lines.push(e));
    const unexpected = run.events.filter((e) => !e.expected);
    assert.deepEqual(unexpected, [], 'every step ends as the flow expects');

    // Two boots: the same EK (and EK certificate), a new AK certificate each time.
    assert.equal(run.boots.length, 2);
    assert.equal(toHex(run.boots[0]!.ekPublic), toHex(run.boots[1]!.ekPublic));
    assert.equal(toHex(run.boots[0]!.ekCert), toHex(run.boots[1]!.ekCert));
    assert.notEqual(toHex(run.boots[0]!.akCert), toHex(run.boots[1]!.akCert));

    const refused = Object.fromEntries(
      run.events.filter((e) => e.outcome === 'refused').map((e) => [e.step, `${e.code} ${e.reason}`]),
    );
    assert.deepEqual(refused, {
      'a clone of vm-a boots while vm-a runs': 'ERR_REFUSED broker.clone',
      'vm-a with only its vTPM NV files rolled back (to after boot 1)':
        'ERR_BINDING_MISMATCH guest.vtpm_state_rollback',
      'vm-a with everything the host holds rolled back (state version 1)': 'ERR_REFUSED broker.rollback',
      'vm-a with its UEFI variable store rolled back (the host file of boot 1)':
        'ERR_REFUSED broker.rollback',
      'a VMM that forges the report (changes HOST_DATA on the way)': 'ERR_SIGNATURE_INVALID snp.signature',
      'an AK that is not in the manifest': 'ERR_REFUSED ca.csr_key_mismatch',
      "vm-a's EK presented by vm-b's launch": 'ERR_REFUSED ca.ek_other_instance',
      'a VMM that lies about the identity (claims vm-b for vm-a)': 'ERR_REFUSED ca.identity_mismatch',
    });

    // The CA's log holds every issuance (2 EK: one issued, one reused; 2 AK) and every refusal.
    const ca = run.caLog.filter((e) => e.kind === 'ca.issue_ek' || e.kind === 'ca.issue_ak');
    assert.deepEqual(
      ca.filter((e) => e.decision === 'accept').map((e) => `${e.kind} ${e.reasons.join(',')}`),
      ['ca.issue_ek ca.issued', 'ca.issue_ak ca.issued', 'ca.issue_ek ca.ek_reused', 'ca.issue_ak ca.issued'],
    );
    assert.deepEqual(
      ca.filter((e) => e.decision === 'refuse').map((e) => e.reasons[0]),
      ['snp.signature', 'ca.csr_key_mismatch', 'ca.ek_other_instance', 'ca.identity_mismatch'],
    );
  });
});
