import { connect, type Socket } from 'node:net';
import { InvalidArgument, Unavailable } from '../errors.js';
import { encodeFrame, FrameDecoder } from '../formats/aproxy/frame.js';
import {
  decodeKeyReleaseRequest,
  encodeKeyReleaseAnswer,
  KeyReleaseKind,
  KeyReleaseOp,
} from '../formats/pvchannel/key-release.js';
import type { CallHandler } from './device.js';

export interface KeyReleaseRelayOptions {
  /**
   * The host proxy the streams go to: `unix:PATH` or `tcp:HOST:PORT` — the same `vouchsafe proxy` (and so
   * the same backends, native or KBS, with the same admission limits) a vsock-connected SVSM reaches.
   */
  readonly proxy: string;
  /** Deadline for connecting and for each reply of the proxy (default 30 s). */
  readonly timeoutMs?: number;
  /** Streams open at once; opening one more closes the oldest (default 4: a boot, a heartbeat, slack). */
  readonly maxStreams?: number;
}

/** One relayed aproxy connection. */
class Stream {
  private readonly decoder = new FrameDecoder();
  private ended = false;
  private failed = false;
  private wake: (() => void) | undefined;

  constructor(readonly socket: Socket) {
    socket.on('data', (b: Buffer) => {
      try {
        this.decoder.push(b);
      } catch {
        this.failed = true;
        socket.destroy();
      }
      this.notify();
    });
    const end = () => {
      this.ended = true;
      this.notify();
    };
    socket.on('end', end);
    socket.on('close', end);
    socket.on('error', end);
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  /** The proxy's next message, or null when it closed (or sent a frame that does not decode). */
  async next(timeoutMs: number): Promise<Uint8Array | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.failed) return null;
      const f = this.decoder.next();
      if (f) return f;
      if (this.ended) return null;
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Unavailable('pvchannel.key_release.timeout', 'the proxy did not answer in time');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  close(): void {
    this.socket.end();
    this.socket.destroySoon();
  }
}

function open(address: string, timeoutMs: number): Promise<Socket> {
  let socket: Socket;
  if (address.startsWith('unix:')) socket = connect(address.slice(5));
  else {
    const m = /^tcp:(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):([0-9]{1,5})$/.exec(address);
    if (!m) throw new InvalidArgument('pvchannel.key_release.proxy', 'expected unix:PATH or tcp:HOST:PORT');
    socket = connect(Number(m[3]), (m[1] ?? m[2])!);
  }
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      socket.destroy();
      reject(new Unavailable('pvchannel.key_release.connect', 'no connection to the proxy in time'));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(t);
      resolve(socket);
    });
    socket.once('error', () => {
      clearTimeout(t);
      reject(new Unavailable('pvchannel.key_release.connect', 'cannot connect to the proxy'));
    });
  });
}

/**
 * The KEY_RELEASE handler (docs/pvchannel.md §7.4): relays each stream's messages to the host proxy on a
 * connection of its own, as `socat VSOCK-LISTEN:1995 UNIX-CONNECT:…` does for a vsock guest. The device
 * is a relay only: it reads nothing in the messages, so a refusal reaches the guest with the code and reason
 * the proxy sent, and everything the guest trusts (the broker's JWE to its key, the signatures) is checked
 * by the guest. A proxy that cannot be reached is CALL_FAILED `ERR_UNAVAILABLE pvchannel.key_release.*`.
 * `close()` ends every stream (the device stopping).
 */
export function keyReleaseRelay(o: KeyReleaseRelayOptions): { handler: CallHandler; close(): void } {
  const timeoutMs = o.timeoutMs ?? 30_000;
  const max = o.maxStreams ?? 4;
  const streams = new Map<number, Stream>();
  const handler: CallHandler = async (body) => {
    const q = decodeKeyReleaseRequest(body);
    const closed = () =>
      encodeKeyReleaseAnswer({ kind: KeyReleaseKind.Closed, stream: q.stream, message: new Uint8Array(0) });
    if (q.op === KeyReleaseOp.Close) {
      streams.get(q.stream)?.close();
      streams.delete(q.stream);
      return closed();
    }
    let s = streams.get(q.stream);
    if (s === undefined) {
      if (streams.size >= max) {
        const [oldest, st] = streams.entries().next().value as [number, Stream];
        st.close();
        streams.delete(oldest);
      }
      s = new Stream(await open(o.proxy, timeoutMs));
      streams.set(q.stream, s);
    }
    s.socket.write(encodeFrame(q.message));
    const reply = await s.next(timeoutMs).catch((e: unknown) => {
      s.close();
      streams.delete(q.stream);
      throw e;
    });
    if (reply === null) {
      s.close();
      streams.delete(q.stream);
      return closed();
    }
    return encodeKeyReleaseAnswer({ kind: KeyReleaseKind.Reply, stream: q.stream, message: reply });
  };
  return {
    handler,
    close() {
      for (const s of streams.values()) s.close();
      streams.clear();
    },
  };
}
