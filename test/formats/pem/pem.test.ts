import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ErrorCode } from '../../../src/errors.js';
import { loadDer } from '../../../src/evidence/snp/x509.js';
import { isCertificationRequest } from '../../../src/formats/c509/index.js';
import { integer, sequence } from '../../../src/formats/der/writer.js';
import {
  decodePem,
  decodePemBlock,
  encodePem,
  looksLikePem,
  PEM_LIMITS,
  pemText,
} from '../../../src/formats/pem.js';
import { needsVectors, readVector, readVectorText, vectorPath } from '../../helpers/vectors.js';

/** Asserts a MalformedEvidence with `reason` (code and reason, never the message). */
function malformed(reason: string) {
  return (e: unknown) => {
    const err = e as { code?: string; reason?: string };
    assert.equal(err.code, ErrorCode.Malformed);
    assert.equal(err.reason, reason);
    return true;
  };
}

const der = Uint8Array.from({ length: 100 }, (_, i) => (i * 37) & 0xff);
const pem = encodePem('CERTIFICATE', der);

describe('PEM (src/formats/pem.ts): the one reader', () => {
  it('reads what it writes: blocks in order, labels, CRLF, trailing spaces, blank lines between blocks', () => {
    assert.deepEqual(decodePem(pem, 't'), [{ label: 'CERTIFICATE', der }]);
    const crl = encodePem('X509 CRL', der.subarray(1));
    const two = `\n${pem}\n${crl}\n\n`.replace(/\n/g, ' \r\n');
    assert.deepEqual(
      decodePem(two, 't').map((b) => [b.label, b.der.length]),
      [
        ['CERTIFICATE', 100],
        ['X509 CRL', 99],
      ],
    );
    assert.deepEqual(decodePem('\n \n', 't'), []);
    assert.deepEqual(decodePemBlock(pem, 't', ['CERTIFICATE']).der, der);
  });

  it('every PEM file among the real vectors reads', needsVectors, () => {
    for (const f of readdirSync(vectorPath('amd')).filter((n) => n.endsWith('.pem'))) {
      assert.ok(decodePem(readVectorText('amd', f), 't').length >= 1, f);
    }
  });

  const refusals: [string, string][] = [
    ['explanatory text before BEGIN', `Certificate:\n${pem}`],
    ['text after END', `${pem}trailer\n`],
    ['an RFC 1421 header', pem.replace('\n', '\nProc-Type: 4,ENCRYPTED\n')],
    ['END with another label', pem.replace('END CERTIFICATE', 'END X509 CRL')],
    ['no END line', pem.replace(/-----END[^\n]*\n$/, '')],
    ['a lower-case label', pem.replace(/CERTIFICATE/g, 'certificate')],
    ['a non-base64 character', pem.replace(/\n[A-Za-z0-9+/]{4}/, '\n!!!!')],
    ['padding in the middle', pem.replace(/\n([A-Za-z0-9+/]{4})/, '\n$1==')],
    ['non-canonical padding bits', encodePem('CERTIFICATE', Uint8Array.of(0)).replace('AA==', 'AB==')],
    ['an empty body', '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n'],
    [
      'a base64 line over the limit',
      `-----BEGIN CERTIFICATE-----\n${Buffer.from(der).toString('base64')}\n-----END CERTIFICATE-----\n`,
    ],
    ['an HTML error page', '<html><body>502 Bad Gateway</body></html>\n'],
  ];
  for (const [what, text] of refusals) {
    it(`refuses ${what}`, () => assert.throws(() => decodePem(text, 'test'), malformed('test.pem')));
  }

  it('is bounded: text length and block count', () => {
    const limits = { ...PEM_LIMITS, maxBlocks: 2 };
    assert.equal(decodePem(pem + pem, 't', limits).length, 2);
    assert.throws(() => decodePem(pem + pem + pem, 'test', limits), malformed('test.pem'));
    const long = `${pem}${'\n'.repeat(PEM_LIMITS.maxLength)}`;
    assert.throws(() => decodePem(long, 'test'), malformed('test.pem'));
  });

  it('decodePemBlock wants exactly one block with an expected label', () => {
    assert.throws(() => decodePemBlock('', 'test'), malformed('test.pem'));
    assert.throws(() => decodePemBlock(pem + pem, 'test'), malformed('test.pem'));
    assert.throws(() => decodePemBlock(pem, 'test', ['X509 CRL']), malformed('test.pem'));
    assert.equal(decodePemBlock(pem, 't').label, 'CERTIFICATE');
  });

  it('looksLikePem and pemText keep every byte', () => {
    assert.equal(looksLikePem(new Uint8Array(Buffer.from(`  \n${pem}`))), true);
    assert.equal(looksLikePem(der), false);
    assert.equal(pemText(Uint8Array.of(0xff, 0x41)), '\u00ffA');
  });

  it('the SNP certificate loader reads PEM through it: explanatory text and other blocks are refused', () => {
    assert.deepEqual(loadDer(pem), der);
    assert.deepEqual(loadDer(new Uint8Array(Buffer.from(pem))), der);
    assert.throws(() => loadDer(`subject=CN = SEV-VCEK\n${pem}`), malformed('snp.cert.pem'));
    assert.throws(() => loadDer(pem + encodePem('PUBLIC KEY', der)), malformed('snp.cert.pem'));
    assert.throws(() => loadDer(pem, 'X509 CRL'), malformed('snp.cert.pem'));
  });
});

describe('c509 input: certificate or request is read with the strict DER reader', needsVectors, () => {
  it('tells a PKCS#10 request from a certificate', () => {
    assert.equal(isCertificationRequest(readVector('c509', '8.1-csr-ecdsa-with-sha256', 'csr.der')), true);
    assert.equal(
      isCertificationRequest(readVector('c509', '3.3-weierstrass-ec-secp256r1', 'x509.der')),
      false,
    );
  });

  it('malformed DER is refused with its fault, never guessed at', () => {
    const csr = readVector('c509', '8.1-csr-ecdsa-with-sha256', 'csr.der');
    assert.throws(() => isCertificationRequest(csr.subarray(0, 40)), malformed('c509.der.truncated'));
    // A request's outer SEQUENCE with a non-minimal (long-form) length: the old byte peek called it a request.
    const nonMinimal = Uint8Array.of(0x30, 0x81, 0x05, ...sequence(integer(0)));
    assert.throws(() => isCertificationRequest(nonMinimal), malformed('c509.der.length'));
  });
});
