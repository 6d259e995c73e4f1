import { MalformedEvidence } from '../../errors.js';
import { Reader, Writer } from '../reader.js';
import {
  HEADER_SIZE,
  MAX_PAYLOAD,
  PAGE_SIZE,
  PV_FLAGS_DEFINED,
  PV_MAGIC,
  PV_VERSION,
  PvStatus,
} from './constants.js';

/**
 * One pvchannel message: the header fields and the payload (docs/pvchannel.md §2). The same value travels as
 * a 4096-byte page (page path) or as a header+payload record (port-only path).
 */
export interface PvMessage {
  readonly version: number;
  readonly flags: number;
  readonly callId: number;
  readonly status: number;
  readonly sequence: number;
  readonly epoch: number;
  readonly chunk: number;
  readonly payload: Uint8Array;
}

/** The fields of a message header before its payload is read. */
type Header = Omit<PvMessage, 'payload'> & { readonly payloadLength: number };

/** Reads and checks the 32-byte header (§2): magic, version, reserved flags and bytes, payload bound. */
function readHeader(r: Reader, what: string, versions: readonly number[]): Header {
  const magic = r.at(0x00).u32le();
  if (magic !== PV_MAGIC) throw new MalformedEvidence(`${what}.magic`, `${what}: bad magic`);
  const version = r.u16le();
  const flags = r.u16le();
  // Spec §2: flag bits 2..15 are reserved and zero.
  if ((flags & ~PV_FLAGS_DEFINED) !== 0) {
    throw new MalformedEvidence(`${what}.flags`, `${what}: reserved flag bits set`);
  }
  const callId = r.u16le();
  const status = r.u16le();
  const sequence = r.u32le();
  const epoch = r.u32le();
  const chunk = r.u16le();
  r.mbz(2, '0x16');
  const payloadLength = r.u32le();
  r.mbz(4, '0x1c');
  // Spec §2: the payload is bounded by the page, whatever the length field says.
  if (payloadLength > MAX_PAYLOAD) {
    throw new MalformedEvidence(
      `${what}.length`,
      `${what}: payload length ${payloadLength} over ${MAX_PAYLOAD}`,
    );
  }
  // Checked last so that a garbage page is MALFORMED, and only a well-formed header of another version is BAD_VERSION.
  if (!versions.includes(version)) {
    throw new MalformedEvidence(`${what}.version`, `${what}: version ${version} not spoken`);
  }
  return { version, flags, callId, status, sequence, epoch, chunk, payloadLength };
}

/**
 * Decodes a request/answer page (§2): exactly 4096 bytes, header checks, payload copied out, padding after the
 * payload must be zero. The payload is a copy: the page is shared memory the other side may change.
 *
 * Throws MalformedEvidence `pvchannel.page.{truncated,magic,flags,reserved_nonzero,length,version,padding}`.
 */
export function decodePage(page: Uint8Array, versions: readonly number[] = [PV_VERSION]): PvMessage {
  const what = 'pvchannel.page';
  if (page.length !== PAGE_SIZE) {
    throw new MalformedEvidence(`${what}.truncated`, `${what}: ${page.length} bytes, not ${PAGE_SIZE}`);
  }
  // One read of shared memory (no double fetch): everything below looks at this private copy.
  const copy = Uint8Array.from(page);
  const r = new Reader(copy, what);
  const h = readHeader(r, what, versions);
  const payload = r.at(HEADER_SIZE).bytes(h.payloadLength);
  for (let i = HEADER_SIZE + h.payloadLength; i < PAGE_SIZE; i++) {
    if (copy[i] !== 0)
      throw new MalformedEvidence(`${what}.padding`, `${what}: nonzero byte after the payload`);
  }
  return messageOf(h, payload);
}

/**
 * Decodes a port-only record (§5): header + payload with no padding; its length must be exactly
 * 32 + payloadLength. Throws MalformedEvidence `pvchannel.record.*` (the reasons of {@link decodePage},
 * `trailing_bytes` instead of `padding`).
 */
export function decodeRecord(record: Uint8Array, versions: readonly number[] = [PV_VERSION]): PvMessage {
  const what = 'pvchannel.record';
  if (record.length > PAGE_SIZE) {
    throw new MalformedEvidence(`${what}.length`, `${what}: ${record.length} bytes, over ${PAGE_SIZE}`);
  }
  const copy = Uint8Array.from(record);
  const r = new Reader(copy, what);
  const h = readHeader(r, what, versions);
  const payload = r.at(HEADER_SIZE).bytes(h.payloadLength);
  r.end();
  return messageOf(h, payload);
}

function messageOf(h: Header, payload: Uint8Array): PvMessage {
  const { payloadLength: _, ...fields } = h;
  return { ...fields, payload };
}

function writeHeader(w: Writer, m: PvMessage): void {
  w.at(0).u32le(PV_MAGIC).u16le(m.version).u16le(m.flags).u16le(m.callId).u16le(m.status);
  w.u32le(m.sequence).u32le(m.epoch).u16le(m.chunk).u16le(0).u32le(m.payload.length).u32le(0);
}

function checkEncodable(m: PvMessage): void {
  if (m.payload.length > MAX_PAYLOAD) {
    throw new MalformedEvidence(
      'pvchannel.encode.length',
      `payload of ${m.payload.length} bytes over ${MAX_PAYLOAD}`,
    );
  }
  if ((m.flags & ~PV_FLAGS_DEFINED) !== 0)
    throw new MalformedEvidence('pvchannel.encode.flags', 'reserved flag bits');
}

/** Encodes a message as a zero-padded 4096-byte page. Throws `pvchannel.encode.{length,flags}`. */
export function encodePage(m: PvMessage): Uint8Array {
  checkEncodable(m);
  const w = new Writer(PAGE_SIZE);
  writeHeader(w, m);
  w.at(HEADER_SIZE).bytes(m.payload);
  return w.buf;
}

/** Encodes a message as a port-only record (header + payload, no padding). */
export function encodeRecord(m: PvMessage): Uint8Array {
  checkEncodable(m);
  const w = new Writer(HEADER_SIZE + m.payload.length);
  writeHeader(w, m);
  w.at(HEADER_SIZE).bytes(m.payload);
  return w.buf;
}

/** A request message with the defaults a guest starts from (status REQUEST, version 1, no flags). */
export function requestMessage(
  fields: Partial<PvMessage> & Pick<PvMessage, 'callId' | 'sequence' | 'epoch'>,
): PvMessage {
  return {
    version: PV_VERSION,
    flags: 0,
    status: PvStatus.Request,
    chunk: 0,
    payload: new Uint8Array(0),
    ...fields,
  };
}
