import assert from 'node:assert/strict';

import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { AttestationError } from '../../../src/errors.js';
import {
  c509CsrToX509,
  c509ToX509,
  parseC509Certificate,
  parseC509Csr,
  parseC509CsrTemplate,
  verifyC509Certificate,
  verifyC509Csr,
  x509CsrToC509,
  x509ToC509,
} from '../../../src/formats/c509/index.js';
import { newKeyPairSync } from '../../../src/util/key-pair.js';
import { onlyTyped } from '../../helpers/assert-error.js';
import { needsVectors, readVector, vectorCases, vectorPath } from '../../helpers/vectors.js';

const key = newKeyPairSync('ed25519').publicKey;

/** Every C509 entry point on untrusted bytes. */
const DECODERS: [string, (b: Uint8Array) => unknown][] = [
  ['parseC509Certificate', parseC509Certificate],
  ['c509ToX509', c509ToX509],
  ['verifyC509Certificate', (b) => verifyC509Certificate(b, key, { allowUnsigned: true })],
  ['parseC509Csr', parseC509Csr],
  ['c509CsrToX509', c509CsrToX509],
  ['verifyC509Csr', (b) => verifyC509Csr(b, { allowUnsigned: true })],
  ['parseC509CsrTemplate', parseC509CsrTemplate],
  ['x509ToC509', (b) => x509ToC509(b)],
  ['x509CsrToC509', (b) => x509CsrToC509(b)],
];

function all(b: Uint8Array): void {
  for (const [, f] of DECODERS) onlyTyped(() => f(b));
}

/** The real items: C509 certificates, requests and templates, and the DER they re-encode. */
function realItems(): { name: string; bytes: Uint8Array; der: boolean }[] {
  const out: { name: string; bytes: Uint8Array; der: boolean }[] = [];
  for (const n of vectorCases('c509')) {
    for (const f of [
      'c509-type3.cbor',
      'c509-type2.cbor',
      'csr.c509-type3.cbor',
      'csr.c509-type2.cbor',
      'c509-csrt.cbor',
      'x509.der',
      'csr.der',
    ]) {
      if (existsSync(vectorPath('c509', n, f)))
        out.push({ name: `${n}/${f}`, bytes: readVector('c509', n, f), der: f.endsWith('.der') });
    }
  }
  return out;
}

describe('C509 decoders never throw an untyped error', () => {
  it('property: arbitrary bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), all), { numRuns: 1500 });
  });

  it('property: arbitrary arrays shaped like C509 items (CBOR array headers with random content)', () => {
    const header = fc.constantFrom(0x87, 0x8b);
    fc.assert(
      fc.property(header, fc.uint8Array({ maxLength: 120 }), (h, rest) => all(new Uint8Array([h, ...rest]))),
      { numRuns: 1500 },
    );
  });
});

describe('C509 decoders on damaged real vectors', needsVectors, () => {
  it('every truncation of every real item is refused with a typed error', () => {
    const items = realItems();
    assert.ok(items.length > 60);
    for (const { name, bytes, der } of items) {
      const decode = der
        ? name.includes('csr')
          ? (b: Uint8Array) => x509CsrToC509(b)
          : (b: Uint8Array) => x509ToC509(b)
        : name.includes('csrt')
          ? parseC509CsrTemplate
          : name.includes('csr')
            ? parseC509Csr
            : parseC509Certificate;
      for (let n = 0; n < bytes.length; n++) {
        const cut = bytes.subarray(0, n);
        assert.throws(
          () => decode(cut),
          (e: unknown) => e instanceof AttestationError && e.code === 'ERR_MALFORMED',
          `${name} cut to ${n} bytes`,
        );
      }
    }
  });

  it('property: a random byte change in a real item never escapes untyped', () => {
    const items = realItems();
    fc.assert(
      fc.property(
        fc.nat({ max: items.length - 1 }),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (i, pos, x) => {
          const { bytes } = items[i]!;
          const b = Uint8Array.from(bytes);
          const at = pos % b.length;
          b[at] = b[at]! ^ x;
          all(b);
        },
      ),
      { numRuns: 600 },
    );
  });
});
