import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  decodeFrameHeader,
  encodeFrame,
  FrameDecoder,
  MAX_FRAME_SIZE,
} from '../../../src/formats/aproxy/frame.js';
import { isTyped, throwsCode } from '../../helpers/assert-error.js';

const header = (n: bigint) => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, n, true);
  return b;
};

describe('aproxy framing', () => {
  it('prefixes the payload with its length as u64 little-endian', () => {
    const f = encodeFrame(new Uint8Array([0x7b, 0x7d]));
    assert.deepEqual([...f], [2, 0, 0, 0, 0, 0, 0, 0, 0x7b, 0x7d]);
    const big = encodeFrame(new Uint8Array(0x10203));
    assert.deepEqual([...big.subarray(0, 8)], [0x03, 0x02, 0x01, 0, 0, 0, 0, 0]);
  });

  it('rejects a lying length prefix from the 8 header bytes alone, before any payload arrives', () => {
    for (const claim of [BigInt(MAX_FRAME_SIZE) + 1n, 0xffff_ffffn, 1n << 40n, 0xffff_ffff_ffff_ffffn]) {
      const d = new FrameDecoder();
      throwsCode(() => d.push(header(claim)), 'ERR_MALFORMED', 'aproxy.frame.too_large');
      // The decoder stays failed: later bytes are not buffered.
      throwsCode(() => d.push(new Uint8Array(10)), 'ERR_MALFORMED', 'aproxy.frame.too_large');
      assert.equal(d.pending, 8);
    }
    throwsCode(() => decodeFrameHeader(header(1n << 63n)), 'ERR_MALFORMED', 'aproxy.frame.too_large');
  });

  it('accepts exactly 1 MiB and refuses 1 MiB + 1 on both encode and decode', () => {
    assert.equal(decodeFrameHeader(header(BigInt(MAX_FRAME_SIZE))), MAX_FRAME_SIZE);
    const d = new FrameDecoder();
    d.push(encodeFrame(new Uint8Array(MAX_FRAME_SIZE).fill(0x61)));
    assert.equal(d.next()?.length, MAX_FRAME_SIZE);
    throwsCode(
      () => encodeFrame(new Uint8Array(MAX_FRAME_SIZE + 1)),
      'ERR_MALFORMED',
      'aproxy.frame.too_large',
    );
  });

  it('reports EOF inside a frame (header or payload) as truncated, and a clean EOF as fine', () => {
    const a = new FrameDecoder();
    a.push(new Uint8Array([5, 0, 0]));
    assert.equal(a.next(), undefined);
    throwsCode(() => a.end(), 'ERR_MALFORMED', 'aproxy.frame.truncated');
    const b = new FrameDecoder();
    b.push(encodeFrame(new Uint8Array(10)).subarray(0, 12));
    assert.equal(b.next(), undefined);
    throwsCode(() => b.end(), 'ERR_MALFORMED', 'aproxy.frame.truncated');
    const c = new FrameDecoder();
    c.push(encodeFrame(new Uint8Array([1])));
    assert.deepEqual([...c.next()!], [1]);
    c.end();
  });

  it('refuses a peer that floods far ahead of the lock-step protocol', () => {
    const d = new FrameDecoder(MAX_FRAME_SIZE, 1024);
    d.push(encodeFrame(new Uint8Array(100)));
    throwsCode(() => d.push(new Uint8Array(2048)), 'ERR_MALFORMED', 'aproxy.frame.flood');
  });

  it('property: any chunking of any frame sequence yields the same frames', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 6 }),
        fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 20 }),
        (payloads, cuts) => {
          const stream = Buffer.concat(payloads.map((p) => encodeFrame(p)));
          const d = new FrameDecoder();
          const out: Uint8Array[] = [];
          let off = 0;
          let i = 0;
          while (off < stream.length) {
            const n = cuts[i++ % cuts.length]!;
            d.push(stream.subarray(off, off + n));
            off += n;
            for (let f = d.next(); f; f = d.next()) out.push(f);
          }
          d.end();
          assert.deepEqual(
            out.map((x) => Buffer.from(x).toString('hex')),
            payloads.map((x) => Buffer.from(x).toString('hex')),
          );
        },
      ),
      { numRuns: 300 },
    );
  });

  it('property: arbitrary bytes only ever produce frames or a typed error', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 10 }), (chunks) => {
        const d = new FrameDecoder();
        try {
          for (const c of chunks) {
            d.push(c);
            while (d.next()) {
              // drain
            }
          }
          d.end();
        } catch (e) {
          assert.ok(isTyped(e), String(e));
        }
      }),
      { numRuns: 500 },
    );
  });
});
