import { createHash } from 'node:crypto';
import { MalformedEvidence } from '../../errors.js';
import { HASH_ALGS, TPM_ALG } from '../../formats/tpm/constants.js';
import { EV } from '../../formats/tpm/eventlog/event-types.js';
import type { EventLog, LogEvent } from '../../formats/tpm/eventlog/parse.js';

/**
 * Replay of a measured-boot event log: every extend the firmware and boot loaders made, recomputed.
 * TPM 2.0 Library Part 1 §17.5 (PCR extend: new = H(old ‖ digest)); TCG PC Client PFP rev 1.05 §10.4.5.3
 * (StartupLocality) and §3.3.4.1 (PCR 0 starts at the startup locality), §10.2.2 (EV_NO_ACTION events are
 * not extended). The same function replays TDX RTMRs from a CCEL log (Intel TDX Guest-Host Communication
 * Interface §4.3 / UEFI 2.10 §38.4.2: MR index 1..4 is RTMR 0..3).
 */

/** The replayed value of every register a log extends, in one bank. */
export interface ReplayedBank {
  readonly hashAlg: number;
  /** Register index -> replayed value, for the registers the log extends (or sets the locality of). */
  readonly pcrs: ReadonlyMap<number, Uint8Array>;
}

/** How to replay one bank: which digest, how many registers, and which register an event's index names. */
export interface RegisterSet {
  readonly hashAlg: number;
  /** Number of registers (24 PCRs; 4 RTMRs). */
  readonly count: number;
  /**
   * The register an event's `pcrIndex` field names, or `undefined` for an event that extends none of them
   * (TDX: MR index 0 is MRTD, measured by the TDX module, not by an event). Default: the index itself.
   */
  readonly registerOf?: (pcrIndex: number) => number | undefined;
  /** Whether PCR 0 starts at the locality a StartupLocality event gives (PCs, not TDX). Default false. */
  readonly startupLocality?: boolean;
}

const STARTUP_LOCALITY = Buffer.from('StartupLocality\0', 'latin1');

function startupLocalityOf(e: LogEvent): number | undefined {
  if (e.eventType !== EV.NO_ACTION || e.pcrIndex !== 0) return undefined;
  if (e.data.length !== 17 || !Buffer.from(e.data.subarray(0, 16)).equals(STARTUP_LOCALITY)) return undefined;
  return e.data[16];
}

/**
 * Replays events into one register set. Throws MalformedEvidence: `eventlog.replay.hash_alg` (a hash this
 * build cannot compute), `eventlog.replay.missing_digest` (an extending event has no digest in this bank),
 * `eventlog.replay.register` (an event names a register outside the set).
 */
export function replayRegisters(events: readonly LogEvent[], set: RegisterSet): ReplayedBank {
  const h = HASH_ALGS[set.hashAlg];
  if (h === undefined) {
    throw new MalformedEvidence(
      'eventlog.replay.hash_alg',
      `cannot replay bank 0x${set.hashAlg.toString(16)}`,
    );
  }
  const regs = new Map<number, Uint8Array>();
  for (const e of events) {
    if (e.eventType === EV.NO_ACTION) {
      // EV_NO_ACTION is never extended (PFP §10.4.1); a StartupLocality event sets PCR 0's reset value.
      const locality = set.startupLocality ? startupLocalityOf(e) : undefined;
      if (locality !== undefined && !regs.has(0)) {
        const v = new Uint8Array(h.size);
        v[h.size - 1] = locality;
        regs.set(0, v);
      }
      continue;
    }
    const reg = set.registerOf ? set.registerOf(e.pcrIndex) : e.pcrIndex;
    if (reg === undefined) continue;
    if (!Number.isInteger(reg) || reg < 0 || reg >= set.count) {
      throw new MalformedEvidence(
        'eventlog.replay.register',
        `event ${e.index} extends register ${e.pcrIndex}, outside 0..${set.count - 1}`,
      );
    }
    const d = e.digests.find((x) => x.hashAlg === set.hashAlg);
    if (d === undefined || d.digest.length !== h.size) {
      throw new MalformedEvidence(
        'eventlog.replay.missing_digest',
        `event ${e.index} has no ${h.name} digest`,
      );
    }
    const old = regs.get(reg) ?? new Uint8Array(h.size);
    regs.set(reg, new Uint8Array(createHash(h.node).update(old).update(d.digest).digest()));
  }
  return { hashAlg: set.hashAlg, pcrs: regs };
}

/**
 * Replays a PC Client log into every bank it carries that node:crypto can compute (a crypto-agile log's
 * declared algorithms; SHA-1 for a SHA-1 log), 24 PCRs each, PCR 0 starting at the startup locality.
 * Banks of algorithms this build cannot hash (SM3) are left out. Throws as replayRegisters does.
 */
export function replayEventLog(log: EventLog): ReplayedBank[] {
  const algs =
    log.format === 'crypto-agile' && log.specId
      ? log.specId.algorithms.map((a) => a.hashAlg)
      : [TPM_ALG.SHA1];
  return algs
    .filter((a) => HASH_ALGS[a] !== undefined)
    .map((hashAlg) => replayRegisters(log.events, { hashAlg, count: 24, startupLocality: true }));
}

/**
 * The four TDX RTMRs a CCEL event log replays to (SHA-384, each starting at zero). CCEL events name
 * measurement registers by MR index: 0 is MRTD (not extended by events; skipped), 1..4 are RTMR 0..3
 * (UEFI 2.10 §38.4.2 EFI_CC_MEASUREMENT_PROTOCOL MapPcrToMrIndex; TDX GHCI §4.3). Registers no event
 * extends are 48 zero bytes. Throws MalformedEvidence as replayRegisters does (`eventlog.replay.register`
 * for an MR index above 4, `eventlog.replay.missing_digest` for an event without a SHA-384 digest).
 */
export function replayRtmrs(events: readonly LogEvent[]): [Uint8Array, Uint8Array, Uint8Array, Uint8Array] {
  const bank = replayRegisters(events, {
    hashAlg: TPM_ALG.SHA384,
    count: 4,
    registerOf: (mr) => (mr === 0 ? undefined : mr - 1),
  });
  const rtmr = (i: number) => bank.pcrs.get(i) ?? new Uint8Array(48);
  return [rtmr(0), rtmr(1), rtmr(2), rtmr(3)];
}
