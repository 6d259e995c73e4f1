/**
 * TDX CCEL logs: replayRtmrs on a hand-built CCEL log (SHA-384, MR index 1..4 = RTMR 0..3, 0 = MRTD skipped)
 * against RTMRs extended here by hand, and verifyCcelEventLog against a simulated, verified TDX quote: all
 * four RTMRs must match, a mismatch names the RTMR.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  CcelRtmrMismatch,
  TdxVerifier,
  verifyCcelEventLog,
  verifyTdx,
} from '../../../../src/evidence/tdx/index.js';
import { replayRtmrs } from '../../../../src/evidence/tpm/eventlog-replay.js';
import { parseTdxQuote } from '../../../../src/formats/tdx/quote.js';
import { TPM_ALG } from '../../../../src/formats/tpm/constants.js';
import { EV } from '../../../../src/formats/tpm/eventlog/event-types.js';
import { parseEventLog } from '../../../../src/formats/tpm/eventlog/parse.js';
import { SimTdxPlatform } from '../../../../src/sim/tdx/index.js';
import { toHex } from '../../../../src/util/bytes.js';
import { type BuildEvent, buildCcelLog, buildEventLog } from './build.js';

const text = (s: string) => new Uint8Array(Buffer.from(s));
const sha384 = (...parts: Uint8Array[]) => {
  const h = createHash('sha384');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};

/** What a TDVF + shim + GRUB boot logs, by MR index (UEFI 2.10 §38.4.2 MapPcrToMrIndex). */
const EVENTS: BuildEvent[] = [
  { pcr: 1, type: EV.EFI_PLATFORM_FIRMWARE_BLOB2, data: text('TDHOB') },
  { pcr: 1, type: EV.EFI_VARIABLE_DRIVER_CONFIG, data: text('SecureBoot=1') },
  { pcr: 0, type: EV.NO_ACTION, data: text('not extended') },
  { pcr: 1, type: EV.SEPARATOR, data: new Uint8Array(4) },
  { pcr: 2, type: EV.EFI_BOOT_SERVICES_APPLICATION, data: text('shimx64.efi') },
  { pcr: 2, type: EV.EFI_BOOT_SERVICES_APPLICATION, data: text('grubx64.efi') },
  { pcr: 3, type: EV.IPL, data: text('kernel_cmdline: /vmlinuz root=/dev/vda1') },
  { pcr: 4, type: EV.IPL, data: text('runtime') },
];

/** RTMR i extended by hand with SHA-384 of each event's data whose MR index is i + 1. */
function expectedRtmrs(events: readonly BuildEvent[]): Uint8Array[] {
  const r = [0, 1, 2, 3].map(() => new Uint8Array(48));
  for (const e of events) {
    if (e.type === EV.NO_ACTION || e.pcr === 0) continue;
    r[e.pcr - 1] = sha384(r[e.pcr - 1]!, sha384(e.data));
  }
  return r;
}

describe('CCEL: replayRtmrs', () => {
  it('MR index 1..4 extend RTMR 0..3 in SHA-384; EV_NO_ACTION and MR index 0 (MRTD) do not', () => {
    const withMrtd = [...EVENTS, { pcr: 0, type: EV.EFI_PLATFORM_FIRMWARE_BLOB2, data: text('TDVF') }];
    const log = parseEventLog(buildCcelLog(withMrtd, 4096), { trailing: 'padding' });
    assert.equal(log.format, 'crypto-agile');
    assert.deepEqual(
      log.specId?.algorithms.map((a) => a.hashAlg),
      [TPM_ALG.SHA384],
    );
    assert.deepEqual(replayRtmrs(log.events).map(toHex), expectedRtmrs(EVENTS).map(toHex));
  });

  it('an RTMR no event extends replays to 48 zero bytes', () => {
    const only1 = EVENTS.filter((e) => e.pcr === 2);
    const r = replayRtmrs(parseEventLog(buildCcelLog(only1)).events);
    assert.equal(toHex(r[0]), '00'.repeat(48));
    assert.equal(toHex(r[1]), toHex(expectedRtmrs(only1)[1]!));
    assert.equal(toHex(r[3]), '00'.repeat(48));
  });

  it('MR index 5 is refused (eventlog.replay.register); a log without SHA-384 cannot replay', () => {
    const five = parseEventLog(buildCcelLog([{ pcr: 5, type: EV.IPL, data: text('x') }]));
    assert.throws(
      () => replayRtmrs(five.events),
      (e: { reason: string }) => e.reason === 'eventlog.replay.register',
    );
    const sha256 = parseEventLog(buildEventLog(EVENTS, [TPM_ALG.SHA256]));
    assert.throws(
      () => replayRtmrs(sha256.events),
      (e: { reason: string }) => e.reason === 'eventlog.replay.missing_digest',
    );
  });
});

describe('CCEL: verifyCcelEventLog against a verified TDX quote', () => {
  const p = new SimTdxPlatform();
  const verified = (rtmrs: readonly Uint8Array[]) =>
    verifyTdx(parseTdxQuote(p.quote(new Uint8Array(64), { body: { rtmrs } })), {
      collateral: p.collateral(),
      now: new Date(),
      trustedRoots: [p.rootSha256],
      verifier: new TdxVerifier(),
    });
  const good = verified(expectedRtmrs(EVENTS));

  it('a log area (with its 0xff padding) that replays to RTMR 0..3 is verified', () => {
    const v = verifyCcelEventLog(buildCcelLog(EVENTS, 65536), good);
    assert.deepEqual(v.rtmrs.map(toHex), expectedRtmrs(EVENTS).map(toHex));
    assert.equal(v.log.events.length, EVENTS.length + 1);
  });

  for (const i of [0, 1, 2, 3]) {
    it(`a quote whose RTMR${i} differs is refused: tdx.ccel.rtmr_mismatch naming RTMR ${i}`, () => {
      const rtmrs = expectedRtmrs(EVENTS);
      rtmrs[i] = Uint8Array.from(rtmrs[i]!, (b, j) => (j === 0 ? b ^ 1 : b));
      assert.throws(
        () => verifyCcelEventLog(buildCcelLog(EVENTS), verified(rtmrs)),
        (e: unknown) =>
          e instanceof CcelRtmrMismatch &&
          e.code === 'ERR_BINDING_MISMATCH' &&
          e.reason === 'tdx.ccel.rtmr_mismatch' &&
          e.rtmrs.join() === String(i),
      );
    });
  }

  it("a log that leaves out a register's events is refused for that RTMR (all four must match)", () => {
    const noRuntime = EVENTS.filter((e) => e.pcr !== 4);
    assert.throws(
      () => verifyCcelEventLog(buildCcelLog(noRuntime), good),
      (e: unknown) => e instanceof CcelRtmrMismatch && e.rtmrs.join() === '3',
    );
    const reordered = [...EVENTS];
    [reordered[4], reordered[5]] = [reordered[5]!, reordered[4]!];
    assert.throws(
      () => verifyCcelEventLog(buildCcelLog(reordered), good),
      (e: unknown) => e instanceof CcelRtmrMismatch && e.rtmrs.join() === '1',
    );
  });

  it('a log without SHA-384 is refused (tdx.ccel.no_sha384); a malformed log keeps its eventlog reason', () => {
    assert.throws(
      () => verifyCcelEventLog(buildEventLog(EVENTS, [TPM_ALG.SHA256]), good),
      (e: { code: string; reason: string }) =>
        e.code === 'ERR_MALFORMED' && e.reason === 'tdx.ccel.no_sha384',
    );
    const log = buildCcelLog(EVENTS);
    assert.throws(
      () => verifyCcelEventLog(log.subarray(0, log.length - 3), good),
      (e: { reason: string }) => e.reason === 'eventlog.truncated',
    );
    const junk = new Uint8Array(Buffer.concat([log, Buffer.alloc(16, 0xff), Buffer.from([1])]));
    assert.throws(
      () => verifyCcelEventLog(junk, good),
      (e: { code: string }) => e.code === 'ERR_MALFORMED',
    );
  });
});
