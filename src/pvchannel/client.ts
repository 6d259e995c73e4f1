import { MalformedEvidence, NotSupported, Unavailable } from '../errors.js';
import { parseIdentity } from '../formats/aproxy/identity.js';
import { parseJson } from '../formats/aproxy/json.js';
import type { PlatformIdentity } from '../formats/platform-identity.js';
import { ChunkAssembler, splitChunks } from '../formats/pvchannel/chunks.js';
import {
  CALL_FEATURE,
  DEFAULT_MAX_MESSAGE,
  PV_VERSION,
  PvCall,
  PvFlag,
  PvStatus,
} from '../formats/pvchannel/constants.js';
import { type PvMessage, requestMessage } from '../formats/pvchannel/message.js';
import {
  decodeNegotiateAnswer,
  encodeNegotiateRequest,
  type NegotiateAnswer,
  NegotiateOp,
} from '../formats/pvchannel/negotiate.js';
import { statusError } from './status-error.js';
import type { GuestTransport } from './transport.js';

export interface ClientOptions {
  readonly transport: GuestTransport;
  /** The features this guest would like; it selects these ∩ the device's offer. */
  readonly want: bigint;
  /** Bound on a reassembled answer (default 256 KiB). */
  readonly maxMessage?: number;
}

/** Raised inside one attempt when the device says the session is gone; the caller re-negotiates. */
class Renegotiate extends Error {}

/**
 * The guest side of the channel (docs/pvchannel.md): negotiation, calls with chunked requests and answers,
 * and one re-negotiation when the device reports FEATURES_CHANGED or SEQUENCE (a live migration). Every
 * answer is checked as hostile input: it must echo our call id, sequence and chunk index, and carry a known
 * status. Errors are typed (`pvchannel.*`).
 */
export class PvClient {
  private readonly transport: GuestTransport;
  private readonly want: bigint;
  private readonly maxMessage: number;
  private sequence = 0;
  private session: NegotiateAnswer | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(o: ClientOptions) {
    this.transport = o.transport;
    this.want = o.want;
    this.maxMessage = o.maxMessage ?? DEFAULT_MAX_MESSAGE;
  }

  /** The negotiated features (0n before NEGOTIATE). */
  get features(): bigint {
    return this.session?.accepted ?? 0n;
  }

  /** The negotiated epoch (0 before NEGOTIATE). */
  get epoch(): number {
    return this.session?.epoch ?? 0;
  }

  /**
   * QUERY, then SELECT `want` ∩ offered at protocol version 1. Throws NotSupported
   * `pvchannel.version` when the device does not offer version 1.
   */
  async negotiate(): Promise<NegotiateAnswer> {
    this.session = undefined;
    const offer = await this.negotiateOp(NegotiateOp.Query, 0, 0n);
    if (PV_VERSION < offer.minVersion || PV_VERSION > offer.maxVersion) {
      throw new NotSupported('pvchannel.version', 'the device does not offer protocol version 1');
    }
    const chosen = this.want & offer.offered;
    const a = await this.negotiateOp(NegotiateOp.Select, PV_VERSION, chosen);
    if (a.accepted !== chosen || a.version !== PV_VERSION) {
      throw new MalformedEvidence(
        'pvchannel.negotiate_answer.selection',
        'the device accepted another selection',
      );
    }
    this.session = a;
    return a;
  }

  private async negotiateOp(op: 1 | 2, version: number, features: bigint): Promise<NegotiateAnswer> {
    const req = requestMessage({
      callId: PvCall.Negotiate,
      sequence: this.nextSequence(),
      epoch: this.epoch,
      payload: encodeNegotiateRequest({ op, version, features }),
    });
    const ans = this.check(req, await this.transport.exchange(req));
    if (ans.status !== PvStatus.Ok) throw statusError(ans.status, ans.payload);
    return decodeNegotiateAnswer(ans.payload);
  }

  /**
   * Runs a call: negotiates first if needed, refuses a call outside the negotiated set
   * (NotSupported `pvchannel.not_negotiated`), sends the body in chunks and collects the answer's chunks.
   * After FEATURES_CHANGED or SEQUENCE it re-negotiates once and resends from chunk 0, or fails with
   * NotSupported `pvchannel.feature_withdrawn` if the call's feature is gone (the caller degrades); a second
   * change within one call is Unavailable `pvchannel.features_unstable`.
   */
  async call(callId: number, body: Uint8Array): Promise<Uint8Array> {
    // One request page: calls from concurrent callers (a boot's KEY_RELEASE close, a UEFI variable read) run
    // one after another, never interleaved.
    const run = this.queue.then(() => this.callNow(callId, body));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async callNow(callId: number, body: Uint8Array): Promise<Uint8Array> {
    const feature = CALL_FEATURE[callId];
    if (feature === undefined || callId === PvCall.Negotiate) {
      throw new NotSupported('pvchannel.call_id', `no call ${callId}`);
    }
    if (this.session === undefined) await this.negotiate();
    if ((this.features & feature) !== feature)
      throw new NotSupported('pvchannel.not_negotiated', 'call not negotiated');
    try {
      return await this.attempt(callId, body);
    } catch (e) {
      if (!(e instanceof Renegotiate)) throw e;
    }
    await this.negotiate();
    if ((this.features & feature) !== feature) {
      throw new NotSupported('pvchannel.feature_withdrawn', 'the device no longer offers this call');
    }
    try {
      return await this.attempt(callId, body);
    } catch (e) {
      if (e instanceof Renegotiate)
        throw new Unavailable('pvchannel.features_unstable', 'the feature set changed twice');
      throw e;
    }
  }

  /** GET_PLATFORM_IDENTITY: what the control plane says this instance is. Informative, never proof. */
  async getPlatformIdentity(): Promise<PlatformIdentity> {
    const body = await this.call(PvCall.GetPlatformIdentity, new Uint8Array(0));
    return parseIdentity(parseJson(body), 'pvchannel.identity');
  }

  private async attempt(callId: number, body: Uint8Array): Promise<Uint8Array> {
    const chunks = splitChunks(body, this.maxMessage);
    let ans: PvMessage | undefined;
    for (const [i, payload] of chunks.entries()) {
      const more = i < chunks.length - 1;
      ans = await this.ring(callId, i, more ? PvFlag.More : 0, payload);
      if (more && ans.status !== PvStatus.ChunkAccepted) throw this.failure(ans);
    }
    if (ans === undefined || ans.status !== PvStatus.Ok) throw this.failure(ans!);
    const answer = new ChunkAssembler(this.maxMessage);
    let out = answer.push(callId, ans.epoch, 0, (ans.flags & PvFlag.More) !== 0, ans.payload);
    for (let k = 1; out === undefined; k++) {
      const next = await this.ring(callId, k, PvFlag.Fetch, new Uint8Array(0));
      if (next.status !== PvStatus.Ok) throw this.failure(next);
      out = answer.push(callId, next.epoch, k, (next.flags & PvFlag.More) !== 0, next.payload);
    }
    return out;
  }

  private async ring(callId: number, chunk: number, flags: number, payload: Uint8Array): Promise<PvMessage> {
    const req = requestMessage({
      callId,
      chunk,
      flags,
      payload,
      sequence: this.nextSequence(),
      epoch: this.epoch,
    });
    return this.check(req, await this.transport.exchange(req));
  }

  private failure(ans: PvMessage): Error {
    if (ans.status === PvStatus.FeaturesChanged || ans.status === PvStatus.Sequence) return new Renegotiate();
    if (ans.status === PvStatus.Ok || ans.status === PvStatus.ChunkAccepted) {
      return new MalformedEvidence('pvchannel.answer.unexpected', 'the device answered out of turn');
    }
    return statusError(ans.status, ans.payload);
  }

  /** An answer must echo the request's call id and sequence, carry the right chunk, and not be a guest-side status. */
  private check(req: PvMessage, ans: PvMessage): PvMessage {
    if (ans.status === PvStatus.Request || ans.status === PvStatus.Busy) {
      throw new Unavailable('pvchannel.answer.not_done', 'the device has not answered');
    }
    // Spec §3: CHUNK_ACCEPTED and a fetched chunk echo the chunk index; the answer to a request starts at 0.
    const fetch = (req.flags & PvFlag.Fetch) !== 0;
    const chunk = ans.status === PvStatus.Ok && !fetch ? 0 : req.chunk;
    const checkChunk = ans.status === PvStatus.Ok || ans.status === PvStatus.ChunkAccepted;
    if (ans.callId !== req.callId || ans.sequence !== req.sequence || (checkChunk && ans.chunk !== chunk)) {
      throw new MalformedEvidence('pvchannel.answer.mismatch', 'the answer is not for this request');
    }
    return ans;
  }

  private nextSequence(): number {
    this.sequence = (this.sequence + 1) >>> 0;
    return this.sequence;
  }
}
