import { MalformedEvidence } from '../errors.js';

/**
 * A bounds-checked little-endian reader over a fixed buffer. Every read checks the remaining length first
 * and throws {@link MalformedEvidence} (`ERR_MALFORMED`) instead of reading past the end, so parsers built on
 * it cannot throw a RangeError or return garbage for short input.
 */
export class Reader {
  private pos = 0;

  constructor(
    readonly buf: Uint8Array,
    /** Names the structure in error reasons, e.g. `snp.report`. */
    readonly what: string,
  ) {}

  get offset(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  /** Moves to an absolute offset (spec tables give hex offsets; reading at them documents the layout). */
  at(offset: number): this {
    if (offset < 0 || offset > this.buf.length) this.fail(`offset 0x${offset.toString(16)} out of range`);
    this.pos = offset;
    return this;
  }

  private take(n: number): number {
    if (n < 0 || this.pos + n > this.buf.length) {
      this.fail(`needs ${n} bytes at 0x${this.pos.toString(16)}, has ${this.remaining}`);
    }
    const p = this.pos;
    this.pos += n;
    return p;
  }

  u8(): number {
    return this.buf[this.take(1)]!;
  }

  u16le(): number {
    const p = this.take(2);
    return this.buf[p]! | (this.buf[p + 1]! << 8);
  }

  u16be(): number {
    const p = this.take(2);
    return (this.buf[p]! << 8) | this.buf[p + 1]!;
  }

  u32le(): number {
    const p = this.take(4);
    return (
      (this.buf[p]! | (this.buf[p + 1]! << 8) | (this.buf[p + 2]! << 16) | (this.buf[p + 3]! << 24)) >>> 0
    );
  }

  u32be(): number {
    const p = this.take(4);
    return (
      ((this.buf[p]! << 24) | (this.buf[p + 1]! << 16) | (this.buf[p + 2]! << 8) | this.buf[p + 3]!) >>> 0
    );
  }

  u64le(): bigint {
    const lo = BigInt(this.u32le());
    const hi = BigInt(this.u32le());
    return (hi << 32n) | lo;
  }

  u64be(): bigint {
    const hi = BigInt(this.u32be());
    const lo = BigInt(this.u32be());
    return (hi << 32n) | lo;
  }

  /** A view (not a copy) of the next n bytes. */
  bytes(n: number): Uint8Array {
    const p = this.take(n);
    return this.buf.subarray(p, p + n);
  }

  /** Reserved bytes: must be zero. `label` names the range in the error reason. */
  mbz(n: number, label = `0x${this.pos.toString(16)}`): this {
    const p = this.take(n);
    for (let i = p; i < p + n; i++) {
      if (this.buf[i] !== 0) {
        throw new MalformedEvidence(
          `${this.what}.reserved_nonzero`,
          `${this.what}: reserved bytes ${label} must be zero (byte 0x${i.toString(16)} is 0x${this.buf[i]!.toString(16)})`,
        );
      }
    }
    return this;
  }

  /** Asserts the whole input was consumed. */
  end(): void {
    if (this.pos !== this.buf.length) {
      throw new MalformedEvidence(
        `${this.what}.trailing_bytes`,
        `${this.what}: ${this.remaining} trailing bytes`,
      );
    }
  }

  fail(message: string): never {
    throw new MalformedEvidence(`${this.what}.truncated`, `${this.what}: ${message}`);
  }
}

/** A little-endian writer into a fixed-size zeroed buffer, the mirror of {@link Reader} for encoders. */
export class Writer {
  readonly buf: Uint8Array;
  private readonly view: DataView;
  private pos = 0;

  constructor(size: number) {
    this.buf = new Uint8Array(size);
    this.view = new DataView(this.buf.buffer);
  }

  at(offset: number): this {
    this.pos = offset;
    return this;
  }

  u8(v: number): this {
    this.view.setUint8(this.pos, v);
    this.pos += 1;
    return this;
  }

  u16le(v: number): this {
    this.view.setUint16(this.pos, v, true);
    this.pos += 2;
    return this;
  }

  u32le(v: number): this {
    this.view.setUint32(this.pos, v >>> 0, true);
    this.pos += 4;
    return this;
  }

  u64le(v: bigint): this {
    this.view.setBigUint64(this.pos, BigInt.asUintN(64, v), true);
    this.pos += 8;
    return this;
  }

  bytes(b: Uint8Array, size = b.length): this {
    if (b.length !== size) throw new RangeError(`expected ${size} bytes, got ${b.length}`);
    this.buf.set(b, this.pos);
    this.pos += size;
    return this;
  }
}
