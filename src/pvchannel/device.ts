import { AttestationError, InvalidArgument, MalformedEvidence } from '../errors.js';
import { ChunkAssembler, splitChunks } from '../formats/pvchannel/chunks.js';
import {
  CALL_FEATURE,
  DEFAULT_MAX_MESSAGE,
  PV_FEATURES_DEFINED,
  PV_VERSION,
  PvCall,
  PvFlag,
  PvStatus,
} from '../formats/pvchannel/constants.js';
import {
  decodePage,
  decodeRecord,
  encodePage,
  encodeRecord,
  type PvMessage,
} from '../formats/pvchannel/message.js';
import {
  decodeNegotiateRequest,
  encodeNegotiateAnswer,
  NegotiateOp,
} from '../formats/pvchannel/negotiate.js';

/** What the VMM offers (docs/pvchannel.md §7.1). */
export interface DeviceOffer {
  readonly minVersion: number;
  readonly maxVersion: number;
  readonly features: bigint;
}

/** What a call handler learns about the session it runs in. */
export interface CallContext {
  readonly callId: number;
  readonly version: number;
  /** The negotiated feature set (e.g. whether C509 was selected). */
  readonly features: bigint;
}

/**
 * A call's implementation: the reassembled request body in, the answer body out. Throwing MalformedEvidence
 * answers BAD_PAYLOAD; any other AttestationError answers CALL_FAILED with its code and reason; anything
 * else answers INTERNAL.
 */
export type CallHandler = (request: Uint8Array, ctx: CallContext) => Promise<Uint8Array> | Uint8Array;

/** The device state that migrates with the VM (§7.1 "Migration"). Plain data: the VMM serialises it. */
export interface DeviceSnapshot {
  readonly epoch: number;
  readonly negotiated: { readonly version: number; readonly features: bigint } | undefined;
  readonly lastSequence: number | undefined;
  readonly partial: readonly {
    readonly callId: number;
    readonly epoch: number;
    readonly chunks: readonly Uint8Array[];
  }[];
}

export interface DeviceOptions {
  readonly offer: DeviceOffer;
  /** Handlers by call id (NEGOTIATE is the device's own). A call without one answers NOT_SUPPORTED. */
  readonly handlers?: Readonly<Record<number, CallHandler>>;
  /** Bound on a reassembled request (default 256 KiB). */
  readonly maxMessage?: number;
}

/** The outcome of one ring: an answer to write back, or BUSY for an early re-ring (only the status word). */
export type RingResult = { readonly busy: true } | { readonly busy: false; readonly bytes: Uint8Array };

/** Which form the request came in and the answer goes out in: a 4 KiB page or a port-only record. */
export type Form = 'page' | 'record';

interface CachedAnswer {
  readonly request: Uint8Array; // the request as a record, to tell a repeat from a different ring
  readonly answer: PvMessage;
}

/**
 * The host side of the channel: a state machine fed with doorbell rings (docs/pvchannel.md §4-§7). It reads a
 * ring's bytes once, answers garbage with a defined status and no state change, checks sequence, epoch,
 * version and the negotiated set before dispatching to a handler registered by call id, reassembles chunked
 * requests and serves chunked answers. A ring while another is running answers BUSY at once.
 */
export class PvDevice {
  private offer: DeviceOffer;
  private readonly handlers = new Map<number, CallHandler>();
  private readonly maxMessage: number;
  private epoch = 1;
  private negotiated: { version: number; features: bigint } | undefined;
  private lastSequence: number | undefined;
  private last: CachedAnswer | undefined;
  private readonly assembler: ChunkAssembler;
  private partialCall: { callId: number; epoch: number; chunks: Uint8Array[] } | undefined;
  /** Answer chunks not yet fetched: call id and the chunks (index 0 already sent). */
  private pending: { callId: number; chunks: Uint8Array[] } | undefined;
  private running = false;

  constructor(options: DeviceOptions) {
    checkOffer(options.offer);
    this.offer = options.offer;
    this.maxMessage = options.maxMessage ?? DEFAULT_MAX_MESSAGE;
    this.assembler = new ChunkAssembler(this.maxMessage);
    for (const [id, h] of Object.entries(options.handlers ?? {})) this.register(Number(id), h);
  }

  /** Registers (or replaces) the handler of a call id. NEGOTIATE cannot be replaced. */
  register(callId: number, handler: CallHandler): void {
    if (callId === PvCall.Negotiate || CALL_FEATURE[callId] === undefined) {
      throw new InvalidArgument('pvchannel.device.call_id', `no registrable call ${callId}`);
    }
    this.handlers.set(callId, handler);
  }

  /** True while a ring is being answered. */
  get busy(): boolean {
    return this.running;
  }

  /** The device's current epoch. */
  get currentEpoch(): number {
    return this.epoch;
  }

  /**
   * The state that migrates with the VM. Taken between rings (a VMM drains in-flight I/O before it migrates);
   * throws InvalidArgument `pvchannel.device.busy` while a ring runs.
   */
  snapshot(): DeviceSnapshot {
    if (this.running) throw new InvalidArgument('pvchannel.device.busy', 'snapshot while a ring runs');
    return {
      epoch: this.epoch,
      negotiated: this.negotiated ? { ...this.negotiated } : undefined,
      lastSequence: this.lastSequence,
      partial: this.partialCall ? [{ ...this.partialCall, chunks: [...this.partialCall.chunks] }] : [],
    };
  }

  /**
   * The destination side of a live migration: the migrated state under this VMM's own offer and handlers.
   * An offer that still holds the negotiated set keeps everything (an in-flight chunked request continues);
   * one that offers less starts a new epoch with nothing negotiated and drops partial messages, so the
   * guest's next ring is FEATURES_CHANGED.
   */
  static restore(s: DeviceSnapshot, options: DeviceOptions): PvDevice {
    const d = new PvDevice(options);
    d.epoch = s.epoch;
    d.lastSequence = s.lastSequence;
    const n = s.negotiated;
    const kept =
      n !== undefined &&
      (n.features & ~d.offer.features) === 0n &&
      n.version >= d.offer.minVersion &&
      n.version <= d.offer.maxVersion;
    if (kept) {
      d.negotiated = { ...n };
      for (const p of s.partial) {
        for (const [i, c] of p.chunks.entries()) d.assembler.push(p.callId, p.epoch, i, true, c);
        d.partialCall = { callId: p.callId, epoch: p.epoch, chunks: [...p.chunks] };
      }
    } else if (n !== undefined) {
      d.epoch = (s.epoch + 1) >>> 0 || 1;
    }
    return d;
  }

  /**
   * One doorbell ring with the request in `bytes` (a page or a record, per `form`). Resolves with the answer
   * in the same form; an early re-ring resolves at once with `{busy: true}` and touches nothing.
   * Never rejects: every fault is an answer status.
   */
  async ring(bytes: Uint8Array, form: Form): Promise<RingResult> {
    if (this.running) return { busy: true };
    this.running = true;
    try {
      const answer = await this.answer(bytes, form);
      return { busy: false, bytes: form === 'page' ? encodePage(answer) : encodeRecord(answer) };
    } finally {
      this.running = false;
    }
  }

  private async answer(bytes: Uint8Array, form: Form): Promise<PvMessage> {
    let m: PvMessage;
    try {
      // Spec §2: read once, check everything; a garbage page changes no state.
      m = form === 'page' ? decodePage(bytes) : decodeRecord(bytes);
    } catch (e) {
      const reason = e instanceof AttestationError ? e.reason : '';
      return this.reply(echo(bytes), reason.endsWith('.version') ? PvStatus.BadVersion : PvStatus.Malformed);
    }
    if (m.callId === PvCall.Negotiate) return this.remember(m, this.negotiate(m));
    // Spec §4: a repeat of the last completed ring gets the same answer; nothing runs twice.
    if (m.sequence === this.lastSequence && this.last) {
      return sameBytes(this.last.request, encodeRecord(m))
        ? this.last.answer
        : this.reply(m, PvStatus.Sequence);
    }
    if (this.lastSequence === undefined) return this.reply(m, PvStatus.NotNegotiated);
    if (m.sequence !== (this.lastSequence + 1) >>> 0) return this.reply(m, PvStatus.Sequence);
    return this.remember(m, await this.dispatch(m));
  }

  private remember(request: PvMessage, answer: PvMessage): PvMessage {
    this.lastSequence = request.sequence;
    this.last = { request: encodeRecord(request), answer };
    return answer;
  }

  private negotiate(m: PvMessage): PvMessage {
    if (m.flags !== 0 || m.chunk !== 0) return this.reply(m, PvStatus.BadPayload);
    let q: ReturnType<typeof decodeNegotiateRequest>;
    try {
      q = decodeNegotiateRequest(m.payload);
    } catch {
      return this.reply(m, PvStatus.BadPayload);
    }
    const o = this.offer;
    const base = { minVersion: o.minVersion, maxVersion: o.maxVersion, offered: o.features };
    if (q.op === NegotiateOp.Query) {
      return this.reply(
        m,
        PvStatus.Ok,
        encodeNegotiateAnswer({ ...base, epoch: this.epoch, accepted: 0n, version: 0 }),
      );
    }
    // Spec §7.1: a version outside the offer is BAD_VERSION; features outside it mean the offer changed.
    if (q.version < o.minVersion || q.version > o.maxVersion || q.version !== PV_VERSION) {
      return this.reply(m, PvStatus.BadVersion);
    }
    if ((q.features & ~o.features) !== 0n) return this.reply(m, PvStatus.FeaturesChanged);
    this.negotiated = { version: q.version, features: q.features };
    this.dropPartial();
    return this.reply(
      m,
      PvStatus.Ok,
      encodeNegotiateAnswer({ ...base, epoch: this.epoch, accepted: q.features, version: q.version }),
    );
  }

  private async dispatch(m: PvMessage): Promise<PvMessage> {
    // Spec §7.1: a stale epoch means the set changed under the guest (migration): drop partial messages.
    if (m.epoch !== this.epoch) {
      this.dropPartial();
      return this.reply(m, PvStatus.FeaturesChanged);
    }
    const n = this.negotiated;
    if (n === undefined) return this.reply(m, PvStatus.NotNegotiated);
    if (m.version !== n.version) return this.reply(m, PvStatus.BadVersion);
    const feature = CALL_FEATURE[m.callId];
    if (feature === undefined) return this.reply(m, PvStatus.NotSupported);
    if ((feature & n.features) !== feature) return this.reply(m, PvStatus.NotNegotiated);
    const handler = this.handlers.get(m.callId);
    if (handler === undefined) return this.reply(m, PvStatus.NotSupported);
    if (m.flags & PvFlag.Fetch) return this.fetch(m);
    this.pending = undefined; // a new request discards an unfetched answer (§3)
    let body: Uint8Array | undefined;
    try {
      body = this.assembler.push(m.callId, m.epoch, m.chunk, (m.flags & PvFlag.More) !== 0, m.payload);
    } catch (e) {
      this.partialCall = undefined;
      const tooLarge = e instanceof AttestationError && e.reason === 'pvchannel.chunk.too_large';
      return this.reply(m, tooLarge ? PvStatus.TooLarge : PvStatus.ChunkSequence);
    }
    if (body === undefined) {
      this.partialCall ??= { callId: m.callId, epoch: m.epoch, chunks: [] };
      this.partialCall.chunks.push(Uint8Array.from(m.payload));
      return this.reply(m, PvStatus.ChunkAccepted);
    }
    this.partialCall = undefined;
    return this.run(m, handler, body, { callId: m.callId, version: n.version, features: n.features });
  }

  private async run(
    m: PvMessage,
    handler: CallHandler,
    body: Uint8Array,
    ctx: CallContext,
  ): Promise<PvMessage> {
    let out: Uint8Array;
    try {
      out = await handler(body, ctx);
    } catch (e) {
      if (e instanceof MalformedEvidence) return this.reply(m, PvStatus.BadPayload);
      if (e instanceof AttestationError) {
        const detail = JSON.stringify({ code: e.code, reason: e.reason });
        return this.reply(m, PvStatus.CallFailed, new TextEncoder().encode(detail));
      }
      return this.reply(m, PvStatus.Internal);
    }
    let chunks: Uint8Array[];
    try {
      chunks = splitChunks(out, this.maxMessage);
    } catch {
      return this.reply(m, PvStatus.Internal);
    }
    if (chunks.length > 1) this.pending = { callId: m.callId, chunks };
    return this.reply({ ...m, chunk: 0 }, PvStatus.Ok, chunks[0], chunks.length > 1);
  }

  private fetch(m: PvMessage): PvMessage {
    const p = this.pending;
    // Spec §3: a FETCH names an answer chunk that exists, of the call that produced it, with an empty payload.
    if (
      p === undefined ||
      p.callId !== m.callId ||
      m.chunk === 0 ||
      m.chunk >= p.chunks.length ||
      m.payload.length
    ) {
      return this.reply(m, PvStatus.ChunkSequence);
    }
    const last = m.chunk === p.chunks.length - 1;
    if (last) this.pending = undefined;
    return this.reply(m, PvStatus.Ok, p.chunks[m.chunk], !last);
  }

  private dropPartial(): void {
    this.assembler.reset();
    this.partialCall = undefined;
    this.pending = undefined;
  }

  private reply(
    m: Pick<PvMessage, 'callId' | 'sequence' | 'chunk'>,
    status: number,
    payload: Uint8Array = new Uint8Array(0),
    more = false,
  ): PvMessage {
    return {
      version: this.negotiated?.version ?? PV_VERSION,
      flags: more ? PvFlag.More : 0,
      callId: m.callId,
      status,
      sequence: m.sequence,
      epoch: this.epoch,
      chunk: m.chunk,
      payload,
    };
  }
}

/** The call id, sequence and chunk of a request that did not decode, where the bytes hold them (else 0). */
function echo(b: Uint8Array): Pick<PvMessage, 'callId' | 'sequence' | 'chunk'> {
  if (b.length < 0x16) return { callId: 0, sequence: 0, chunk: 0 };
  const v = new DataView(b.buffer, b.byteOffset, b.length);
  return {
    callId: v.getUint16(0x08, true),
    sequence: v.getUint32(0x0c, true),
    chunk: v.getUint16(0x14, true),
  };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function checkOffer(o: DeviceOffer): void {
  if (o.minVersion > o.maxVersion || o.minVersion < 1 || o.maxVersion > 0xffff) {
    throw new InvalidArgument('pvchannel.device.offer', 'offer versions out of order');
  }
  if ((o.features & ~PV_FEATURES_DEFINED) !== 0n) {
    throw new InvalidArgument('pvchannel.device.offer', 'offer names reserved feature bits');
  }
}
