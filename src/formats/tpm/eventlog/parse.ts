import { MalformedEvidence } from '../../../errors.js';
import { Reader } from '../../reader.js';
import { EV } from './event-types.js';

/**
 * TCG PC Client event logs, as firmware hands them to the OS (`/sys/kernel/security/tpm0/binary_bios_measurements`,
 * the TPM2 / CCEL ACPI tables). TCG PC Client Platform Firmware Profile (PFP) rev 1.05:
 * - §10.2.1 TCG_PCClientPCREvent: the SHA-1 form every log starts with (and the only form of a SHA-1 log);
 * - §10.2.2 TCG_PCR_EVENT2: the crypto-agile form, one digest per algorithm the log declares;
 * - §10.4.5.1 TCG_EfiSpecIdEvent ("Spec ID Event03"): the first event of a crypto-agile log, declaring the
 *   algorithms and their digest sizes, which are the only way to know where a TCG_PCR_EVENT2 ends.
 *
 * The parser only splits the log into events; decoding an event's data is in decode-event.ts, replay in
 * src/evidence/tpm/eventlog-replay.ts. Every count and size is bounded before anything is allocated.
 */

/** One digest of an event: the algorithm (TPM_ALG_ID) and its bytes (a view into the log). */
export interface EventDigest {
  readonly hashAlg: number;
  readonly digest: Uint8Array;
}

/** One event of the log, in either form. */
export interface LogEvent {
  /** Position in the log, 0 being the first (header) event. */
  readonly index: number;
  /** Byte offset of the event in the log. */
  readonly offset: number;
  readonly pcrIndex: number;
  readonly eventType: number;
  /** One digest (SHA-1) for the SHA-1 form; one per declared algorithm for TCG_PCR_EVENT2. */
  readonly digests: readonly EventDigest[];
  /** The event data (a view into the log). */
  readonly data: Uint8Array;
}

/** An algorithm a crypto-agile log declares (TCG_EfiSpecIdEventAlgorithmSize). */
export interface SpecIdAlgorithm {
  readonly hashAlg: number;
  readonly digestSize: number;
}

/** TCG_EfiSpecIdEvent (PFP §10.4.5.1). */
export interface SpecIdEvent {
  /** `Spec ID Event03` for crypto-agile logs; `Spec ID Event02`/`00` are SHA-1 logs of older profiles. */
  readonly signature: string;
  readonly platformClass: number;
  readonly specVersionMajor: number;
  readonly specVersionMinor: number;
  readonly specErrata: number;
  /** 1 (32-bit UINTN) or 2 (64-bit). */
  readonly uintnSize: number;
  readonly algorithms: readonly SpecIdAlgorithm[];
  readonly vendorInfo: Uint8Array;
}

export interface EventLog {
  /** `crypto-agile`: TCG_PCR_EVENT2 after a Spec ID Event03 header; `sha1`: TCG_PCClientPCREvent throughout. */
  readonly format: 'crypto-agile' | 'sha1';
  /** The first event's Spec ID structure when it has one. */
  readonly specId: SpecIdEvent | null;
  /** Every event, the header event first. */
  readonly events: readonly LogEvent[];
}

export interface ParseEventLogOptions {
  /** Most events accepted (default 16384; real firmware logs have tens to a few hundred). */
  readonly maxEvents?: number;
  /** Largest event data accepted, in bytes (default 1 MiB). */
  readonly maxEventSize?: number;
  /**
   * Unused space after the last event: `reject` (default; the sysfs log ends exactly at its last event:
   * a tail of all 0x00 or all 0xff is `eventlog.trailing_bytes`, any other tail is read as events) or
   * `padding`, which accepts trailing bytes that are all 0x00 or all 0xff (the rest of an ACPI log area such
   * as TDX's CCEL).
   */
  readonly trailing?: 'reject' | 'padding';
}

/** Largest log accepted at all (64 MiB): bounds the work before any event is read. */
export const MAX_EVENT_LOG_SIZE = 64 * 1024 * 1024;

const SPEC_ID_03 = 'Spec ID Event03\0';
const SPEC_ID_PREFIX = 'Spec ID Event';
/** Most algorithms a Spec ID event may declare: there are fewer hash TPM_ALG_IDs than this. */
const MAX_ALGORITHMS = 16;
/** TPM_ALG_IDs of hashes have digests of at most 64 bytes (SHA-512, SHA3-512). */
const MAX_DIGEST_SIZE = 64;

function malformed(reason: string, message: string): MalformedEvidence {
  return new MalformedEvidence(`eventlog.${reason}`, `event log: ${message}`);
}

function ascii(b: Uint8Array): string {
  return Buffer.from(b).toString('latin1');
}

/**
 * Decodes a TCG_EfiSpecIdEvent (PFP §10.4.5.1) from an event's data.
 * Throws MalformedEvidence: `eventlog.spec_id` (bad signature, no or too many algorithms, a digest size
 * that is zero or over 64, an algorithm declared twice), `eventlog.spec_id.truncated`,
 * `eventlog.spec_id.trailing_bytes`.
 */
export function parseSpecIdEvent(data: Uint8Array): SpecIdEvent {
  const r = new Reader(data, 'eventlog.spec_id');
  const signature = ascii(r.bytes(16));
  if (!signature.startsWith(SPEC_ID_PREFIX)) throw malformed('spec_id', 'not a Spec ID event');
  const platformClass = r.u32le();
  const specVersionMinor = r.u8();
  const specVersionMajor = r.u8();
  const specErrata = r.u8();
  const uintnSize = r.u8();
  const algorithms: SpecIdAlgorithm[] = [];
  if (signature === SPEC_ID_03) {
    const n = r.u32le();
    if (n === 0 || n > MAX_ALGORITHMS) throw malformed('spec_id', `${n} algorithms declared`);
    for (let i = 0; i < n; i++) {
      const hashAlg = r.u16le();
      const digestSize = r.u16le();
      if (digestSize === 0 || digestSize > MAX_DIGEST_SIZE) {
        throw malformed(
          'spec_id',
          `algorithm 0x${hashAlg.toString(16)} declares a ${digestSize}-byte digest`,
        );
      }
      if (algorithms.some((a) => a.hashAlg === hashAlg)) {
        throw malformed('spec_id', `algorithm 0x${hashAlg.toString(16)} declared twice`);
      }
      algorithms.push({ hashAlg, digestSize });
    }
  }
  const vendorInfoSize = r.u8();
  const vendorInfo = r.bytes(vendorInfoSize);
  r.end();
  return {
    signature: signature.replace(/\0+$/, ''),
    platformClass,
    specVersionMajor,
    specVersionMinor,
    specErrata,
    uintnSize,
    algorithms,
    vendorInfo,
  };
}

const SHA1 = 0x0004;

/** Reads a TCG_PCClientPCREvent (PFP §10.2.1). */
function readSha1Event(r: Reader, index: number, maxEventSize: number): LogEvent {
  const offset = r.offset;
  const pcrIndex = r.u32le();
  const eventType = r.u32le();
  const digest = r.bytes(20);
  const size = r.u32le();
  if (size > maxEventSize) throw malformed('event_too_large', `event ${index} has ${size} bytes of data`);
  const data = r.bytes(size);
  return { index, offset, pcrIndex, eventType, digests: [{ hashAlg: SHA1, digest }], data };
}

/**
 * Reads a TCG_PCR_EVENT2 (PFP §10.2.2). The digest count must equal the number of algorithms the Spec ID
 * event declares and each algorithm must appear once: PFP §10.2.2 has every event carry a digest per
 * active bank, and a log that skips a bank for some events could hide those events from a verifier that
 * replays that bank.
 */
function readEvent2(
  r: Reader,
  index: number,
  algs: readonly SpecIdAlgorithm[],
  maxEventSize: number,
): LogEvent {
  const offset = r.offset;
  const pcrIndex = r.u32le();
  const eventType = r.u32le();
  const count = r.u32le();
  if (count !== algs.length) {
    throw malformed('digest_count', `event ${index} has ${count} digests, the log declares ${algs.length}`);
  }
  const digests: EventDigest[] = [];
  for (let i = 0; i < count; i++) {
    const hashAlg = r.u16le();
    const alg = algs.find((a) => a.hashAlg === hashAlg);
    if (alg === undefined) {
      throw malformed(
        'digest_alg',
        `event ${index} has a digest of undeclared algorithm 0x${hashAlg.toString(16)}`,
      );
    }
    if (digests.some((d) => d.hashAlg === hashAlg)) {
      throw malformed('digest_alg', `event ${index} has two digests of algorithm 0x${hashAlg.toString(16)}`);
    }
    digests.push({ hashAlg, digest: r.bytes(alg.digestSize) });
  }
  const size = r.u32le();
  if (size > maxEventSize) throw malformed('event_too_large', `event ${index} has ${size} bytes of data`);
  const data = r.bytes(size);
  return { index, offset, pcrIndex, eventType, digests, data };
}

function isPadding(b: Uint8Array): boolean {
  const first = b[0];
  if (first !== 0x00 && first !== 0xff) return false;
  for (const x of b) if (x !== first) return false;
  return true;
}

/**
 * Splits a TCG PC Client event log into its events. A log whose first event is an EV_NO_ACTION carrying a
 * `Spec ID Event03` structure is crypto-agile (TCG_PCR_EVENT2 after it); any other log is read as SHA-1
 * TCG_PCClientPCREvents throughout.
 *
 * Throws MalformedEvidence: `eventlog.empty`, `eventlog.too_large` (over 64 MiB), `eventlog.truncated`,
 * `eventlog.too_many_events`, `eventlog.event_too_large`, `eventlog.digest_count`, `eventlog.digest_alg`,
 * `eventlog.trailing_bytes`, and parseSpecIdEvent's reasons for a malformed Spec ID event.
 */
export function parseEventLog(log: Uint8Array, options: ParseEventLogOptions = {}): EventLog {
  const maxEvents = options.maxEvents ?? 16384;
  const maxEventSize = options.maxEventSize ?? 1024 * 1024;
  if (log.length === 0) throw malformed('empty', 'no events');
  if (log.length > MAX_EVENT_LOG_SIZE) throw malformed('too_large', `${log.length} bytes`);
  const r = new Reader(log, 'eventlog');
  const header = readSha1Event(r, 0, maxEventSize);
  let specId: SpecIdEvent | null = null;
  if (
    header.pcrIndex === 0 &&
    header.eventType === EV.NO_ACTION &&
    ascii(header.data.subarray(0, 13)) === SPEC_ID_PREFIX
  ) {
    specId = parseSpecIdEvent(header.data);
  }
  const agile = specId !== null && specId.algorithms.length > 0;
  const events: LogEvent[] = [header];
  while (r.remaining > 0) {
    // A tail of one repeated 0x00/0xff byte is the unused rest of a log area, not an event: accepted only
    // when asked for, and otherwise refused as what it is rather than as a malformed event it does not hold.
    if (isPadding(log.subarray(r.offset))) {
      if (options.trailing === 'padding') break;
      throw malformed('trailing_bytes', `${r.remaining} bytes of padding after event ${events.length - 1}`);
    }
    if (events.length >= maxEvents) throw malformed('too_many_events', `more than ${maxEvents} events`);
    events.push(
      agile
        ? readEvent2(r, events.length, specId!.algorithms, maxEventSize)
        : readSha1Event(r, events.length, maxEventSize),
    );
  }
  return { format: agile ? 'crypto-agile' : 'sha1', specId, events };
}
