/** Appends little-endian fields and length-prefixed byte strings; used for canonical signed encodings. */
export class BytesBuilder {
  private parts: Uint8Array[] = [];
  private size = 0;

  raw(b: Uint8Array): this {
    this.parts.push(b);
    this.size += b.length;
    return this;
  }

  u8(v: number): this {
    return this.raw(Uint8Array.of(v & 0xff));
  }

  u16le(v: number): this {
    const b = new Uint8Array(2);
    new DataView(b.buffer).setUint16(0, v, true);
    return this.raw(b);
  }

  u32le(v: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v >>> 0, true);
    return this.raw(b);
  }

  u64le(v: bigint): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, v), true);
    return this.raw(b);
  }

  /** u32le(length) || bytes. */
  lp(b: Uint8Array): this {
    return this.u32le(b.length).raw(b);
  }

  /** u32le(UTF-8 length) || UTF-8 bytes. */
  lpString(s: string): this {
    return this.lp(Buffer.from(s, 'utf8'));
  }

  build(): Uint8Array {
    const out = new Uint8Array(this.size);
    let off = 0;
    for (const p of this.parts) {
      out.set(p, off);
      off += p.length;
    }
    return out;
  }
}
