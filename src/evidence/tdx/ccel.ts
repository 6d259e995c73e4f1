import { BindingMismatch, MalformedEvidence } from '../../errors.js';
import { TPM_ALG } from '../../formats/tpm/constants.js';
import { type EventLog, parseEventLog } from '../../formats/tpm/eventlog/parse.js';
import { ctEqual, toHex } from '../../util/bytes.js';
import { replayRtmrs } from '../tpm/eventlog-replay.js';
import type { TdxVerified } from './verify.js';

/**
 * A TDX guest's CCEL event log (the ACPI "CCEL" table's log area: TCG2 crypto-agile events, SHA-384, each
 * naming an MR index) checked against the RTMRs of a verified quote. UEFI 2.10 §38.4 (EFI_CC_MEASUREMENT
 * _PROTOCOL: MR index 0 = MRTD, 1..4 = RTMR 0..3), Intel TDX GHCI §4.3 (the CCEL table), TCG PC Client PFP
 * rev 1.05 §10.2.2 (the event format). RTMRs are extend-only registers the TDX module keeps; the quote's body
 * carries their values signed, so a log that replays to all four is the log of the measurements the TD made.
 */

/** A CCEL log whose replay equals the quote's RTMR 0..3: its events are evidence. */
export interface VerifiedCcelLog {
  readonly log: EventLog;
  /** The replayed (and quoted) RTMR 0..3. */
  readonly rtmrs: readonly [Uint8Array, Uint8Array, Uint8Array, Uint8Array];
}

/**
 * The log does not replay to the quote. `rtmrs` names every RTMR index (0..3) that differs, so the caller
 * can tell which boot stage disagrees (RTMR 0: firmware configuration, 1: boot loader and kernel, 2: OS,
 * 3: runtime).
 */
export class CcelRtmrMismatch extends BindingMismatch {
  readonly rtmrs: readonly number[];

  constructor(rtmrs: readonly number[], message: string) {
    super('tdx.ccel.rtmr_mismatch', message);
    this.rtmrs = rtmrs;
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), rtmrs: this.rtmrs };
  }
}

/**
 * Parses a CCEL event log (the whole log area: trailing 0x00/0xff padding accepted), replays it into RTMR
 * 0..3 and compares all four with the verified quote's RTMRs, in constant time. All four must match: an
 * RTMR no event extends must be zero in the quote too, so a log cannot leave out a register's events.
 *
 * Throws MalformedEvidence: `tdx.ccel.no_sha384` (not a crypto-agile log declaring SHA-384), parseEventLog's
 * `eventlog.*` reasons, `eventlog.replay.register` (an MR index above 4); CcelRtmrMismatch (BindingMismatch
 * `tdx.ccel.rtmr_mismatch`, with the differing RTMR indexes).
 */
export function verifyCcelEventLog(ccel: Uint8Array, verified: Pick<TdxVerified, 'quote'>): VerifiedCcelLog {
  const log = parseEventLog(ccel, { trailing: 'padding' });
  // CCEL logs are TCG2 crypto-agile with SHA-384, the RTMRs' hash (GHCI §4.3): a SHA-1 log cannot be replayed.
  if (log.format !== 'crypto-agile' || !log.specId?.algorithms.some((a) => a.hashAlg === TPM_ALG.SHA384)) {
    throw new MalformedEvidence('tdx.ccel.no_sha384', 'CCEL event log: not a crypto-agile log with SHA-384');
  }
  const rtmrs = replayRtmrs(log.events);
  const quoted = verified.quote.body.rtmrs;
  const differ: number[] = [];
  const detail: string[] = [];
  for (let i = 0; i < 4; i++) {
    if (!ctEqual(rtmrs[i]!, quoted[i]!)) {
      differ.push(i);
      detail.push(`RTMR${i} replays to ${toHex(rtmrs[i]!)}, quoted ${toHex(quoted[i]!)}`);
    }
  }
  if (differ.length > 0) {
    throw new CcelRtmrMismatch(differ, `CCEL event log does not match the quote: ${detail.join('; ')}`);
  }
  return { log, rtmrs };
}
