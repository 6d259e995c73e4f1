import { connect, type Socket } from 'node:net';
import { InvalidArgument, Unavailable } from '../errors.js';
import { encodeFrame, FrameDecoder } from '../formats/aproxy/frame.js';

/**
 * One aproxy connection as the guest's boot uses it: send a message, receive the reply, close (EOF to the
 * proxy). A socket (GuestChannel) or the pvchannel's KEY_RELEASE call (pv-key-release.ts).
 */
export interface AproxyChannel {
  send(payload: Uint8Array): Promise<void>;
  /** The next message. Throws Unavailable `guest.channel.timeout` / `guest.channel.closed`. */
  receive(timeoutMs: number): Promise<Uint8Array>;
  close(): void;
}

/** Opens a fresh aproxy connection by other means than an address (e.g. over the pvchannel). */
export type ChannelOpener = (timeoutMs: number) => Promise<AproxyChannel>;

/** Opens `unix:PATH` / `tcp:HOST:PORT`, or calls the opener. */
export function openAproxyChannel(
  connect: string | ChannelOpener,
  timeoutMs: number,
): Promise<AproxyChannel> {
  return typeof connect === 'string' ? GuestChannel.open(connect, timeoutMs) : connect(timeoutMs);
}

/**
 * The guest's end of the aproxy channel: a client socket (unix or TCP; on a real SVSM this is vsock CID 2
 * port 1995) carrying length-prefixed frames. Reads have deadlines; a proxy that goes silent or closes
 * early is a typed error (Unavailable `guest.channel.*`), not a hang.
 */
export class GuestChannel implements AproxyChannel {
  private readonly decoder = new FrameDecoder();
  private error: unknown;
  private ended = false;
  private wake: (() => void) | undefined;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      try {
        this.decoder.push(chunk);
      } catch (e) {
        this.error ??= e;
        socket.destroy();
      }
      this.notify();
    });
    const onEnd = () => {
      this.ended = true;
      this.notify();
    };
    socket.on('end', onEnd);
    socket.on('close', onEnd);
    socket.on('error', () => {
      this.error ??= new Unavailable('guest.channel.reset', 'connection to the proxy failed');
      this.notify();
    });
  }

  /** Connects to `unix:PATH` or `tcp:HOST:PORT`. */
  static open(address: string, timeoutMs: number): Promise<GuestChannel> {
    let socket: Socket;
    if (address.startsWith('unix:')) socket = connect(address.slice(5));
    else {
      const m = /^tcp:(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):([0-9]{1,5})$/.exec(address);
      if (!m)
        throw new InvalidArgument('guest.connect', `expected unix:PATH or tcp:HOST:PORT, got ${address}`);
      socket = connect(Number(m[3]), (m[1] ?? m[2])!);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Unavailable('guest.channel.timeout', `no connection to ${address} in ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(new GuestChannel(socket));
      });
      socket.once('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(new Unavailable('guest.channel.connect', `cannot connect to ${address}: ${e.code}`));
      });
    });
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  send(payload: Uint8Array): Promise<void> {
    const frame = encodeFrame(payload);
    return new Promise((resolve, reject) => {
      this.socket.write(frame, (err) =>
        err ? reject(new Unavailable('guest.channel.reset', 'write to the proxy failed')) : resolve(),
      );
    });
  }

  /** The next frame. Throws Unavailable `guest.channel.timeout` / `guest.channel.closed`. */
  async receive(timeoutMs: number): Promise<Uint8Array> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.error) throw this.error;
      const f = this.decoder.next();
      if (f) return f;
      if (this.ended) {
        this.decoder.end();
        throw new Unavailable('guest.channel.closed', 'the proxy closed the connection');
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Unavailable('guest.channel.timeout', `no reply within ${timeoutMs} ms`);
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
