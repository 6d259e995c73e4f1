import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AttestationError, ErrorCode } from '../../../src/errors.js';
import { cursor, octetString, oid, parseOne, Tag } from '../../../src/formats/der/reader.js';
import { ia5String, integer, utf8String } from '../../../src/formats/der/writer.js';
import {
  AmdOid,
  hwIdLength,
  hwIdOf,
  readAmdExtensions,
} from '../../../src/formats/snp/amd-cert-extensions.js';
import type { SnpProduct } from '../../../src/formats/snp/product.js';
import { encodeExtension } from '../../../src/formats/x509/extension-builders.js';
import type { Extension } from '../../../src/formats/x509/extensions.js';
import { amdLeafExtensions } from '../../../src/sim/snp/amd-extensions.js';

/** extnID -> extnValue, read back from the encoded Extension elements. */
function valuesOf(exts: readonly Extension[]): Map<string, Uint8Array> {
  const m = new Map<string, Uint8Array>();
  for (const e of exts) {
    const c = cursor(parseOne(encodeExtension(e), 'test', Tag.Sequence), 'test');
    const id = oid(c.next(Tag.Oid), 'test');
    m.set(id, octetString(c.next(Tag.OctetString), 'test'));
    c.end();
  }
  return m;
}

const TCB = { fmc: 3, bootloader: 10, tee: 0, snp: 23, microcode: 213 };
const chipId = Uint8Array.from({ length: 64 }, (_, i) => i + 1);

describe('AMD VCEK/VLEK extensions: what the simulator writes, the reader reads back', () => {
  for (const product of ['Milan', 'Genoa', 'Turin'] as SnpProduct[]) {
    it(`${product} VCEK and VLEK`, () => {
      const vcek = valuesOf(amdLeafExtensions(product, TCB, { kind: 'VCEK', chipId }));
      const v = readAmdExtensions((id) => vcek.get(id), 'test.ext');
      assert.equal(v.structVersion, product === 'Turin' ? 1 : 0);
      assert.equal(v.productName, product === 'Milan' ? 'Milan-B0' : product);
      assert.equal(v.spl.bl, TCB.bootloader);
      assert.equal(v.spl.tee, TCB.tee);
      assert.equal(v.spl.snp, TCB.snp);
      assert.equal(v.spl.ucode, TCB.microcode);
      assert.equal(v.spl.fmc, product === 'Turin' ? TCB.fmc : undefined);
      assert.equal(v.spl.spl4, product === 'Turin' ? undefined : 0);
      assert.deepEqual(v.hwId, hwIdOf(product, chipId));
      assert.equal(v.hwId?.length, hwIdLength(product));
      assert.equal(v.cspId, undefined);
      const vlek = valuesOf(amdLeafExtensions(product, TCB, { kind: 'VLEK', cspId: 'CN=csp.example' }));
      const l = readAmdExtensions((id) => vlek.get(id), 'test.ext');
      assert.equal(l.cspId, 'CN=csp.example');
      assert.equal(l.hwId, undefined);
      assert.equal(l.productName, product);
    });
  }

  it('refuses malformed values with the caller’s reason', () => {
    const read = (id: string, value: Uint8Array) => () =>
      readAmdExtensions((x) => (x === id ? value : undefined), 'test.ext');
    const refuses = (fn: () => unknown) =>
      assert.throws(
        fn,
        (e) => e instanceof AttestationError && e.code === ErrorCode.Malformed && e.reason === 'test.ext',
      );
    refuses(read(AmdOid.blSPL, integer(256)));
    refuses(read(AmdOid.teeSPL, integer(-1)));
    refuses(read(AmdOid.snpSPL, Uint8Array.of(0x04, 0x01, 0x04)));
    refuses(read(AmdOid.ucodeSPL, Uint8Array.of(0x02, 0x02, 0x00, 0x04)));
    refuses(read(AmdOid.structVersion, integer(0x10000)));
    refuses(read(AmdOid.productName, utf8String('Milán')));
    refuses(read(AmdOid.productName, Uint8Array.of(...ia5String('Milan'), 0)));
    refuses(read(AmdOid.cspID, Uint8Array.of(0x16, 0x01, 0x0a)));
    assert.deepEqual(
      readAmdExtensions(() => undefined, 'test.ext'),
      { spl: {} },
    );
  });
});
