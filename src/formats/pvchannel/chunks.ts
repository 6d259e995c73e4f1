import { MalformedEvidence } from '../../errors.js';
import { DEFAULT_MAX_MESSAGE, MAX_PAYLOAD } from './constants.js';

/**
 * Splits a message body into chunk payloads of at most {@link MAX_PAYLOAD} bytes (docs/pvchannel.md §3). An
 * empty body is one empty chunk. Chunk indexes are u16, so a body needs at most 65536 chunks.
 */
export function splitChunks(body: Uint8Array, max = DEFAULT_MAX_MESSAGE): Uint8Array[] {
  if (body.length > max) {
    throw new MalformedEvidence('pvchannel.chunk.too_large', `message of ${body.length} bytes over ${max}`);
  }
  if (body.length === 0) return [new Uint8Array(0)];
  const out: Uint8Array[] = [];
  for (let i = 0; i < body.length; i += MAX_PAYLOAD) out.push(body.subarray(i, i + MAX_PAYLOAD));
  if (out.length > 0x10000) throw new MalformedEvidence('pvchannel.chunk.too_many', 'over 65536 chunks');
  return out;
}

/** What identifies one chunked message: every chunk after the first must repeat it. */
interface ChunkKey {
  readonly callId: number;
  readonly epoch: number;
}

/**
 * Reassembles one chunked message with explicit continuation (§3): chunks must arrive with indexes 0, 1, 2,
 * ... and the call id and epoch of chunk 0; the message ends at the first chunk without `more`. There is no
 * declared total: the assembler refuses as soon as the bytes collected pass `max`, so a hostile sender
 * cannot make it allocate more than `max` however its chunks are labelled. After a refusal it is empty again.
 *
 * Throws MalformedEvidence `pvchannel.chunk.{sequence,too_large}`.
 */
export class ChunkAssembler {
  private parts: Uint8Array[] = [];
  private size = 0;
  private key: ChunkKey | undefined;

  constructor(private readonly max = DEFAULT_MAX_MESSAGE) {}

  /** True while a message has started and not ended. */
  get inProgress(): boolean {
    return this.key !== undefined;
  }

  /** Drops a partial message (a re-negotiation, an epoch change). */
  reset(): void {
    this.parts = [];
    this.size = 0;
    this.key = undefined;
  }

  /**
   * Adds chunk `index`. Returns the whole body when `more` is false, undefined while more chunks are due.
   * The payload is copied (the caller's buffer may be a shared page).
   */
  push(
    callId: number,
    epoch: number,
    index: number,
    more: boolean,
    payload: Uint8Array,
  ): Uint8Array | undefined {
    // Spec §3: the next index, the same call and epoch as chunk 0; a chunk 0 mid-message is out of sequence too.
    if (
      index !== this.parts.length ||
      (this.key && (this.key.callId !== callId || this.key.epoch !== epoch))
    ) {
      this.reset();
      throw new MalformedEvidence('pvchannel.chunk.sequence', `chunk ${index} out of sequence`);
    }
    if (this.size + payload.length > this.max) {
      this.reset();
      throw new MalformedEvidence('pvchannel.chunk.too_large', `message over ${this.max} bytes`);
    }
    this.key ??= { callId, epoch };
    this.parts.push(Uint8Array.from(payload));
    this.size += payload.length;
    if (more) return undefined;
    const out = new Uint8Array(this.size);
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    this.reset();
    return out;
  }
}
