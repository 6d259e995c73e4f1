import assert from 'node:assert/strict';

import { describe, it } from 'node:test';
import { ErrorCode } from '../../../src/errors.js';
import { parseOne, sequence, Tag } from '../../../src/formats/der/reader.js';
import {
  authorityKeyIdentifier,
  basicConstraints,
  crlDistributionPoints,
  crlNumber,
  encodeExtension,
  encodeExtensionList,
  keyUsage,
  subjectKeyIdentifier,
} from '../../../src/formats/x509/extension-builders.js';
import {
  KeyUsage,
  OID,
  readBasicConstraints,
  readExtensions,
  readKeyUsage,
} from '../../../src/formats/x509/extensions.js';
import { keyIdentifier } from '../../../src/formats/x509/key-identifier.js';
import { amdKeyUsage } from '../../../src/sim/snp/amd-certificate-der.js';
import { newKeyPairSync } from '../../../src/util/key-pair.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const spki = new Uint8Array(
  newKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey.export({ type: 'spki', format: 'der' }),
);
const reasons = { extensions: 'test', duplicateExtension: 'test.dup' };

describe('X.509 extension builders (src/formats/x509/extension-builders.ts)', () => {
  it('what they write, the strict reader reads back', () => {
    assert.deepEqual(readBasicConstraints(basicConstraints(true, 0).value), { ca: true, pathLen: 0 });
    assert.deepEqual(readBasicConstraints(basicConstraints(true).value), { ca: true });
    assert.deepEqual(readBasicConstraints(basicConstraints(false, 3).value), { ca: false });
    const bits = [KeyUsage.digitalSignature, KeyUsage.keyCertSign];
    assert.deepEqual([...readKeyUsage(keyUsage(bits).value)], bits);
    const list = encodeExtensionList([keyUsage(bits), subjectKeyIdentifier(spki), crlNumber(7n)]);
    const read = readExtensions(parseOne(list, 'test', Tag.Sequence), reasons, true);
    assert.deepEqual(
      read.map((e) => [e.oid, e.critical]),
      [
        [OID.keyUsage, true],
        [OID.subjectKeyIdentifier, false],
        [OID.crlNumber, false],
      ],
    );
    assert.equal(hex(read[1]!.value), `0414${hex(keyIdentifier(spki))}`);
  });

  it('critical FALSE is not encoded (DER DEFAULT); critical TRUE is', () => {
    const e = { oid: '1.2.3.4', value: Uint8Array.of(5, 0) };
    assert.equal(sequence(parseOne(encodeExtension({ ...e, critical: false }), 'test'), 'test').length, 2);
    assert.equal(sequence(parseOne(encodeExtension({ ...e, critical: true }), 'test'), 'test').length, 3);
  });

  it('an extnID that is not an OID is refused with the caller reason', () => {
    assert.throws(
      () => encodeExtension({ oid: 'not.an.oid', critical: false, value: new Uint8Array() }, 'test.oid'),
      (e: unknown) =>
        (e as { code: string; reason: string }).code === ErrorCode.InvalidArgument &&
        (e as { reason: string }).reason === 'test.oid',
    );
  });

  it("keyUsage is DER's minimal form; AMD's one-unused-bit form stays the simulator's", () => {
    assert.equal(hex(keyUsage([KeyUsage.keyCertSign]).value), '03020204');
    assert.equal(hex(amdKeyUsage({ keyCertSign: true }).value), '03020104');
    assert.equal(
      hex(keyUsage([KeyUsage.keyCertSign, KeyUsage.cRLSign]).value),
      hex(amdKeyUsage({ keyCertSign: true, cRLSign: true }).value),
    );
  });

  it('authorityKeyIdentifier and cRLDistributionPoints: the bytes the platform CA writes', () => {
    assert.equal(
      hex(encodeExtension(authorityKeyIdentifier(new Uint8Array(20).fill(7)))),
      `301f0603551d23041830168014${'07'.repeat(20)}`,
    );
    const uri = (u: string) => `8611${Buffer.from(u).toString('hex')}`; // [6] uniformResourceIdentifier
    assert.equal(
      hex(encodeExtension(crlDistributionPoints(['http://a.test/crl', 'http://b.test/crl']))),
      `30350603551d1f042e302c302aa028a026${uri('http://a.test/crl')}${uri('http://b.test/crl')}`,
    );
  });
});
