import { randomBytes } from 'node:crypto';
import { InvalidArgument, MalformedEvidence, Unavailable } from '../errors.js';
import { PAGE_SIZE, PvCall } from '../formats/pvchannel/constants.js';
import {
  decodeKeyReleaseAnswer,
  encodeKeyReleaseRequest,
  KeyReleaseKind,
  KeyReleaseOp,
} from '../formats/pvchannel/key-release.js';
import { PvClient } from '../pvchannel/client.js';
import { PageTransport } from '../pvchannel/page-transport.js';
import { VmmSocketClient } from '../pvchannel/vmm-socket.js';
import type { AproxyChannel, ChannelOpener } from './channel.js';

/** One aproxy connection carried by KEY_RELEASE (docs/pvchannel.md §7.4). */
class PvAproxyChannel implements AproxyChannel {
  private pending: Uint8Array | undefined;
  private closed = false;

  constructor(
    private readonly client: PvClient,
    private readonly stream: number,
  ) {}

  async send(payload: Uint8Array): Promise<void> {
    if (this.closed) throw new Unavailable('guest.channel.closed', 'the channel is closed');
    if (this.pending !== undefined) {
      throw new InvalidArgument('guest.channel.order', 'aproxy sends one message per reply');
    }
    this.pending = Uint8Array.from(payload);
  }

  /**
   * Runs the MESSAGE call with what was sent and returns the proxy's reply. Throws Unavailable
   * `guest.channel.closed` (the proxy ended the stream), the channel's `pvchannel.*` errors, and the device's
   * CALL_FAILED code and reason (e.g. `ERR_UNAVAILABLE pvchannel.key_release.connect`).
   */
  async receive(timeoutMs: number): Promise<Uint8Array> {
    const message = this.pending;
    this.pending = undefined;
    if (message === undefined || this.closed) {
      throw new Unavailable('guest.channel.closed', 'nothing was sent on this channel');
    }
    const body = encodeKeyReleaseRequest({ op: KeyReleaseOp.Message, stream: this.stream, message });
    // The same deadline as on a socket: a VMM that never completes the ring is a typed timeout, not a hang.
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Unavailable('guest.channel.timeout', `no reply within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    let answer: Uint8Array;
    try {
      const call = this.client.call(PvCall.KeyRelease, body);
      call.catch(() => undefined); // after a timeout its late failure has no one to tell
      answer = await Promise.race([call, late]);
    } finally {
      clearTimeout(timer);
    }
    const a = decodeKeyReleaseAnswer(answer);
    if (a.stream !== this.stream) {
      throw new MalformedEvidence('guest.channel.stream', 'the device answered for another stream');
    }
    if (a.kind === KeyReleaseKind.Closed) {
      this.closed = true;
      throw new Unavailable('guest.channel.closed', 'the proxy closed the connection');
    }
    return a.message;
  }

  /** Ends the stream (EOF to the proxy); runs after calls already queued, errors ignored. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const body = encodeKeyReleaseRequest({
      op: KeyReleaseOp.Close,
      stream: this.stream,
      message: new Uint8Array(0),
    });
    // PvClient runs calls in order, so this CLOSE goes before any later call.
    this.client.call(PvCall.KeyRelease, body).catch(() => undefined);
  }
}

/**
 * The guest's aproxy transport over the pvchannel (docs/pvchannel.md §7.4): give it as `connect` to bootGuest
 * (and so to the boot's GuestSession) when the host offers no vsock. Each open is a new stream (random id).
 */
export function pvKeyReleaseOpener(client: PvClient): ChannelOpener {
  return async () => new PvAproxyChannel(client, randomBytes(4).readUInt32LE(0));
}

/**
 * The guest's channel when the VMM side is a `vouchsafe vmm-device` socket (docs/pvchannel.md §8): this
 * process plays the VMM as well, forwarding each doorbell with the page and writing back the page the
 * device answers (what `vouchsafe guest boot --connect pvchannel:PATH` uses). `close()` drops the socket.
 */
export async function pvChannelOverVmmSocket(
  path: string,
  want: bigint,
): Promise<{ client: PvClient; close(): void }> {
  const vmm = await VmmSocketClient.connect(path);
  const page = new Uint8Array(PAGE_SIZE);
  const transport = new PageTransport(page, async () => {
    page.set(await vmm.doorbell(page));
  });
  return { client: new PvClient({ transport, want }), close: () => vmm.close() };
}
