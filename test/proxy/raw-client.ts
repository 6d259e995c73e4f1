/** A deliberately low-level client for driving the proxy byte by byte, including badly. */
import { connect, type Socket } from 'node:net';
import { encodeFrame, FrameDecoder } from '../../src/formats/aproxy/frame.js';

export class RawClient {
  readonly decoder = new FrameDecoder();
  closedAt: number | undefined;
  private waiters: (() => void)[] = [];

  private constructor(readonly socket: Socket) {
    socket.on('data', (c: Buffer) => {
      this.decoder.push(c);
      this.flush();
    });
    socket.on('close', () => {
      this.closedAt = Date.now();
      this.flush();
    });
    socket.on('error', () => {});
  }

  private flush(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** `localAddress` (TCP only) picks the source address, e.g. 127.0.0.2, to play another peer. */
  static connect(address: string, localAddress?: string): Promise<RawClient> {
    const s = address.startsWith('unix:')
      ? connect(address.slice(5))
      : connect({
          port: Number(address.split(':').pop()),
          host: address.slice(4, address.lastIndexOf(':')),
          ...(localAddress ? { localAddress } : {}),
        });
    return new Promise((resolve, reject) => {
      s.once('connect', () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  sendFrame(payload: Uint8Array | string): void {
    this.socket.write(
      encodeFrame(typeof payload === 'string' ? new Uint8Array(Buffer.from(payload)) : payload),
    );
  }

  sendRaw(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  /** The next frame as text, or 'EOF' if the proxy closed first; throws after `ms`. */
  async next(ms = 5000): Promise<string> {
    const deadline = Date.now() + ms;
    for (;;) {
      const f = this.decoder.next();
      if (f) return Buffer.from(f).toString('utf8');
      if (this.closedAt !== undefined) return 'EOF';
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for a frame');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Resolves with the time the proxy closed the connection. */
  async closed(ms = 5000): Promise<number> {
    const deadline = Date.now() + ms;
    while (this.closedAt === undefined) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('connection still open');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.closedAt;
  }

  end(): void {
    this.socket.end();
  }
}
