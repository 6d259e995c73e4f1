/**
 * `vouchsafe verify tdx --event-log` run as a user runs it: a simulated TD's quote with its collateral saved
 * as a --collateral directory, and a CCEL log that replays (exit 0) or not (exit 1, tdx.ccel.rtmr_mismatch
 * naming the RTMR); a real quote with a log of another TD is refused the same way.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { SignedCollateral } from '../../../../src/evidence/tdx/collateral.js';
import { encodePem } from '../../../../src/formats/pem.js';
import { EV } from '../../../../src/formats/tpm/eventlog/event-types.js';
import { SimTdxPlatform } from '../../../../src/sim/tdx/index.js';
import { runCli } from '../../../cli/run-cli.js';
import { needsVectors, vectorPath } from '../../../helpers/vectors.js';
import { tdxCaseNow } from '../../tdx/vector-collateral.js';
import { type BuildEvent, buildCcelLog } from './build.js';

const dir = mkdtempSync(join(tmpdir(), 'vouchsafe-ccel-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const text = (s: string) => new Uint8Array(Buffer.from(s));
const EVENTS: BuildEvent[] = [
  { pcr: 1, type: EV.EFI_PLATFORM_FIRMWARE_BLOB2, data: text('TDHOB') },
  { pcr: 2, type: EV.EFI_BOOT_SERVICES_APPLICATION, data: text('grubx64.efi') },
  { pcr: 3, type: EV.IPL, data: text('kernel_cmdline: /vmlinuz') },
];
const sha384 = (...p: Uint8Array[]) => {
  const h = createHash('sha384');
  for (const x of p) h.update(x);
  return new Uint8Array(h.digest());
};
const rtmrs = [0, 1, 2, 3].map(() => new Uint8Array(48));
for (const e of EVENTS) rtmrs[e.pcr - 1] = sha384(rtmrs[e.pcr - 1]!, sha384(e.data));

/** Writes signed collateral as an offline directory (src/collateral/pcs-directory.ts layout). */
function writeSigned(base: string, c: SignedCollateral): void {
  writeFileSync(join(dir, `${base}.json`), c.body);
  writeFileSync(join(dir, `${base}.sig.hex`), Buffer.from(c.signature).toString('hex'));
  writeFileSync(
    join(dir, `${base}_issuer_chain.pem`),
    c.issuerChain.map((d) => encodePem('CERTIFICATE', d)).join(''),
  );
}

const p = new SimTdxPlatform();
const collateral = p.collateral();
writeSigned('tcb_info', collateral.tcbInfo);
writeSigned('qe_identity', collateral.qeIdentity);
const quote = join(dir, 'quote.bin');
writeFileSync(quote, p.quote(new Uint8Array(64), { body: { rtmrs } }));
const good = join(dir, 'ccel.bin');
writeFileSync(good, buildCcelLog(EVENTS, 1024));
const other = join(dir, 'ccel-other.bin');
writeFileSync(other, buildCcelLog([...EVENTS, { pcr: 3, type: EV.IPL, data: text('extra') }], 1024));

const simArgs = (log: string) => [
  'verify',
  'tdx',
  quote,
  '--collateral',
  dir,
  '--no-check-revocation',
  '--trust-root',
  p.rootSha256,
  '--event-log',
  log,
  '--json',
];

describe('vouchsafe verify tdx --event-log', () => {
  it('a CCEL log that replays to the quote RTMRs is accepted (exit 0) and reported', async () => {
    const r = await runCli(simArgs(good));
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.verdict, 'accepted');
    assert.equal(out.eventLog.events, EVENTS.length + 1);
    assert.deepEqual(out.eventLog.rtmrs, out.claims.rtmrs);
  });

  it('a log with one more RTMR 2 event is refused (exit 1): tdx.ccel.rtmr_mismatch naming RTMR 2', async () => {
    const r = await runCli(simArgs(other));
    assert.equal(r.code, 1, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.error.code, 'ERR_BINDING_MISMATCH');
    assert.equal(out.error.reason, 'tdx.ccel.rtmr_mismatch');
    assert.deepEqual(out.error.rtmrs, [2]);
  });

  it('a log that is not an event log is unusable (exit 2)', async () => {
    const r = await runCli(simArgs(quote));
    assert.equal(r.code, 2, r.stderr);
    assert.equal(JSON.parse(r.stdout).error.code, 'ERR_MALFORMED');
  });

  it('a real quote with a log of another TD is refused (exit 1)', needsVectors, async () => {
    const name = 'phala-dcap-qvl-v4';
    const r = await runCli([
      'verify',
      'tdx',
      vectorPath('tdx', name, 'quote.bin'),
      '--collateral',
      vectorPath('tdx', name),
      '--at',
      tdxCaseNow(name).toISOString(),
      '--event-log',
      good,
      '--json',
    ]);
    assert.equal(r.code, 1, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.error.reason, 'tdx.ccel.rtmr_mismatch');
    // The real TD never extended RTMR 3, nor does this log: only RTMR 0..2 differ.
    assert.deepEqual(out.error.rtmrs, [0, 1, 2]);
  });
});
