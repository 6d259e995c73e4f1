import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { AttestationError, ErrorCode } from '../../../src/errors.js';
import {
  asciiString,
  bitString,
  boolean,
  checkDerTree,
  cursor,
  type DerReason,
  integerBig,
  oid,
  oidToString,
  parseOne,
  readTlv,
  sequence,
  smallUint,
  Tag,
  time,
  unsignedBig,
  utf8String,
} from '../../../src/formats/der/reader.js';
import * as w from '../../../src/formats/der/writer.js';
import { throwsCode } from '../../helpers/assert-error.js';

const hex = (s: string) => new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const R = 'test.der';
const BY_FAULT: DerReason = (fault) => `test.der.${fault}`;

describe('DER writer -> strict reader round trip', () => {
  it('INTEGERs: minimal two’s complement both ways', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(1n << 200n), max: 1n << 200n }), (n) => {
        assert.equal(integerBig(parseOne(w.integer(n), R), R), n);
      }),
    );
    assert.deepEqual(w.integer(0), hex('020100'));
    assert.deepEqual(w.integer(128), hex('02020080'));
    assert.deepEqual(w.integer(-129), hex('0202ff7f'));
    assert.deepEqual(w.unsignedInteger(hex('000080')), hex('02020080'));
    assert.deepEqual(w.unsignedInteger(new Uint8Array(0)), hex('020100'));
    assert.equal(unsignedBig(parseOne(w.unsignedInteger(hex('ff01')), R), R), 0xff01n);
  });

  it('OBJECT IDENTIFIERs, including arcs beyond 2^53', () => {
    for (const s of [
      '1.2.840.113549.1.1.10',
      '2.999.1',
      '0.39',
      '1.3.6.1.4.1.3704.1.3.8',
      `2.5.${2n ** 70n}`,
    ]) {
      assert.equal(oid(parseOne(w.oid(s), R), R), s);
      assert.equal(oidToString(w.oidContentFromString(s)), s);
    }
    for (const bad of ['1', '3.1', '1.40', '1.2.x', ''])
      throwsCode(() => w.oid(bad), ErrorCode.InvalidArgument, 'der.oid');
    throwsCode(() => w.oid('1', 'mine.oid'), ErrorCode.InvalidArgument, 'mine.oid');
  });

  it('times: UTCTime 1950-2049, GeneralizedTime otherwise, whole seconds', () => {
    for (const iso of [
      '1950-01-01T00:00:00Z',
      '2049-12-31T23:59:59Z',
      '2050-01-01T00:00:00Z',
      '1949-06-30T12:00:00Z',
      '0050-03-04T05:06:07Z',
    ]) {
      const d = new Date(iso);
      const der = w.time(d);
      assert.equal(
        der[0],
        d.getUTCFullYear() >= 1950 && d.getUTCFullYear() < 2050 ? Tag.UtcTime : Tag.GeneralizedTime,
      );
      assert.equal(time(parseOne(der, R), R).toISOString(), d.toISOString());
    }
    assert.equal(time(parseOne(w.time(new Date('2030-01-01T00:00:00.999Z')), R), R).getTime() % 1000, 0);
    throwsCode(() => w.time(new Date(Number.NaN)), ErrorCode.InvalidArgument, 'der.time');
  });

  it('strings, BOOLEAN, BIT STRING, SET OF ordering, context tags', () => {
    assert.equal(utf8String(parseOne(w.utf8String('Zürich'), R), R), 'Zürich');
    assert.equal(asciiString(parseOne(w.printableString('AMD Inc.'), R), R), 'AMD Inc.');
    throwsCode(() => w.printableString('a_b'), ErrorCode.InvalidArgument, 'der.printable');
    assert.equal(boolean(parseOne(w.boolean(true), R), R), true);
    assert.deepEqual(bitString(parseOne(w.namedBits([0, 5]), R), R), { unused: 2, bytes: hex('84') });
    assert.deepEqual(w.namedBits([]), hex('030100'));
    const set = w.setOf(w.integer(2), w.integer(1));
    assert.deepEqual(
      sequence(parseOne(set, R), R, Tag.Set).map((t) => integerBig(t, R)),
      [1n, 2n],
    );
    const e = parseOne(w.explicit(3, w.integer(7), w.NULL), R);
    assert.equal(e.tag, 0xa3);
    const c = cursor(e, R);
    assert.equal(smallUint(c.next(Tag.Integer), R, 10), 7);
    c.next(Tag.Null);
    c.end();
    assert.deepEqual(w.implicitPrimitive(6, hex('41')), hex('860141'));
    assert.deepEqual(w.ecdsaP1363ToDer(hex('80 01')), hex('3007 02020080 020101'));
  });
});

describe('strict DER reader refuses BER and hostile input', () => {
  it('names the fault through the caller’s reason', () => {
    const cases: [string, string][] = [
      ['30', 'truncated'],
      ['3005020101', 'truncated'],
      ['1f0100', 'tag'],
      ['308003020100', 'indefinite_length'],
      ['308400000000', 'too_large'],
      ['30810100', 'length'],
      ['3082000100', 'length'],
      ['300000', 'trailing_bytes'],
    ];
    for (const [h, fault] of cases) {
      throwsCode(() => parseOne(hex(h), BY_FAULT), ErrorCode.Malformed, `test.der.${fault}`);
      throwsCode(() => parseOne(hex(h), R), ErrorCode.Malformed, R);
    }
    throwsCode(
      () => integerBig(parseOne(hex('02020001'), R), BY_FAULT),
      ErrorCode.Malformed,
      'test.der.integer',
    );
    throwsCode(
      () => smallUint(parseOne(hex('0201ff'), R), BY_FAULT, 9),
      ErrorCode.Malformed,
      'test.der.negative_integer',
    );
    throwsCode(
      () => smallUint(parseOne(hex('02010a'), R), BY_FAULT, 9),
      ErrorCode.Malformed,
      'test.der.integer',
    );
    throwsCode(() => boolean(parseOne(hex('010101'), R), BY_FAULT), ErrorCode.Malformed, 'test.der.boolean');
    throwsCode(
      () => bitString(parseOne(hex('030108'), R), BY_FAULT),
      ErrorCode.Malformed,
      'test.der.bit_string',
    );
    throwsCode(() => oid(parseOne(hex('06028001'), R), BY_FAULT), ErrorCode.Malformed, 'test.der.oid');
    throwsCode(() => oid(parseOne(hex('060181'), R), BY_FAULT), ErrorCode.Malformed, 'test.der.oid');
    throwsCode(
      () => utf8String(parseOne(hex('0c01ff'), R), BY_FAULT),
      ErrorCode.Malformed,
      'test.der.string',
    );
    throwsCode(
      () => asciiString(parseOne(hex('130107'), R), BY_FAULT),
      ErrorCode.Malformed,
      'test.der.string',
    );
    throwsCode(() => oid(parseOne(hex('0c0141'), R), BY_FAULT), ErrorCode.Malformed, 'test.der.structure');
  });

  it('times: only the RFC 5280 forms, calendar-checked', () => {
    const t = (tag: number, s: string) => parseOne(w.tlv(tag, new Uint8Array(Buffer.from(s, 'latin1'))), R);
    assert.equal(time(t(Tag.UtcTime, '490101000000Z'), R).toISOString(), '2049-01-01T00:00:00.000Z');
    assert.equal(time(t(Tag.UtcTime, '500101000000Z'), R).toISOString(), '1950-01-01T00:00:00.000Z');
    for (const [tag, s] of [
      [Tag.UtcTime, '2401010000Z'],
      [Tag.UtcTime, '240101000000+0000'],
      [Tag.UtcTime, '241301000000Z'],
      [Tag.UtcTime, '240431000000Z'],
      [Tag.UtcTime, '240101240000Z'],
      [Tag.UtcTime, '240101000060Z'],
      [Tag.GeneralizedTime, '20240101000000.5Z'],
      [Tag.GeneralizedTime, '240101000000Z'],
    ] as const) {
      throwsCode(() => time(t(tag, s), BY_FAULT), ErrorCode.Malformed, 'test.der.time');
    }
  });

  it('checkDerTree walks nested elements: constructed strings, bad BOOLEANs, depth and size bounds', () => {
    checkDerTree(parseOne(w.sequence(w.explicit(0, w.boolean(false)), w.utf8String('x')), R), R);
    throwsCode(
      () => checkDerTree(parseOne(hex('3005 2403 040100'), R), BY_FAULT),
      ErrorCode.Malformed,
      'test.der.structure',
    );
    throwsCode(
      () => checkDerTree(parseOne(hex('3005 a003 010105'), R), BY_FAULT),
      ErrorCode.Malformed,
      'test.der.boolean',
    );
    let deep = w.NULL;
    for (let i = 0; i < 40; i++) deep = w.sequence(deep);
    throwsCode(() => checkDerTree(parseOne(deep, R), BY_FAULT), ErrorCode.Malformed, 'test.der.too_large');
    const wide = w.sequence(...Array.from({ length: 5000 }, () => w.NULL));
    throwsCode(() => checkDerTree(parseOne(wide, R), BY_FAULT), ErrorCode.Malformed, 'test.der.too_large');
  });

  it('random input either parses or throws a typed error, with no view outside the input', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
        try {
          const t = parseOne(b, R);
          assert.equal(t.raw.length, b.length);
          checkDerTree(t, R);
        } catch (e) {
          if (!(e instanceof AttestationError)) throw e;
        }
      }),
      { numRuns: 3000 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.nat(70), (b, off) => {
        try {
          const t = readTlv(b, off, R);
          assert.ok(t.raw.byteOffset + t.raw.length <= b.byteOffset + b.length);
        } catch (e) {
          if (!(e instanceof AttestationError)) throw e;
        }
      }),
    );
  });
});
