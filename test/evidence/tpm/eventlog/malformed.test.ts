/**
 * Hostile and broken event logs, written by hand: each is refused with its stable reason (PFP rev 1.05
 * §10.2.1, §10.2.2, §10.4.5.1), a real log truncated at every offset is either a shorter valid log (at an
 * event boundary) or `eventlog.truncated`, and a bounded property over mutated real logs never sees an
 * untyped error from parse, decode, digest checks or replay.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { checkEventDigests } from '../../../../src/evidence/tpm/eventlog-digests.js';
import { replayEventLog, replayRegisters } from '../../../../src/evidence/tpm/eventlog-replay.js';
import { TPM_ALG } from '../../../../src/formats/tpm/constants.js';
import { decodeEvent } from '../../../../src/formats/tpm/eventlog/decode-event.js';
import { EV } from '../../../../src/formats/tpm/eventlog/event-types.js';
import {
  MAX_EVENT_LOG_SIZE,
  parseEventLog,
  parseSpecIdEvent,
} from '../../../../src/formats/tpm/eventlog/parse.js';
import { bytesFrom, fcOptions, isTypedError, valueOrTyped } from '../../../fuzz/kit.js';
import { needsVectors } from '../../../helpers/vectors.js';
import { buildEventLog } from './build.js';
import { eventLogVectors } from './vectors.js';

const reason = (r: string) => (e: { code: string; reason: string }) =>
  e.code === 'ERR_MALFORMED' && e.reason === r;

const u16 = (n: number) => Buffer.from([n & 0xff, (n >> 8) & 0xff]);
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
};

/** A Spec ID Event03 body with the given algorithm rows (hashAlg, digestSize) and vendor info. */
function specIdBody(algs: readonly [number, number][], vendor: Uint8Array = new Uint8Array()): Buffer {
  return Buffer.concat([
    Buffer.from('Spec ID Event03\0', 'latin1'),
    u32(0),
    Buffer.from([0, 2, 0, 2]),
    u32(algs.length),
    ...algs.map(([a, s]) => Buffer.concat([u16(a), u16(s)])),
    Buffer.from([vendor.length]),
    vendor,
  ]);
}

/** A log whose header event carries `body` as its data (the SHA-1 TCG_PCClientPCREvent form). */
function withHeader(body: Uint8Array, rest: Uint8Array = new Uint8Array()): Uint8Array {
  return new Uint8Array(
    Buffer.concat([u32(0), u32(EV.NO_ACTION), Buffer.alloc(20), u32(body.length), body, rest]),
  );
}

const POST = { pcr: 0, type: EV.POST_CODE, data: new Uint8Array(Buffer.from('POST')) };

/** Byte offset of event 1 in a buildEventLog log with the default algorithms (SHA-1, SHA-256). */
function firstEventOffset(log: Uint8Array): number {
  return parseEventLog(log).events[1]!.offset;
}

describe('event log: malformed Spec ID event (PFP §10.4.5.1)', () => {
  const cases: [string, Uint8Array, string][] = [
    ['no algorithms', specIdBody([]), 'eventlog.spec_id'],
    ['17 algorithms', specIdBody(Array.from({ length: 17 }, (_, i) => [0x100 + i, 32])), 'eventlog.spec_id'],
    ['a zero-byte digest size', specIdBody([[TPM_ALG.SHA256, 0]]), 'eventlog.spec_id'],
    ['a 65-byte digest size', specIdBody([[TPM_ALG.SHA256, 65]]), 'eventlog.spec_id'],
    [
      'an algorithm declared twice',
      specIdBody([
        [TPM_ALG.SHA256, 32],
        [TPM_ALG.SHA256, 32],
      ]),
      'eventlog.spec_id',
    ],
    [
      'more algorithms counted than present',
      specIdBody([[TPM_ALG.SHA256, 32]]).subarray(0, 16 + 8 + 4 + 4),
      'eventlog.spec_id.truncated',
    ],
    [
      'vendor info shorter than the data',
      Buffer.concat([specIdBody([[TPM_ALG.SHA256, 32]]), Buffer.from([1, 2])]),
      'eventlog.spec_id.trailing_bytes',
    ],
    [
      'vendor info longer than the data',
      specIdBody([[TPM_ALG.SHA256, 32]], new Uint8Array(4)).subarray(0, 16 + 8 + 4 + 4 + 1 + 2),
      'eventlog.spec_id.truncated',
    ],
  ];
  for (const [name, body, want] of cases) {
    it(`${name}: ${want}, from parseSpecIdEvent and as a log's header`, () => {
      assert.throws(() => parseSpecIdEvent(body), reason(want));
      assert.throws(() => parseEventLog(withHeader(body)), reason(want));
    });
  }

  it('a signature that is not a Spec ID event: eventlog.spec_id', () => {
    const body = specIdBody([[TPM_ALG.SHA256, 32]]);
    body.write('Spec IX', 0, 'latin1');
    assert.throws(() => parseSpecIdEvent(body), reason('eventlog.spec_id'));
  });

  it('a header naming "Spec ID Event02" is a SHA-1 log (no algorithms), not crypto-agile', () => {
    const body = specIdBody([]);
    body.write('Spec ID Event02\0', 0, 'latin1');
    const log = parseEventLog(withHeader(body.subarray(0, 16 + 8 + 1)));
    assert.equal(log.format, 'sha1');
    assert.equal(log.specId?.signature, 'Spec ID Event02');
  });
});

describe('event log: malformed TCG_PCR_EVENT2 (PFP §10.2.2)', () => {
  it('a digest count other than the declared algorithms: eventlog.digest_count', () => {
    const log = buildEventLog([POST]);
    const at = firstEventOffset(log) + 8;
    for (const n of [0, 1, 3, 0xffffffff]) {
      const bad = Uint8Array.from(log);
      Buffer.from(bad.buffer).writeUInt32LE(n, at);
      assert.throws(() => parseEventLog(bad), reason('eventlog.digest_count'), `count ${n}`);
    }
  });

  it('a digest of an undeclared algorithm: eventlog.digest_alg', () => {
    const log = buildEventLog([POST]);
    const bad = Uint8Array.from(log);
    // The first digest's algorithm (SHA-1 declared) becomes SHA-384 (not declared).
    Buffer.from(bad.buffer).writeUInt16LE(TPM_ALG.SHA384, firstEventOffset(log) + 12);
    assert.throws(() => parseEventLog(bad), reason('eventlog.digest_alg'));
  });

  it('two digests of the same algorithm: eventlog.digest_alg', () => {
    // Both algorithms have 32-byte digests, so the second row can name the first algorithm again.
    const algs = [TPM_ALG.SHA256, TPM_ALG.SHA3_256];
    const log = buildEventLog([POST], algs);
    const bad = Uint8Array.from(log);
    Buffer.from(bad.buffer).writeUInt16LE(TPM_ALG.SHA256, firstEventOffset(log) + 12 + 2 + 32);
    assert.throws(() => parseEventLog(bad), reason('eventlog.digest_alg'));
  });

  it('a declared algorithm node cannot hash (SM3_256) parses; its bank is left out of the replay', () => {
    const sm3 = new Uint8Array(32).fill(5);
    const log = parseEventLog(
      buildEventLog([{ ...POST, digests: { [TPM_ALG.SM3_256]: sm3 } }], [TPM_ALG.SHA256, TPM_ALG.SM3_256]),
    );
    assert.deepEqual(
      log.specId?.algorithms.map((a) => a.hashAlg),
      [TPM_ALG.SHA256, TPM_ALG.SM3_256],
    );
    assert.deepEqual(
      replayEventLog(log).map((b) => b.hashAlg),
      [TPM_ALG.SHA256],
    );
    assert.throws(
      () => replayRegisters(log.events, { hashAlg: TPM_ALG.SM3_256, count: 24 }),
      reason('eventlog.replay.hash_alg'),
    );
  });

  it('an event over the size bound: eventlog.event_too_large (default 1 MiB, and the option)', () => {
    const log = buildEventLog([POST]);
    const at = firstEventOffset(log) + 12 + 22 + 34;
    const bad = Uint8Array.from(log);
    Buffer.from(bad.buffer).writeUInt32LE(1024 * 1024 + 1, at);
    assert.throws(() => parseEventLog(bad), reason('eventlog.event_too_large'));
    // At the bound itself the size is accepted and the missing bytes are what is wrong.
    Buffer.from(bad.buffer).writeUInt32LE(1024 * 1024, at);
    assert.throws(() => parseEventLog(bad), reason('eventlog.truncated'));
    // The option bounds every event, the header (37 bytes of Spec ID) included.
    const big = buildEventLog([{ ...POST, data: new Uint8Array(40) }]);
    assert.throws(() => parseEventLog(big, { maxEventSize: 39 }), reason('eventlog.event_too_large'));
    assert.equal(parseEventLog(big, { maxEventSize: 40 }).events.length, 2);
    assert.throws(() => parseEventLog(big, { maxEventSize: 36 }), reason('eventlog.event_too_large'));
  });

  it('a header event over the size bound: eventlog.event_too_large', () => {
    const hdr = withHeader(specIdBody([[TPM_ALG.SHA256, 32]]));
    Buffer.from(hdr.buffer).writeUInt32LE(0xffffffff, 28);
    assert.throws(() => parseEventLog(hdr), reason('eventlog.event_too_large'));
  });

  it('more events than the bound: eventlog.too_many_events (default 16384, and the option)', () => {
    const tiny = { pcr: 1, type: EV.POST_CODE, data: new Uint8Array() };
    // The header counts: 16383 events after it make 16384, the most accepted by default.
    const atBound = buildEventLog(Array.from({ length: 16383 }, () => tiny));
    assert.equal(parseEventLog(atBound).events.length, 16384);
    const over = buildEventLog(Array.from({ length: 16384 }, () => tiny));
    assert.throws(() => parseEventLog(over), reason('eventlog.too_many_events'));
    assert.throws(
      () => parseEventLog(buildEventLog([tiny, tiny]), { maxEvents: 2 }),
      reason('eventlog.too_many_events'),
    );
  });

  it('an empty log and one over 64 MiB: eventlog.empty, eventlog.too_large', () => {
    assert.throws(() => parseEventLog(new Uint8Array()), reason('eventlog.empty'));
    assert.throws(() => parseEventLog(new Uint8Array(MAX_EVENT_LOG_SIZE + 1)), reason('eventlog.too_large'));
  });

  it('an event naming a register outside the set is refused by replay: eventlog.replay.register', () => {
    const log = parseEventLog(buildEventLog([{ ...POST, pcr: 24 }]));
    assert.throws(() => replayEventLog(log), reason('eventlog.replay.register'));
  });
});

describe('event log: trailing bytes and the padding option', () => {
  const log = buildEventLog([POST, { ...POST, pcr: 7 }]);
  const pad = (fill: number, n: number) => new Uint8Array(Buffer.concat([log, Buffer.alloc(n, fill)]));

  it('zero or 0xff padding after the last event: eventlog.trailing_bytes by default', () => {
    for (const fill of [0x00, 0xff]) {
      for (const n of [1, 4, 100]) {
        assert.throws(() => parseEventLog(pad(fill, n)), reason('eventlog.trailing_bytes'), `${fill}x${n}`);
      }
    }
  });

  it("trailing: 'padding' accepts an all-0x00 or all-0xff tail, with the same events", () => {
    const want = parseEventLog(log).events.length;
    for (const fill of [0x00, 0xff]) {
      for (const n of [1, 4, 100, 65536]) {
        assert.equal(parseEventLog(pad(fill, n), { trailing: 'padding' }).events.length, want);
      }
    }
  });

  it("trailing: 'padding' refuses a mixed tail, or bytes after the padding", () => {
    const mixed = new Uint8Array(Buffer.concat([log, Buffer.from([0, 0, 0xff, 0xff])]));
    assert.throws(
      () => parseEventLog(mixed, { trailing: 'padding' }),
      (e: { code: string }) => e.code === 'ERR_MALFORMED',
    );
    const junk = new Uint8Array(Buffer.concat([log, Buffer.alloc(64), Buffer.from([1])]));
    assert.throws(
      () => parseEventLog(junk, { trailing: 'padding' }),
      (e: { code: string }) => e.code === 'ERR_MALFORMED',
    );
  });

  it('a partial event that is not padding is eventlog.truncated either way', () => {
    const partial = new Uint8Array(Buffer.concat([log, u32(7), u32(EV.POST_CODE)]));
    assert.throws(() => parseEventLog(partial), reason('eventlog.truncated'));
    assert.throws(() => parseEventLog(partial, { trailing: 'padding' }), reason('eventlog.truncated'));
  });
});

describe('event log: real logs truncated and mutated', needsVectors, () => {
  it('truncated at every offset: a shorter log at event boundaries, else eventlog.truncated', () => {
    for (const v of eventLogVectors().filter(
      (x) => x.name === 'arch-linux-workstation' || x.name === 'debian-10',
    )) {
      const full = parseEventLog(v.log);
      const boundaries = new Map(full.events.map((e, i) => [e.offset, i]));
      for (let n = 0; n < v.log.length; n++) {
        const head = v.log.subarray(0, n);
        if (n === 0) {
          assert.throws(() => parseEventLog(head), reason('eventlog.empty'));
          continue;
        }
        const events = boundaries.get(n);
        if (events !== undefined) {
          assert.equal(parseEventLog(head).events.length, events, `${v.name} at ${n}`);
        } else {
          // A cut inside an event whose bytes so far are all 0x00 (PCR 0's index) looks like padding and is
          // refused as such; every other cut is a truncated event.
          const start = Math.max(...[...boundaries.keys()].filter((o) => o < n));
          const tail = head.subarray(start);
          const want = tail.every((x) => x === tail[0]) && (tail[0] === 0 || tail[0] === 0xff);
          assert.throws(
            () => parseEventLog(head),
            reason(want && start > 0 ? 'eventlog.trailing_bytes' : 'eventlog.truncated'),
            `${v.name} at ${n}`,
          );
        }
      }
    }
  });

  it('mutated real logs: parse, decode, digest checks and replay give a value or a typed error', async () => {
    const seeds = eventLogVectors().map((v) => v.log);
    await fc.assert(
      fc.asyncProperty(bytesFrom(seeds), async (b) => {
        await valueOrTyped('eventlog', b, () => {
          let refused: unknown = null;
          try {
            parseEventLog(b);
          } catch (e) {
            refused = e;
          }
          const log = parseEventLog(b, { trailing: 'padding' });
          // What the padding option accepts, the default refuses only as trailing bytes.
          if (refused !== null) {
            if (!isTypedError(refused)) throw refused;
            assert.equal(refused.reason, 'eventlog.trailing_bytes');
          }
          for (const e of log.events) decodeEvent(e);
          checkEventDigests(log);
          replayEventLog(log);
        });
      }),
      fcOptions({ numRuns: 300, timeMs: 10_000 }),
    );
  });
});
