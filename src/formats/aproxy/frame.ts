import { MalformedEvidence } from '../../errors.js';

/**
 * aproxy framing (reference svsm-protocol.md §2): every message is an 8-byte length (`usize::to_ne_bytes`,
 * i.e. u64 little-endian on x86_64) followed by that many bytes of serde_json. aproxy itself allocates
 * whatever the prefix claims; we cap a frame at {@link MAX_FRAME_SIZE} and reject a larger claim as soon
 * as the 8 prefix bytes arrive, before reading or allocating the payload.
 *
 * Errors: MalformedEvidence `aproxy.frame.too_large`, `aproxy.frame.truncated` (EOF inside a frame),
 * `aproxy.frame.flood` (a peer sending far ahead of the lock-step protocol).
 */
export const MAX_FRAME_SIZE = 1024 * 1024;
export const FRAME_HEADER_SIZE = 8;

/** Reads the length prefix; throws `aproxy.frame.too_large` for a claim above `max`. */
export function decodeFrameHeader(header: Uint8Array, max = MAX_FRAME_SIZE): number {
  if (header.length < FRAME_HEADER_SIZE) {
    throw new MalformedEvidence('aproxy.frame.truncated', 'frame header needs 8 bytes');
  }
  const view = new DataView(header.buffer, header.byteOffset, FRAME_HEADER_SIZE);
  const len = view.getBigUint64(0, true);
  if (len > BigInt(max)) {
    throw new MalformedEvidence('aproxy.frame.too_large', `frame claims ${len} bytes, limit ${max}`);
  }
  return Number(len);
}

/** Prefixes a payload with its u64 little-endian length; refuses (`aproxy.frame.too_large`) to build an oversized frame. */
export function encodeFrame(payload: Uint8Array, max = MAX_FRAME_SIZE): Uint8Array {
  if (payload.length > max) {
    throw new MalformedEvidence('aproxy.frame.too_large', `frame of ${payload.length} bytes, limit ${max}`);
  }
  const out = new Uint8Array(FRAME_HEADER_SIZE + payload.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(payload.length), true);
  out.set(payload, FRAME_HEADER_SIZE);
  return out;
}

/**
 * Incremental frame decoder: push chunks as they arrive, pull whole frames. Pure (no I/O) so that tests can
 * drive it with arbitrary chunkings. It buffers at most one frame plus `slack` bytes beyond it; a peer that
 * sends more than that ahead of the protocol is refused (`aproxy.frame.flood`).
 */
export class FrameDecoder {
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  /** The length of the frame being collected, once its header is in. */
  private want: number | undefined;
  private failed: MalformedEvidence | undefined;

  constructor(
    private readonly max = MAX_FRAME_SIZE,
    private readonly slack = MAX_FRAME_SIZE + FRAME_HEADER_SIZE,
  ) {}

  /** Bytes received but not yet returned as frames. */
  get pending(): number {
    return this.buffered;
  }

  /** Adds received bytes. Throws (and stays failed) once the input is known to be invalid. */
  push(chunk: Uint8Array): void {
    if (this.failed) throw this.failed;
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    try {
      this.readHeader();
      if (this.buffered > FRAME_HEADER_SIZE + (this.want ?? 0) + this.slack) {
        throw new MalformedEvidence(
          'aproxy.frame.flood',
          `peer sent ${this.buffered} bytes ahead of the protocol`,
        );
      }
    } catch (e) {
      this.failed = e as MalformedEvidence;
      throw e;
    }
  }

  /** Returns the next complete frame's payload, or undefined if more bytes are needed. */
  next(): Uint8Array | undefined {
    if (this.failed) throw this.failed;
    this.readHeader();
    if (this.want === undefined || this.buffered < FRAME_HEADER_SIZE + this.want) return undefined;
    const all = this.take(FRAME_HEADER_SIZE + this.want);
    this.want = undefined;
    try {
      this.readHeader();
    } catch (e) {
      this.failed = e as MalformedEvidence;
    }
    return all.subarray(FRAME_HEADER_SIZE);
  }

  /** Call at EOF: throws `aproxy.frame.truncated` if a partial frame is pending. */
  end(): void {
    if (this.failed) throw this.failed;
    if (this.buffered > 0) {
      throw new MalformedEvidence(
        'aproxy.frame.truncated',
        `connection closed inside a frame (${this.buffered} bytes pending)`,
      );
    }
  }

  private readHeader(): void {
    if (this.want !== undefined || this.buffered < FRAME_HEADER_SIZE) return;
    const head = this.peek(FRAME_HEADER_SIZE);
    this.want = decodeFrameHeader(head, this.max);
  }

  private peek(n: number): Uint8Array {
    const first = this.chunks[0]!;
    if (first.length >= n) return first.subarray(0, n);
    this.coalesce();
    return this.chunks[0]!.subarray(0, n);
  }

  private coalesce(): void {
    const all = new Uint8Array(this.buffered);
    let off = 0;
    for (const c of this.chunks) {
      all.set(c, off);
      off += c.length;
    }
    this.chunks = [all];
  }

  private take(n: number): Uint8Array {
    if (this.chunks[0]!.length < n) this.coalesce();
    const first = this.chunks[0]!;
    const out = first.slice(0, n);
    if (first.length === n) this.chunks.shift();
    else this.chunks[0] = first.subarray(n);
    this.buffered -= n;
    return out;
  }
}
