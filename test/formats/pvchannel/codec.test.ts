/** The pvchannel codecs (docs/pvchannel.md §2, §3, §7.1, §8): round trips, every header check, hostile lengths. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ChunkAssembler, splitChunks } from '../../../src/formats/pvchannel/chunks.js';
import {
  MAX_PAYLOAD,
  PAGE_SIZE,
  PvCall,
  PvFlag,
  PvStatus,
} from '../../../src/formats/pvchannel/constants.js';
import {
  decodePage,
  decodeRecord,
  encodePage,
  encodeRecord,
  type PvMessage,
  requestMessage,
} from '../../../src/formats/pvchannel/message.js';
import {
  decodeNegotiateAnswer,
  decodeNegotiateRequest,
  encodeNegotiateAnswer,
  encodeNegotiateRequest,
} from '../../../src/formats/pvchannel/negotiate.js';
import {
  decodePortAccess,
  encodePortAccess,
  encodeSocketFrame,
  SocketFrameDecoder,
  SocketFrameType,
} from '../../../src/formats/pvchannel/socket-frame.js';
import { fcOptions, isTypedError } from '../../fuzz/kit.js';
import { throwsCode } from '../../helpers/assert-error.js';

const M = 'ERR_MALFORMED';
const msg = (p: Partial<PvMessage> = {}): PvMessage =>
  requestMessage({
    callId: PvCall.GetPlatformIdentity,
    sequence: 7,
    epoch: 3,
    payload: Uint8Array.of(1, 2, 3),
    ...p,
  });

function poke(b: Uint8Array, at: number, v: number): Uint8Array {
  const c = Uint8Array.from(b);
  c[at] = v;
  return c;
}

describe('pvchannel page and record', () => {
  it('round-trips a page and a record, payload copied out of the shared page', () => {
    const m = msg({ flags: PvFlag.More, chunk: 4, status: PvStatus.Ok });
    const page = encodePage(m);
    assert.equal(page.length, PAGE_SIZE);
    const d = decodePage(page);
    assert.deepEqual({ ...d, payload: [...d.payload] }, { ...m, payload: [1, 2, 3] });
    page[0x20] = 9; // the guest changing the page afterwards does not change what was decoded
    assert.equal(d.payload[0], 1);
    assert.deepEqual(decodeRecord(encodeRecord(m)), decodePage(encodePage(m)));
    assert.equal(encodeRecord(m).length, 0x20 + 3);
  });

  it('refuses each header fault with its reason', () => {
    const page = encodePage(msg());
    throwsCode(() => decodePage(page.subarray(0, 4095)), M, 'pvchannel.page.truncated');
    throwsCode(() => decodePage(poke(page, 0, 0)), M, 'pvchannel.page.magic');
    throwsCode(() => decodePage(poke(page, 4, 2)), M, 'pvchannel.page.version');
    throwsCode(() => decodePage(poke(page, 6, 4)), M, 'pvchannel.page.flags');
    throwsCode(() => decodePage(poke(page, 0x16, 1)), M, 'pvchannel.page.reserved_nonzero');
    throwsCode(() => decodePage(poke(page, 0x1f, 1)), M, 'pvchannel.page.reserved_nonzero');
    throwsCode(() => decodePage(poke(page, 0x23, 1)), M, 'pvchannel.page.padding');
    throwsCode(() => decodePage(poke(page, 0xfff, 1)), M, 'pvchannel.page.padding');
  });

  it('never trusts a payload length: over the page is refused, in the page it must match the record', () => {
    const page = encodePage(msg());
    for (const len of [MAX_PAYLOAD + 1, 0xffff, 0xffffffff]) {
      const p = Uint8Array.from(page);
      new DataView(p.buffer).setUint32(0x18, len, true);
      throwsCode(() => decodePage(p), M, 'pvchannel.page.length');
    }
    const rec = encodeRecord(msg());
    throwsCode(() => decodeRecord(rec.subarray(0, rec.length - 1)), M, 'pvchannel.record.truncated');
    throwsCode(() => decodeRecord(Uint8Array.from([...rec, 0])), M, 'pvchannel.record.trailing_bytes');
    throwsCode(() => decodeRecord(new Uint8Array(PAGE_SIZE + 1)), M, 'pvchannel.record.length');
    throwsCode(
      () => encodePage(msg({ payload: new Uint8Array(MAX_PAYLOAD + 1) })),
      M,
      'pvchannel.encode.length',
    );
  });
});

describe('pvchannel chunks', () => {
  it('splits and reassembles with explicit continuation', () => {
    const body = Uint8Array.from({ length: 3 * MAX_PAYLOAD + 5 }, (_, i) => i & 0xff);
    const parts = splitChunks(body);
    assert.equal(parts.length, 4);
    const a = new ChunkAssembler();
    let out: Uint8Array | undefined;
    parts.forEach((p, i) => {
      out = a.push(3, 1, i, i < parts.length - 1, p);
    });
    assert.deepEqual(out, body);
    assert.equal(splitChunks(new Uint8Array(0)).length, 1);
  });

  it('refuses hostile chunk sequences and drops the partial message', () => {
    const a = new ChunkAssembler(3 * MAX_PAYLOAD);
    const p = new Uint8Array(MAX_PAYLOAD);
    throwsCode(() => a.push(3, 1, 1, true, p), M, 'pvchannel.chunk.sequence'); // does not start at 0
    a.push(3, 1, 0, true, p);
    throwsCode(() => a.push(3, 1, 2, true, p), M, 'pvchannel.chunk.sequence'); // skips
    assert.equal(a.inProgress, false);
    a.push(3, 1, 0, true, p);
    throwsCode(() => a.push(4, 1, 1, true, p), M, 'pvchannel.chunk.sequence'); // another call
    a.push(3, 1, 0, true, p);
    throwsCode(() => a.push(3, 2, 1, true, p), M, 'pvchannel.chunk.sequence'); // another epoch
    a.push(3, 1, 0, true, p);
    throwsCode(() => a.push(3, 1, 0, true, p), M, 'pvchannel.chunk.sequence'); // chunk 0 again
    // a sender that never ends is stopped at the bound, not at its own say-so
    a.push(3, 1, 0, true, p);
    a.push(3, 1, 1, true, p);
    a.push(3, 1, 2, true, p);
    throwsCode(() => a.push(3, 1, 3, true, Uint8Array.of(1)), M, 'pvchannel.chunk.too_large');
    throwsCode(
      () => splitChunks(new Uint8Array(3 * MAX_PAYLOAD + 1), 3 * MAX_PAYLOAD),
      M,
      'pvchannel.chunk.too_large',
    );
  });
});

describe('pvchannel NEGOTIATE payloads', () => {
  it('round-trips and refuses bad fields', () => {
    const q = { op: 2, version: 1, features: 0b11n } as const;
    assert.deepEqual(decodeNegotiateRequest(encodeNegotiateRequest(q)), q);
    const a = { minVersion: 1, maxVersion: 1, epoch: 9, offered: 0b111n, accepted: 0b11n, version: 1 };
    assert.deepEqual(decodeNegotiateAnswer(encodeNegotiateAnswer(a)), a);
    throwsCode(
      () => decodeNegotiateRequest(encodeNegotiateRequest({ op: 3 as never, version: 0, features: 0n })),
      M,
      'pvchannel.negotiate.op',
    );
    throwsCode(
      () => decodeNegotiateRequest(encodeNegotiateRequest({ op: 1, version: 1, features: 0n })),
      M,
      'pvchannel.negotiate.query_fields',
    );
    throwsCode(
      () => decodeNegotiateRequest(encodeNegotiateRequest({ op: 2, version: 1, features: 1n << 40n })),
      M,
      'pvchannel.negotiate.reserved_feature',
    );
    throwsCode(
      () => decodeNegotiateRequest(poke(encodeNegotiateRequest(q), 5, 1)),
      M,
      'pvchannel.negotiate.reserved_nonzero',
    );
    throwsCode(
      () => decodeNegotiateAnswer(encodeNegotiateAnswer({ ...a, accepted: 0b1000n })),
      M,
      'pvchannel.negotiate_answer.accepted',
    );
    throwsCode(
      () => decodeNegotiateAnswer(encodeNegotiateAnswer({ ...a, minVersion: 2 })),
      M,
      'pvchannel.negotiate_answer.versions',
    );
    throwsCode(
      () => decodeNegotiateAnswer(poke(encodeNegotiateAnswer(a), 0x1f, 1)),
      M,
      'pvchannel.negotiate_answer.reserved_nonzero',
    );
  });
});

describe('vmm-device socket frames', () => {
  it('decodes frames split anywhere and refuses bad headers', () => {
    const f1 = encodeSocketFrame({ type: SocketFrameType.Doorbell, id: 5, body: new Uint8Array(PAGE_SIZE) });
    const f2 = encodeSocketFrame({
      type: SocketFrameType.PortRead,
      id: 6,
      body: encodePortAccess({ port: 0x520, size: 4 }),
    });
    const all = Uint8Array.from([...f1, ...f2]);
    const d = new SocketFrameDecoder();
    const got = [];
    for (let i = 0; i < all.length; i += 13) {
      d.push(all.subarray(i, i + 13));
      for (let f = d.next(); f; f = d.next()) got.push(f);
    }
    assert.deepEqual(
      got.map((f) => [f.type, f.id, f.body.length]),
      [
        [1, 5, PAGE_SIZE],
        [3, 6, 4],
      ],
    );
    assert.deepEqual(decodePortAccess(got[1]!.body), { port: 0x520, size: 4 });
    assert.deepEqual(decodePortAccess(encodePortAccess({ port: 1, size: 2, value: 7 })), {
      port: 1,
      size: 2,
      value: 7,
    });
    const bad = (h: number[]) => {
      const x = new SocketFrameDecoder();
      x.push(Uint8Array.from(h));
      return () => x.next();
    };
    throwsCode(bad([9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), M, 'vmmdev.frame.type');
    throwsCode(bad([1, 0, 1, 0, 0, 0, 0, 0, 0, 0x10, 0, 0]), M, 'vmmdev.frame.reserved_nonzero');
    throwsCode(bad([1, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]), M, 'vmmdev.frame.length');
    throwsCode(() => decodePortAccess(Uint8Array.of(0, 0, 3, 0)), M, 'vmmdev.port.size');
  });
});

describe('pvchannel decoders under fast-check', () => {
  const typedOrValue = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      assert.ok(isTypedError(e), String(e));
    }
  };
  const seed = encodePage(msg());
  const mutated = fc
    .tuple(fc.array(fc.tuple(fc.nat(PAGE_SIZE - 1), fc.nat(255)), { maxLength: 8 }), fc.nat(PAGE_SIZE + 8))
    .map(([edits, len]) => {
      const b = new Uint8Array(len);
      b.set(seed.subarray(0, Math.min(len, seed.length)));
      for (const [at, v] of edits) if (at < b.length) b[at] = v;
      return b;
    });
  it('decodePage / decodeRecord: a value or a typed error', () => {
    fc.assert(
      fc.property(mutated, (b) => {
        typedOrValue(() => decodePage(b));
        typedOrValue(() => decodeRecord(b.subarray(0, 0x20 + (b[0x18] ?? 0))));
      }),
      fcOptions({ numRuns: 300, timeMs: 1500 }),
    );
  });
  it('chunk assembler and socket decoder: a value or a typed error', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(3), fc.nat(2), fc.nat(5), fc.boolean(), fc.nat(MAX_PAYLOAD)), {
          maxLength: 20,
        }),
        fc.uint8Array({ maxLength: 200 }),
        (chunks, stream) => {
          const a = new ChunkAssembler(4 * MAX_PAYLOAD);
          for (const [call, epoch, index, more, len] of chunks)
            typedOrValue(() => a.push(call, epoch, index, more, new Uint8Array(len)));
          const d = new SocketFrameDecoder(1024);
          typedOrValue(() => {
            d.push(stream);
            while (d.next()) {
              // drain
            }
          });
        },
      ),
      fcOptions({ numRuns: 300, timeMs: 1500 }),
    );
  });
});
