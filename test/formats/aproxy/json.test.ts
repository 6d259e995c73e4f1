import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { JsonNumber, type JsonValue, parseJson, parseJsonText } from '../../../src/formats/aproxy/json.js';
import { isTyped, throwsCode } from '../../helpers/assert-error.js';

/** Back to plain JS values, to compare with JSON.parse. */
function plain(v: JsonValue): unknown {
  if (v instanceof JsonNumber) return Number(v.text);
  if (Array.isArray(v)) return v.map(plain);
  if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [k, plain(x)]));
  return v;
}

describe('strict JSON parser', () => {
  it('rejects duplicate keys (serde refuses duplicate fields; JSON.parse keeps the last)', () => {
    throwsCode(
      () => parseJsonText('{"tee":"snp","tee":"tdx"}'),
      'ERR_MALFORMED',
      'aproxy.json.duplicate_key',
    );
  });

  it('rejects lone surrogate escapes, invalid escapes and raw control characters', () => {
    throwsCode(() => parseJsonText('"\\ud800"'), 'ERR_MALFORMED', 'aproxy.json.syntax');
    throwsCode(() => parseJsonText('"\\udc00"'), 'ERR_MALFORMED', 'aproxy.json.syntax');
    throwsCode(() => parseJsonText('"\\ud800\\u0041"'), 'ERR_MALFORMED', 'aproxy.json.syntax');
    throwsCode(() => parseJsonText('"\\x41"'), 'ERR_MALFORMED', 'aproxy.json.syntax');
    throwsCode(() => parseJsonText('"a\nb"'), 'ERR_MALFORMED', 'aproxy.json.syntax');
    assert.equal(parseJsonText('"\\ud83d\\ude00"'), '\u{1f600}');
  });

  it('rejects invalid UTF-8 and a BOM', () => {
    throwsCode(
      () => parseJson(new Uint8Array([0x22, 0xc3, 0x28, 0x22])),
      'ERR_MALFORMED',
      'aproxy.json.utf8',
    );
    throwsCode(
      () => parseJson(new Uint8Array([0xef, 0xbb, 0xbf, 0x7b, 0x7d])),
      'ERR_MALFORMED',
      'aproxy.json.syntax',
    );
  });

  it('caps nesting depth instead of recursing without bound', () => {
    throwsCode(
      () => parseJsonText(`${'['.repeat(10000)}${']'.repeat(10000)}`),
      'ERR_MALFORMED',
      'aproxy.json.depth',
    );
  });

  it('rejects trailing data, bare values that are not JSON, and leading zeros', () => {
    for (const bad of [
      '{}x',
      '{}{}',
      "{'a':1}",
      '[1,]',
      '{"a":1,}',
      '01',
      '1.',
      '.5',
      '-',
      'tru',
      'nul',
      '',
    ]) {
      throwsCode(() => parseJsonText(bad), 'ERR_MALFORMED', 'aproxy.json.syntax');
    }
  });

  it('keeps __proto__ as an ordinary key', () => {
    const v = parseJsonText('{"__proto__":{"polluted":true}}');
    assert.ok(v instanceof Map, 'an object');
    assert.ok(v.has('__proto__'), 'key kept');
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  it('property: agrees with JSON.parse on every JSON text JSON.stringify produces', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), (value) => {
        const text = JSON.stringify(value);
        assert.deepEqual(plain(parseJsonText(text)), JSON.parse(text));
      }),
      { numRuns: 500 },
    );
  });

  it('property: arbitrary text is parsed or refused with a typed error', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), (s) => {
        try {
          parseJsonText(s);
        } catch (e) {
          assert.ok(isTyped(e), String(e));
        }
      }),
      { numRuns: 1000 },
    );
  });
});
