import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  type CborValue,
  decodeCbor,
  encodeCbor,
  encodeCborSequence,
  Tagged,
} from '../../../src/formats/c509/cbor.js';
import { onlyTyped, throwsCode } from '../../helpers/assert-error.js';
import { hex } from './assert.js';

const b = (h: string) => new Uint8Array(Buffer.from(h.replace(/\s+/g, ''), 'hex'));

describe('deterministic CBOR decoding (RFC 8949 §4.2)', () => {
  const rejected: [string, string, string][] = [
    ['integer in a longer form than needed (1 in one extra byte)', '18 01', 'c509.cbor.non_shortest'],
    ['integer in a 16-bit form that fits 8 bits', '19 0001', 'c509.cbor.non_shortest'],
    ['integer in a 64-bit form', '1b 0000000000000001', 'c509.cbor.non_shortest'],
    ['negative integer in a longer form', '38 00', 'c509.cbor.non_shortest'],
    ['string length in a longer form', '78 01 61', 'c509.cbor.non_shortest'],
    ['array length in a longer form', '98 01 01', 'c509.cbor.non_shortest'],
    ['tag number in a longer form', 'd8 01 01', 'c509.cbor.non_shortest'],
    ['indefinite-length array', '9f 01 ff', 'c509.cbor.indefinite_length'],
    ['indefinite-length map', 'bf 01 01 ff', 'c509.cbor.indefinite_length'],
    ['indefinite-length byte string', '5f 41 01 ff', 'c509.cbor.indefinite_length'],
    ['lone break', 'ff', 'c509.cbor.indefinite_length'],
    ['map keys out of order', 'a2 02 01 01 02', 'c509.cbor.map_key_order'],
    [
      'map keys out of bytewise order (shorter first is not the rule)',
      'a2 63 616161 01 62 6262 02',
      'c509.cbor.map_key_order',
    ],
    ['duplicate map key', 'a2 01 01 01 02', 'c509.cbor.duplicate_map_key'],
    ['a container as a map key', 'a1 81 01 02', 'c509.cbor.map_key_type'],
    ['trailing bytes', '01 01', 'c509.cbor.trailing_bytes'],
    ['truncated array', '82 01', 'c509.cbor.truncated'],
    ['truncated byte string', '43 0102', 'c509.cbor.truncated'],
    ['byte string longer than the input', '5a ffffffff', 'c509.cbor.truncated'],
    ['array count beyond the input', '9a 00010000 00', 'c509.cbor.truncated'],
    ['64-bit length beyond the input', '5b 0000000100000000', 'c509.cbor.truncated'],
    ['invalid UTF-8 in a text string', '62 c3 28', 'c509.cbor.invalid_utf8'],
    ['undefined where not allowed', 'f7', 'c509.cbor.undefined'],
    ['a float (C509 has none)', 'f9 3c00', 'c509.cbor.float'],
    ['unassigned simple value', 'f0', 'c509.cbor.malformed'],
    ['reserved additional information', '1c', 'c509.cbor.malformed'],
    ['empty input', '', 'c509.cbor.truncated'],
  ];
  for (const [what, input, reason] of rejected) {
    it(`rejects ${what} (${reason})`, () => throwsCode(() => decodeCbor(b(input)), 'ERR_MALFORMED', reason));
  }

  it('rejects nesting deeper than the limit and input over the size cap', () => {
    throwsCode(() => decodeCbor(b(`${'81'.repeat(40)}01`)), 'ERR_MALFORMED', 'c509.cbor.too_deep');
    assert.deepEqual(decodeCbor(b('818101'), { maxDepth: 2 }), [[1]]);
    throwsCode(() => decodeCbor(b('818101'), { maxDepth: 1 }), 'ERR_MALFORMED', 'c509.cbor.too_deep');
    throwsCode(() => decodeCbor(new Uint8Array(300 * 1024)), 'ERR_MALFORMED', 'c509.cbor.too_large');
    throwsCode(() => decodeCbor(b('4401020304'), { maxSize: 4 }), 'ERR_MALFORMED', 'c509.cbor.too_large');
    // 100k nested arrays: a typed error, not a stack overflow
    throwsCode(
      () => decodeCbor(new Uint8Array(100_000).fill(0x81), { maxSize: 1 << 20 }),
      'ERR_MALFORMED',
      'c509.cbor.too_deep',
    );
  });

  it('accepts deterministic items and keeps tags, big integers and undefined (when allowed)', () => {
    assert.deepEqual(decodeCbor(b('d830 46 0123456789ab')), new Tagged(48, b('0123456789ab')));
    assert.equal(decodeCbor(b('3b ffffffffffffffff')), -(1n << 64n));
    assert.equal(decodeCbor(b('1b ffffffffffffffff')), (1n << 64n) - 1n);
    assert.equal(decodeCbor(b('1b 0020000000000000')), 1n << 53n);
    assert.equal(decodeCbor(b('f7'), { allowUndefined: true }), undefined);
    assert.deepEqual(
      decodeCbor(b('a2 01 02 61 61 03')),
      new Map<CborValue, CborValue>([
        [1, 2],
        ['a', 3],
      ]),
    );
    assert.deepEqual(decodeCbor(b('83 f4 f5 f6')), [false, true, null]);
  });

  it('encodes deterministically: shortest forms, sorted map keys, definite lengths', () => {
    assert.equal(hex(encodeCbor(24)), '1818');
    assert.equal(hex(encodeCbor(-25)), '3818');
    assert.equal(
      hex(
        encodeCbor(
          new Map<CborValue, CborValue>([
            [10, 1],
            [1, 2],
            [-1, 3],
          ]),
        ),
      ),
      'a301020a012003',
    );
    assert.equal(hex(encodeCbor([undefined, null, new Tagged(121, 'x')])), '83f7f6d8796178');
    assert.equal(hex(encodeCborSequence([1, 'a'])), '016161');
    throwsCode(() => encodeCbor(1.5), 'ERR_MALFORMED', 'c509.cbor.encode');
    throwsCode(() => encodeCbor(1n << 64n), 'ERR_MALFORMED', 'c509.cbor.encode');
  });

  const value: fc.Arbitrary<CborValue> = fc.letrec<{ v: CborValue }>((tie) => ({
    v: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      fc.integer(),
      fc.bigInt({ min: -(1n << 64n), max: (1n << 64n) - 1n }),
      fc.string(),
      fc.uint8Array({ maxLength: 40 }),
      fc.constantFrom<CborValue>(true, false, null),
      fc.array(tie('v'), { maxLength: 5 }),
      fc
        .array(fc.tuple(fc.oneof(fc.integer(), fc.string({ maxLength: 6 })), tie('v')), { maxLength: 4 })
        .map((es) => new Map<CborValue, CborValue>(es)),
      fc.tuple(fc.integer({ min: 0, max: 100_000 }), tie('v')).map(([t, x]) => new Tagged(t, x)),
    ),
  })).v;

  it('property: every encoded value decodes and re-encodes to the same bytes', () => {
    fc.assert(
      fc.property(value, (v) => {
        const e = encodeCbor(v);
        assert.equal(hex(encodeCbor(decodeCbor(e))), hex(e));
      }),
      { numRuns: 300 },
    );
  });

  it('property: arbitrary bytes never escape as an untyped error', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) =>
        onlyTyped(() => decodeCbor(bytes, { allowUndefined: true })),
      ),
      { numRuns: 2000 },
    );
  });
});
