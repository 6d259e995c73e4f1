import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { Unavailable } from '../errors.js';
import { PAGE_SIZE, PvStatus } from '../formats/pvchannel/constants.js';
import {
  decodePortAccess,
  encodePortAccess,
  encodeSocketFrame,
  type SocketFrame,
  SocketFrameDecoder,
  SocketFrameType,
} from '../formats/pvchannel/socket-frame.js';
import type { PvDevice } from './device.js';
import { type PortBus, type PortNumbers, PortPath } from './port-path.js';

/**
 * The `vouchsafe vmm-device` backend (docs/pvchannel.md §8): the device served on a unix stream socket to a
 * VMM that forwards doorbell and port events. A malformed frame is answered with ERROR and that connection is
 * closed; the device and other connections go on.
 */
export function serveVmmDevice(
  device: PvDevice,
  ports: PortNumbers,
  log: (reason: string) => void = () => {},
): Server {
  const conns = new Set<Socket>();
  // Port-path completions go to every connected VMM (normally one), which raises the guest's notification.
  const completion = encodeSocketFrame({ type: SocketFrameType.Completion, id: 0, body: new Uint8Array(0) });
  const portPath = new PortPath(device, ports, () => {
    for (const s of conns) if (!s.destroyed) s.write(completion);
  });
  const server = createServer((sock) => {
    conns.add(sock);
    const dec = new SocketFrameDecoder();
    const send = (f: SocketFrame) => {
      if (!sock.destroyed) sock.write(encodeSocketFrame(f));
    };
    sock.on('close', () => conns.delete(sock));
    sock.on('error', () => sock.destroy());
    sock.on('data', (chunk: Buffer) => {
      try {
        dec.push(chunk);
        for (let f = dec.next(); f; f = dec.next()) handle(f, send);
      } catch (e) {
        const reason =
          e instanceof Error && 'reason' in e ? String((e as { reason: string }).reason) : 'vmmdev.internal';
        log(reason);
        send({ type: SocketFrameType.Error, id: 0, body: new TextEncoder().encode(reason.slice(0, 256)) });
        sock.end();
      }
    });
  });
  const handle = (f: SocketFrame, send: (f: SocketFrame) => void) => {
    if (f.type === SocketFrameType.Doorbell) {
      void device.ring(f.body, 'page').then((r) => {
        // An early ring: the guest's own page back with only the status word set to BUSY.
        const page = r.busy ? Uint8Array.from(f.body) : r.bytes;
        if (r.busy) new DataView(page.buffer).setUint16(0x0a, PvStatus.Busy, true);
        send({ type: SocketFrameType.Page, id: f.id, body: page });
      });
    } else if (f.type === SocketFrameType.PortWrite) {
      const a = decodePortAccess(f.body);
      portPath.write(a.port, a.size, a.value ?? 0);
      send({ type: SocketFrameType.PortAck, id: f.id, body: new Uint8Array(0) });
    } else if (f.type === SocketFrameType.PortRead) {
      const a = decodePortAccess(f.body);
      const v = new Uint8Array(4);
      new DataView(v.buffer).setUint32(0, portPath.read(a.port, a.size), true);
      send({ type: SocketFrameType.PortValue, id: f.id, body: v });
    } else {
      throw Object.assign(new Error('frame not for the device'), { reason: 'vmmdev.frame.direction' });
    }
  };
  return server;
}

/**
 * The VMM's end of the socket, as a test VMM (or a Node VMM) uses it: forwards a doorbell with the page and
 * applies the page that comes back; port accesses; completions. Replies are matched by id.
 */
export class VmmSocketClient {
  private readonly dec = new SocketFrameDecoder();
  private readonly waiting = new Map<number, (f: SocketFrame) => void>();
  private nextId = 1;
  private completions = 0;
  private completionWaiters: (() => void)[] = [];
  private failure: Error | undefined;

  private constructor(private readonly sock: Socket) {
    sock.on('data', (chunk: Buffer) => {
      try {
        this.dec.push(chunk);
        for (let f = this.dec.next(); f; f = this.dec.next()) this.dispatch(f);
      } catch (e) {
        this.fail(e as Error);
      }
    });
    sock.on('close', () => this.fail(new Unavailable('vmmdev.closed', 'the device closed the socket')));
    sock.on('error', (e) => this.fail(e));
  }

  static connect(path: string): Promise<VmmSocketClient> {
    return new Promise((resolve, reject) => {
      const s = createConnection(path, () => resolve(new VmmSocketClient(s)));
      s.once('error', () => reject(new Unavailable('vmmdev.connect', 'cannot reach the device socket')));
    });
  }

  /** Forwards a doorbell: the page as read from guest memory; resolves with the page to write back. */
  async doorbell(page: Uint8Array): Promise<Uint8Array> {
    return (await this.request(SocketFrameType.Doorbell, page)).body;
  }

  /** A port bus over the socket for the guest's port-only transport. */
  portBus(): PortBus {
    return {
      out: async (port, size, value) => {
        await this.request(SocketFrameType.PortWrite, encodePortAccess({ port, size, value }));
      },
      in: async (port, size) => {
        const f = await this.request(SocketFrameType.PortRead, encodePortAccess({ port, size }));
        return new DataView(f.body.buffer, f.body.byteOffset).getUint32(0, true);
      },
      completion: () => {
        if (this.completions > 0) {
          this.completions--;
          return Promise.resolve();
        }
        return new Promise((resolve) => this.completionWaiters.push(resolve));
      },
    };
  }

  /** Sends raw bytes (tests of the device's framing checks). */
  writeRaw(b: Uint8Array): void {
    this.sock.write(b);
  }

  close(): void {
    this.sock.destroy();
  }

  private request(type: SocketFrameType, body: Uint8Array): Promise<SocketFrame> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, (f) => {
        if (f.type === SocketFrameType.Error)
          reject(new Unavailable('vmmdev.error', 'the device refused a frame'));
        else resolve(f);
      });
      this.sock.write(encodeSocketFrame({ type, id, body }));
      this.rejectors.set(id, reject);
    });
  }

  private readonly rejectors = new Map<number, (e: Error) => void>();

  private dispatch(f: SocketFrame): void {
    if (f.type === SocketFrameType.Completion) {
      const w = this.completionWaiters.shift();
      if (w) w();
      else this.completions++;
      return;
    }
    if (f.type === SocketFrameType.Error && f.id === 0) {
      this.fail(new Unavailable('vmmdev.error', 'the device refused a frame'));
      return;
    }
    const w = this.waiting.get(f.id);
    this.waiting.delete(f.id);
    this.rejectors.delete(f.id);
    if (f.type === SocketFrameType.Page && f.body.length !== PAGE_SIZE) return;
    w?.(f);
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const r of this.rejectors.values()) r(this.failure);
    this.rejectors.clear();
    this.waiting.clear();
  }
}
