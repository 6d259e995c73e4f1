import { MalformedEvidence } from '../../errors.js';
import { MAX_FRAME_SIZE } from '../aproxy/frame.js';
import { Reader, Writer } from '../reader.js';

/**
 * KEY_RELEASE payloads (docs/pvchannel.md §7.4): attestation-proxy messages (protocol 0.1.0 and 0.2.0, and
 * the dialects, byte for byte as they travel on vsock port 1995 without the 8-byte frame length) carried over
 * the channel. A **stream** is one aproxy connection: the guest picks its id; the device opens a connection
 * to the proxy on the stream's first MESSAGE and ends it on CLOSE. Each MESSAGE is answered by the proxy's
 * next message on that connection (the aproxy protocol is strictly one reply per message), or CLOSED when the
 * proxy ended the connection instead.
 *
 * Request:  0x0 u8 op (1 MESSAGE, 2 CLOSE), 0x1 u8 reserved, 0x2 u16 reserved, 0x4 u32 stream, 0x8 message
 *           (MESSAGE: 1..1 MiB; CLOSE: empty)
 * Answer:   0x0 u8 kind (1 REPLY, 2 CLOSED), 0x1 u8 reserved, 0x2 u16 reserved, 0x4 u32 stream (echoed),
 *           0x8 the proxy's message (REPLY: 1..1 MiB; CLOSED: empty)
 */
export const KeyReleaseOp = { Message: 1, Close: 2 } as const;
export const KeyReleaseKind = { Reply: 1, Closed: 2 } as const;
export const KEY_RELEASE_HEADER = 8;

export interface KeyReleaseRequest {
  readonly op: (typeof KeyReleaseOp)[keyof typeof KeyReleaseOp];
  readonly stream: number;
  readonly message: Uint8Array;
}

export interface KeyReleaseAnswer {
  readonly kind: (typeof KeyReleaseKind)[keyof typeof KeyReleaseKind];
  readonly stream: number;
  readonly message: Uint8Array;
}

function decode(
  b: Uint8Array,
  what: string,
  first: 1 | 2,
): { tag: number; stream: number; message: Uint8Array } {
  const r = new Reader(b, what);
  const tag = r.u8();
  r.mbz(3, '0x1');
  const stream = r.u32le();
  const message = Uint8Array.from(r.bytes(r.remaining));
  if (tag !== 1 && tag !== 2) throw new MalformedEvidence(`${what}.op`, `${what}: unknown op ${tag}`);
  if (tag === first && (message.length === 0 || message.length > MAX_FRAME_SIZE)) {
    throw new MalformedEvidence(`${what}.length`, `${what}: a message of ${message.length} bytes`);
  }
  if (tag !== first && message.length !== 0) {
    throw new MalformedEvidence(
      `${what}.length`,
      `${what}: ${tag === 2 ? 'CLOSE/CLOSED' : ''} carries bytes`,
    );
  }
  return { tag, stream, message };
}

function encode(tag: number, stream: number, message: Uint8Array): Uint8Array {
  return new Writer(KEY_RELEASE_HEADER + message.length).u8(tag).u8(0).u16le(0).u32le(stream).bytes(message)
    .buf;
}

/** Decodes a KEY_RELEASE request. Throws MalformedEvidence `pvchannel.key_release.*`. */
export function decodeKeyReleaseRequest(b: Uint8Array): KeyReleaseRequest {
  const d = decode(b, 'pvchannel.key_release', 1);
  return { op: d.tag as KeyReleaseRequest['op'], stream: d.stream, message: d.message };
}

export function encodeKeyReleaseRequest(q: KeyReleaseRequest): Uint8Array {
  return encode(q.op, q.stream, q.message);
}

/** Decodes a KEY_RELEASE answer. Throws MalformedEvidence `pvchannel.key_release_answer.*`. */
export function decodeKeyReleaseAnswer(b: Uint8Array): KeyReleaseAnswer {
  const d = decode(b, 'pvchannel.key_release_answer', 1);
  return { kind: d.tag as KeyReleaseAnswer['kind'], stream: d.stream, message: d.message };
}

export function encodeKeyReleaseAnswer(a: KeyReleaseAnswer): Uint8Array {
  return encode(a.kind, a.stream, a.message);
}
