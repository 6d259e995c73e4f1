import type { Socket } from 'node:net';
import { encodeFrame, FrameDecoder } from '../formats/aproxy/frame.js';
import { type BufferBudget, BufferBudgetExceeded } from './buffer-budget.js';

/** A read that did not complete within its deadline. */
export class ReadTimeout extends Error {
  constructor(readonly ms: number) {
    super(`no complete frame within ${ms} ms`);
    this.name = 'ReadTimeout';
  }
}

/** The peer closed or reset the connection. */
export class PeerClosed extends Error {
  constructor(readonly clean: boolean) {
    super(clean ? 'peer closed the connection' : 'connection reset');
    this.name = 'PeerClosed';
  }
}

/**
 * Frames over a socket, one reader at a time (the protocol is lock-step). Every `read` has its own deadline
 * for the whole frame, so a peer that trickles one byte at a time is dropped as surely as a silent one.
 * Malformed framing throws the decoder's MalformedEvidence. With a `budget`, the bytes buffered here are
 * charged to it; a chunk that does not fit fails the socket with BufferBudgetExceeded (and stops reading).
 */
export class FramedSocket {
  private readonly decoder = new FrameDecoder();
  private error: unknown;
  private ended = false;
  private wake: (() => void) | undefined;
  /** Bytes charged to the budget: always the decoder's pending bytes, 0 once released. */
  private charged = 0;
  private released = false;

  constructor(
    readonly socket: Socket,
    private readonly budget?: BufferBudget,
  ) {
    socket.on('data', (chunk: Buffer) => {
      if (this.error || this.released) return; // failed or finished: discard, charge nothing
      if (budget && !budget.tryCharge(chunk.length)) {
        this.error = new BufferBudgetExceeded(budget.limit);
        socket.pause();
        this.notify();
        return;
      }
      this.charged += budget ? chunk.length : 0;
      try {
        this.decoder.push(chunk);
      } catch (e) {
        this.error ??= e;
        socket.pause();
      }
      this.settle();
      this.notify();
    });
    socket.on('end', () => {
      this.ended = true;
      this.notify();
    });
    socket.on('close', () => {
      this.ended = true;
      this.release();
      this.notify();
    });
    socket.on('error', () => {
      this.error ??= new PeerClosed(false);
      this.notify();
    });
  }

  /** Brings the budget charge in line with what the decoder still holds. */
  private settle(): void {
    if (!this.budget || this.released) return;
    const pending = this.decoder.pending;
    if (pending < this.charged) {
      this.budget.release(this.charged - pending);
      this.charged = pending;
    }
  }

  /** Returns every byte charged to the budget; later reads charge nothing. Idempotent. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.budget?.release(this.charged);
    this.charged = 0;
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  /**
   * The next frame's payload, or undefined at a clean EOF between frames. Throws ReadTimeout, PeerClosed
   * (EOF inside a frame is MalformedEvidence `aproxy.frame.truncated`) or MalformedEvidence.
   */
  async read(timeoutMs: number): Promise<Uint8Array | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const frame = this.poll();
      if (frame !== null) return frame;
      const left = deadline - Date.now();
      if (left <= 0) throw new ReadTimeout(timeoutMs);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  /** A frame, undefined for clean EOF, or null when more bytes are needed. */
  private poll(): Uint8Array | undefined | null {
    if (this.error) throw this.error;
    const f = this.decoder.next();
    this.settle();
    if (f) return f;
    if (this.ended) {
      this.decoder.end();
      return undefined;
    }
    return null;
  }

  /** Writes one frame and resolves when the socket has accepted it. */
  write(payload: Uint8Array): Promise<void> {
    const frame = encodeFrame(payload);
    return new Promise((resolve, reject) => {
      if (this.socket.destroyed || !this.socket.writable) {
        reject(new PeerClosed(false));
        return;
      }
      this.socket.write(frame, (err) => (err ? reject(new PeerClosed(false)) : resolve()));
    });
  }

  /** Waits for the peer to close (discarding what it sends, within the decoder's bounds), up to `timeoutMs`. */
  async drainUntilEof(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ended && !this.error) {
      const left = deadline - Date.now();
      if (left <= 0) throw new ReadTimeout(timeoutMs);
      try {
        while (this.decoder.next()) {
          // discard: a 0.1.0 proxy reads to EOF and ignores what comes
        }
        this.settle();
      } catch (e) {
        this.error ??= e;
        break;
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }
}
