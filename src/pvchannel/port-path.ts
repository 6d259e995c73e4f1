import { Unavailable } from '../errors.js';
import {
  HEADER_SIZE,
  MAX_PAYLOAD,
  PAGE_SIZE,
  PortCommand,
  PortState,
} from '../formats/pvchannel/constants.js';
import { decodeRecord, encodeRecord, type PvMessage } from '../formats/pvchannel/message.js';
import type { PvDevice } from './device.js';
import type { GuestTransport } from './transport.js';

/** The two configured ports of the port-only path (docs/pvchannel.md §5). */
export interface PortNumbers {
  readonly command: number;
  readonly data: number;
}

/**
 * The device's port-only path (§5): a command port and a data port in front of the same device. Bytes
 * written to the data port are staged (at most one page; beyond it the record is marked overflowed and the
 * device answers MALFORMED); SUBMIT runs the staged record as a ring; the answer record is read back byte by
 * byte, 0 past its end. Unclaimed ports read as all ones. `onCompletion` fires when a SUBMIT's answer is
 * ready (the VMM raises the guest's notification).
 */
export class PortPath {
  private staged: number[] = [];
  private overflow = false;
  private answer: Uint8Array = new Uint8Array(0);
  private readAt = 0;
  private state: number = PortState.Idle;
  private waiters: (() => void)[] = [];

  constructor(
    private readonly device: PvDevice,
    readonly ports: PortNumbers,
    private readonly onCompletion: () => void = () => {},
  ) {}

  /** A guest OUT to `port` of `size` bytes (1, 2 or 4; data bytes little-endian). */
  write(port: number, size: number, value: number): void {
    if (port === this.ports.data) {
      for (let i = 0; i < size; i++) this.stage((value >>> (8 * i)) & 0xff);
    } else if (port === this.ports.command) {
      this.command(value >>> 0);
    }
  }

  /** A guest IN from `port` of `size` bytes. */
  read(port: number, size: number): number {
    if (port === this.ports.command) return this.state;
    if (port !== this.ports.data) return size === 4 ? 0xffffffff : (1 << (8 * size)) - 1;
    let v = 0;
    for (let i = 0; i < size; i++) v |= (this.answer[this.readAt++] ?? 0) << (8 * i);
    return v >>> 0;
  }

  /** Resolves when no SUBMIT is running (at once if none is). */
  idle(): Promise<void> {
    if (this.state !== PortState.Busy) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private stage(byte: number): void {
    if (this.staged.length >= PAGE_SIZE) this.overflow = true;
    else this.staged.push(byte);
  }

  private command(c: number): void {
    if (c === PortCommand.Reset) {
      this.staged = [];
      this.overflow = false;
      if (this.state !== PortState.Busy) {
        this.answer = new Uint8Array(0);
        this.readAt = 0;
        this.state = PortState.Idle;
      }
    } else if (c === PortCommand.Rewind) {
      this.readAt = 0;
    } else if (c === PortCommand.Submit) {
      // Spec §5: a SUBMIT while busy is an early re-ring: ignored, the state still reads busy.
      if (this.state === PortState.Busy) return;
      // An overflowed record is submitted one byte too long, so the device's own decoder refuses it.
      const record = this.overflow ? new Uint8Array(PAGE_SIZE + 1) : Uint8Array.from(this.staged);
      this.staged = [];
      this.overflow = false;
      this.state = PortState.Busy;
      void this.device.ring(record, 'record').then((r) => {
        // The page path was mid-ring: the port path's answer is a BUSY header; the guest submits again.
        this.answer = r.busy ? busyRecord() : r.bytes;
        this.readAt = 0;
        this.state = PortState.Ready;
        for (const w of this.waiters.splice(0)) w();
        this.onCompletion();
      });
    }
  }
}

function busyRecord(): Uint8Array {
  return encodeRecord({
    version: 1,
    flags: 0,
    callId: 0,
    status: 1,
    sequence: 0,
    epoch: 0,
    chunk: 0,
    payload: new Uint8Array(0),
  });
}

/** Port I/O as the guest performs it; `completion` resolves at the device's next completion after a SUBMIT. */
export interface PortBus {
  out(port: number, size: 1 | 2 | 4, value: number): Promise<void> | void;
  in(port: number, size: 1 | 2 | 4): Promise<number> | number;
  completion(): Promise<void>;
}

/** A port bus straight onto a {@link PortPath} (in process). */
export function inProcessPortBus(p: PortPath): PortBus {
  return {
    out: (port, size, value) => p.write(port, size, value),
    in: (port, size) => p.read(port, size),
    completion: () => p.idle(),
  };
}

/**
 * The guest's side of the port-only path: RESET, the record through the data port (4 bytes an access),
 * SUBMIT, wait for completion, then the answer header and exactly its payload (never more than one page's
 * worth, whatever the header claims) from the data port.
 */
export class PortTransport implements GuestTransport {
  constructor(
    private readonly bus: PortBus,
    private readonly ports: PortNumbers,
  ) {}

  async exchange(request: PvMessage): Promise<PvMessage> {
    const { bus, ports } = this;
    const record = encodeRecord(request);
    await bus.out(ports.command, 4, PortCommand.Reset);
    for (let i = 0; i < record.length; i += 4) {
      const n = Math.min(4, record.length - i);
      let v = 0;
      for (let k = 0; k < n; k++) v |= record[i + k]! << (8 * k);
      if (n === 4) await bus.out(ports.data, 4, v >>> 0);
      else for (let k = 0; k < n; k++) await bus.out(ports.data, 1, record[i + k]!);
    }
    await bus.out(ports.command, 4, PortCommand.Submit);
    await bus.completion();
    if ((await bus.in(ports.command, 4)) !== PortState.Ready) {
      throw new Unavailable('pvchannel.port.not_ready', 'the port path has no answer after completion');
    }
    const header = await this.readBytes(HEADER_SIZE);
    const claimed = new DataView(header.buffer).getUint32(0x18, true);
    // Never trust the length to size a read: at most one payload's worth, then the decoder checks it exactly.
    const payload = await this.readBytes(Math.min(claimed, MAX_PAYLOAD + 1));
    const answer = new Uint8Array(header.length + payload.length);
    answer.set(header);
    answer.set(payload, header.length);
    return decodeRecord(answer);
  }

  private async readBytes(n: number): Promise<Uint8Array> {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 4) {
      const v = await this.bus.in(this.ports.data, 4);
      for (let k = 0; k < 4 && i + k < n; k++) out[i + k] = (v >>> (8 * k)) & 0xff;
    }
    return out;
  }
}
