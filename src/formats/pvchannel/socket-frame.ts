import { MalformedEvidence } from '../../errors.js';
import { Reader, Writer } from '../reader.js';
import { PAGE_SIZE } from './constants.js';

/**
 * Framing of the `vouchsafe vmm-device` unix socket between a VMM and the device process (docs/pvchannel.md
 * §8): a 12-byte header (type u16, reserved u16, id u32, bodyLength u32, little-endian) and a body whose size
 * each type fixes.
 */
export const SocketFrameType = {
  Doorbell: 0x0001,
  PortWrite: 0x0002,
  PortRead: 0x0003,
  Completion: 0x0004,
  Page: 0x0081,
  PortAck: 0x0082,
  PortValue: 0x0083,
  Error: 0x00ff,
} as const;
export type SocketFrameType = (typeof SocketFrameType)[keyof typeof SocketFrameType];

export const SOCKET_HEADER_SIZE = 12;
/** Largest body of any frame type (an ERROR's reason text included). */
export const MAX_SOCKET_BODY = PAGE_SIZE + 8;

/** Allowed body sizes per type: an exact size, or `[min, max]`. */
const BODY_SIZE: Readonly<Record<number, number | readonly [number, number]>> = Object.freeze(
  Object.assign(Object.create(null) as Record<number, number | readonly [number, number]>, {
    [SocketFrameType.Doorbell]: PAGE_SIZE,
    [SocketFrameType.PortWrite]: 8,
    [SocketFrameType.PortRead]: 4,
    [SocketFrameType.Completion]: 0,
    [SocketFrameType.Page]: PAGE_SIZE,
    [SocketFrameType.PortAck]: 0,
    [SocketFrameType.PortValue]: 4,
    [SocketFrameType.Error]: [0, 256] as const,
  }),
);

export interface SocketFrame {
  readonly type: SocketFrameType;
  readonly id: number;
  readonly body: Uint8Array;
}

/** A port access carried by PORT_WRITE / PORT_READ. */
export interface PortAccess {
  readonly port: number;
  /** 1, 2 or 4 bytes. */
  readonly size: number;
  /** PORT_WRITE only. */
  readonly value?: number;
}

/**
 * Decodes a frame header and checks the body length against its type before any body byte is read.
 * Throws MalformedEvidence `vmmdev.frame.{truncated,type,reserved_nonzero,length}`.
 */
export function decodeSocketHeader(b: Uint8Array): { type: SocketFrameType; id: number; bodyLength: number } {
  const r = new Reader(b.subarray(0, SOCKET_HEADER_SIZE), 'vmmdev.frame');
  const type = r.u16le();
  r.mbz(2, '0x2');
  const id = r.u32le();
  const bodyLength = r.u32le();
  const want = BODY_SIZE[type];
  if (want === undefined) throw new MalformedEvidence('vmmdev.frame.type', `unknown frame type ${type}`);
  const ok = typeof want === 'number' ? bodyLength === want : bodyLength >= want[0] && bodyLength <= want[1];
  if (!ok)
    throw new MalformedEvidence('vmmdev.frame.length', `frame type ${type} with a ${bodyLength}-byte body`);
  return { type: type as SocketFrameType, id, bodyLength };
}

/** Encodes one frame; refuses (`vmmdev.frame.length`) a body of the wrong size for its type. */
export function encodeSocketFrame(f: SocketFrame): Uint8Array {
  const w = new Writer(SOCKET_HEADER_SIZE + f.body.length);
  w.u16le(f.type).u16le(0).u32le(f.id).u32le(f.body.length).bytes(f.body);
  decodeSocketHeader(w.buf); // the same checks as the receiver: never send what the peer must refuse
  return w.buf;
}

/** Decodes a PORT_WRITE (8 bytes) or PORT_READ (4 bytes) body. Throws `vmmdev.port.*`. */
export function decodePortAccess(body: Uint8Array): PortAccess {
  const r = new Reader(body, 'vmmdev.port');
  const port = r.u16le();
  const size = r.u8();
  r.mbz(1, '0x3');
  if (size !== 1 && size !== 2 && size !== 4)
    throw new MalformedEvidence('vmmdev.port.size', `access size ${size}`);
  if (r.remaining === 0) return { port, size };
  const value = r.u32le();
  r.end();
  return { port, size, value };
}

/** Encodes a port access body (with `value`: PORT_WRITE; without: PORT_READ). */
export function encodePortAccess(a: PortAccess): Uint8Array {
  const w = new Writer(a.value === undefined ? 4 : 8).u16le(a.port).u8(a.size).u8(0);
  if (a.value !== undefined) w.u32le(a.value);
  return w.buf;
}

/**
 * Incremental decoder for the socket stream: push received bytes, pull whole frames. It holds at most one
 * header and one bounded body plus what the peer sent ahead, and refuses (`vmmdev.frame.flood`) a peer that
 * is more than `slack` bytes ahead. Once failed it stays failed (the connection is closed).
 */
export class SocketFrameDecoder {
  private buf = new Uint8Array(0);
  private failed: MalformedEvidence | undefined;

  constructor(private readonly slack = 16 * (SOCKET_HEADER_SIZE + MAX_SOCKET_BODY)) {}

  push(chunk: Uint8Array): void {
    if (this.failed) throw this.failed;
    const next = new Uint8Array(this.buf.length + chunk.length);
    next.set(this.buf);
    next.set(chunk, this.buf.length);
    this.buf = next;
    if (this.buf.length > this.slack)
      this.fail(new MalformedEvidence('vmmdev.frame.flood', 'peer far ahead'));
  }

  /** The next whole frame, or undefined until more bytes arrive. */
  next(): SocketFrame | undefined {
    if (this.failed) throw this.failed;
    if (this.buf.length < SOCKET_HEADER_SIZE) return undefined;
    let h: ReturnType<typeof decodeSocketHeader>;
    try {
      h = decodeSocketHeader(this.buf);
    } catch (e) {
      this.fail(e as MalformedEvidence);
    }
    const end = SOCKET_HEADER_SIZE + h.bodyLength;
    if (this.buf.length < end) return undefined;
    const body = this.buf.slice(SOCKET_HEADER_SIZE, end);
    this.buf = this.buf.slice(end);
    return { type: h.type, id: h.id, body };
  }

  private fail(e: MalformedEvidence): never {
    this.failed = e;
    throw e;
  }
}
