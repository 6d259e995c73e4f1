import { type KeyObject, randomBytes, verify } from 'node:crypto';
import { AttestationError, ErrorCode, InvalidArgument, SignatureInvalid } from '../errors.js';
import { isErrorReply } from '../formats/aproxy/error-reply.js';
import { encodeLeaseRequest, parseLeaseResponse } from '../formats/aproxy/lease.js';
import { encodeLeaseSignedContent } from '../formats/aproxy/signed-content.js';
import { type LeaseOp, P384_SIGNATURE_SIZE } from '../formats/aproxy/types.js';
import { zeroize } from '../util/zeroize.js';
import { type ChannelOpener, openAproxyChannel } from './channel.js';

/**
 * The guest must stop using its state now (docs/broker.md "Heartbeat and halt"): another boot of the
 * instance has taken over (`broker.boot_unknown`, passed through with the code the proxy sent, normally
 * ERR_REFUSED), or no heartbeat has succeeded for a whole lease (`ERR_UNAVAILABLE
 * guest.lease_lost`), after which the broker may legitimately let another boot start. An SVSM that gets
 * this stops its vTPM and never writes or commits the state again.
 *
 * The `broker.boot_unknown` reply is an unsigned ErrorReply: a host can forge it and make the guest halt.
 * That is denial of service, which a host can always cause; a forged "keep running" is what the
 * signature on successful acknowledgements prevents.
 */
export class HaltRequired extends AttestationError {}

/** What the broker acknowledged. */
export interface LeaseAck {
  readonly op: LeaseOp;
  /** Heartbeat: when the renewed lease expires, on the broker's clock (ms since the Unix epoch). End: null. */
  readonly leaseExpiresAt: number | null;
  /** The acknowledgement's signature verified against the pinned broker key. */
  readonly brokerVerified: boolean;
}

export interface GuestSessionInit {
  /**
   * The proxy: `unix:PATH` or `tcp:HOST:PORT`, or an opener (e.g. KEY_RELEASE over the pvchannel). Each
   * heartbeat and the end open their own connection.
   */
  readonly connect: string | ChannelOpener;
  /** Deadline for connecting and for the reply (ms). */
  readonly timeoutMs: number;
  readonly bootId: string;
  /** From the secret payload; copied (the caller may zero its buffer). */
  readonly commitToken: Uint8Array;
  /** The pinned broker key: acknowledgements must carry a signature that verifies with it. */
  readonly brokerKey?: KeyObject;
  /** Local time (ms) at which the lease was last known to be renewed, e.g. just before the commit was sent. */
  readonly renewedAt: number;
}

export interface HeartbeatLoopOptions {
  /** The broker's lease (ms; default 300 000, the broker's default `leaseMs`). */
  readonly leaseMs?: number;
  /** Time between heartbeats (ms; default leaseMs / 3; at most leaseMs / 2, so one failure is survivable). */
  readonly intervalMs?: number;
  /** Called once when the loop halts (the broker said another boot took over, or the lease ran out). */
  readonly onHalt?: (e: HaltRequired) => void;
  /** Called for each heartbeat that failed without requiring a halt (e.g. the proxy is unreachable). */
  readonly onError?: (e: unknown) => void;
  /** Called after each renewal. */
  readonly onRenewed?: (ack: LeaseAck) => void;
}

export interface HeartbeatLoop {
  /** Resolves with the reason once the loop halted; stays pending if the loop was stopped first. */
  readonly halted: Promise<HaltRequired>;
  /** True until stop() or a halt. */
  readonly running: boolean;
  /** Stops the loop; resolves once a heartbeat in flight has finished. */
  stop(): Promise<void>;
}

/**
 * A running boot's lease, from the guest's side (docs/protocol.md §6 "Heartbeat and End"): renew it with
 * {@link heartbeat} well inside the broker's lease (or let {@link startHeartbeats} do it), and {@link end}
 * it on clean shutdown so the next boot is not refused as a clone. Each call opens a new connection to the
 * proxy, as an SVSM's periodic task would.
 *
 * Errors: HaltRequired (stop using the state), the proxy's or broker's refusal as an AttestationError,
 * SignatureInvalid `aproxy.lease_signature(.missing)` with a pinned key, Unavailable
 * `guest.channel.*`, InvalidArgument `guest.session.ended`.
 */
export class GuestSession {
  readonly bootId: string;
  private readonly token: Uint8Array;
  private renewed: number;
  private ended = false;
  private loop: HeartbeatLoop | undefined;

  constructor(private readonly init: GuestSessionInit) {
    this.bootId = init.bootId;
    this.token = Uint8Array.from(init.commitToken);
    this.renewed = init.renewedAt;
  }

  /** Local time (ms) at which the lease was last known renewed: when the last successful heartbeat was sent. */
  get renewedAt(): number {
    return this.renewed;
  }

  /** Renews the lease. Throws HaltRequired when the broker no longer knows this boot. */
  async heartbeat(): Promise<LeaseAck> {
    const sent = Date.now();
    const ack = await this.lease('heartbeat');
    this.renewed = Math.max(this.renewed, sent);
    return ack;
  }

  /**
   * Ends the boot (clean shutdown): stops a running heartbeat loop, then tells the broker. Afterwards the
   * session is unusable and the commit token is zeroed. Throws HaltRequired if the boot had already been
   * superseded (then the session is ended too).
   */
  async end(): Promise<LeaseAck> {
    await this.loop?.stop();
    try {
      const ack = await this.lease('end');
      this.close();
      return ack;
    } catch (e) {
      if (e instanceof HaltRequired) this.close();
      throw e;
    }
  }

  private close(): void {
    this.ended = true;
    zeroize(this.token);
  }

  /**
   * Runs heartbeats every `intervalMs` until stop(), end() or a halt. A watchdog halts the loop (with
   * `guest.lease_lost`) when no heartbeat has succeeded for `leaseMs` since the last renewal, measured from
   * when that heartbeat was sent, so the guest stops no later than the broker may let another boot start
   * (given clocks that run at the same rate). One loop per session; starting another stops the first.
   * Throws InvalidArgument `guest.heartbeat.interval` for unusable times.
   */
  startHeartbeats(o: HeartbeatLoopOptions = {}): HeartbeatLoop {
    const leaseMs = o.leaseMs ?? 300_000;
    const intervalMs = o.intervalMs ?? Math.floor(leaseMs / 3);
    if (!(Number.isFinite(leaseMs) && leaseMs > 0 && intervalMs > 0 && intervalMs <= leaseMs / 2)) {
      throw new InvalidArgument(
        'guest.heartbeat.interval',
        'heartbeat interval must be > 0 and at most half the lease',
      );
    }
    if (this.ended) throw new InvalidArgument('guest.session.ended', 'the session has ended');
    void this.loop?.stop();
    let running = true;
    let timer: NodeJS.Timeout | undefined;
    let watchdog: NodeJS.Timeout | undefined;
    let inflight: Promise<void> | undefined;
    let resolveHalted!: (e: HaltRequired) => void;
    const halted = new Promise<HaltRequired>((r) => {
      resolveHalted = r;
    });
    const clear = () => {
      running = false;
      clearTimeout(timer);
      clearTimeout(watchdog);
    };
    const halt = (e: HaltRequired) => {
      if (!running) return;
      clear();
      resolveHalted(e);
      try {
        o.onHalt?.(e);
      } catch {
        // the callback's own failure must not hide the halt, which `halted` reports anyway
      }
    };
    const arm = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(
        () =>
          halt(
            new HaltRequired(
              ErrorCode.Unavailable,
              'guest.lease_lost',
              `no heartbeat succeeded for ${leaseMs} ms; another boot may now start`,
            ),
          ),
        Math.max(0, this.renewed + leaseMs - Date.now()),
      );
    };
    const tick = async () => {
      try {
        const ack = await this.heartbeat();
        if (!running) return;
        arm();
        callSafely(o.onRenewed, ack);
      } catch (e) {
        if (e instanceof HaltRequired) return halt(e);
        if (running) callSafely(o.onError, e);
      }
      if (running) timer = setTimeout(() => (inflight = tick()), intervalMs);
    };
    arm();
    timer = setTimeout(() => (inflight = tick()), intervalMs);
    const loop: HeartbeatLoop = {
      halted,
      get running() {
        return running;
      },
      stop: async () => {
        clear();
        await inflight;
      },
    };
    this.loop = loop;
    return loop;
  }

  private async lease(op: LeaseOp): Promise<LeaseAck> {
    if (this.ended) throw new InvalidArgument('guest.session.ended', 'the session has ended');
    const { connect, timeoutMs, brokerKey } = this.init;
    const nonce = new Uint8Array(randomBytes(32));
    const ch = await openAproxyChannel(connect, timeoutMs);
    try {
      await ch.send(encodeLeaseRequest({ op, bootId: this.bootId, commitToken: this.token, nonce }));
      const r = parseLeaseResponse(await ch.receive(timeoutMs), op);
      if (isErrorReply(r)) {
        // The code was checked against ErrorCode when the reply was parsed.
        const code = r.error.code as ErrorCode;
        const message = `proxy: ${r.error.message}`;
        if (r.error.reason === 'broker.boot_unknown') throw new HaltRequired(code, r.error.reason, message);
        throw new AttestationError(code, r.error.reason, message);
      }
      let brokerVerified = false;
      if (brokerKey) {
        if (!r.signature) {
          throw new SignatureInvalid(
            'aproxy.lease_signature.missing',
            `the ${op} acknowledgement is not signed`,
          );
        }
        verifyLeaseAck(
          brokerKey,
          { op, nonce, bootId: this.bootId, leaseExpiresAt: r.leaseExpiresAt },
          r.signature,
        );
        brokerVerified = true;
      }
      return { op, leaseExpiresAt: r.leaseExpiresAt, brokerVerified };
    } finally {
      ch.close();
    }
  }
}

function callSafely<T>(fn: ((v: T) => void) | undefined, v: T): void {
  try {
    fn?.(v);
  } catch {
    // a failing callback must not stop the heartbeats
  }
}

/**
 * Checks the broker's ECDSA P-384 (IEEE P1363) signature over the lease signed content
 * (encodeLeaseSignedContent). Throws SignatureInvalid `aproxy.lease_signature`.
 */
export function verifyLeaseAck(
  brokerKey: KeyObject,
  f: { op: LeaseOp; nonce: Uint8Array; bootId: string; leaseExpiresAt: number | null },
  signature: Uint8Array,
): void {
  const ok =
    signature.length === P384_SIGNATURE_SIZE &&
    verify('sha384', encodeLeaseSignedContent(f), { key: brokerKey, dsaEncoding: 'ieee-p1363' }, signature);
  if (!ok) {
    throw new SignatureInvalid(
      'aproxy.lease_signature',
      'the lease acknowledgement does not verify with the pinned key',
    );
  }
}
