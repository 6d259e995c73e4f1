import assert from 'node:assert/strict';
import { webcrypto } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseCertificationRequest, readPublicKeyInput } from '../../src/ca/index.js';
import { x509 } from '../../src/ca/x509-lib.js';
import { AttestationError } from '../../src/errors.js';
import { x509CsrToC509 } from '../../src/formats/c509/index.js';
import { encodePublic, encodeTpm2bPublic } from '../../src/formats/tpm/index.js';
import { softEk } from './fixtures.js';

/**
 * Hostile input to the CA's own readers: public keys in any of their forms and certification requests.
 * Whatever the bytes, the result is a value or a typed AttestationError — never a TypeError or RangeError.
 */

function typedOrOk(f: () => unknown): void {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof AttestationError, `untyped error: ${String(e)}`);
  }
}

async function typedOrOkAsync(f: () => Promise<unknown>): Promise<void> {
  try {
    await f();
  } catch (e) {
    assert.ok(e instanceof AttestationError, `untyped error: ${String(e)}`);
  }
}

describe('CA input robustness (fast-check)', () => {
  it('readPublicKeyInput: random bytes and byte flips of TPM2B/TPMT/SPKI inputs', () => {
    const ek = softEk('ecc');
    const forms = [encodeTpm2bPublic(ek.pub), encodePublic(ek.pub)];
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => typedOrOk(() => readPublicKeyInput(bytes))),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1 }),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (which, at, x) => {
          const b = Uint8Array.from(forms[which]!);
          b[at % b.length]! ^= x;
          typedOrOk(() => readPublicKeyInput(b));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('parseCertificationRequest: byte flips and truncations of PKCS#10 and C509 requests', async () => {
    const keys = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
      'sign',
      'verify',
    ])) as { privateKey: webcrypto.CryptoKey; publicKey: webcrypto.CryptoKey };
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({
      name: 'CN=fuzz',
      keys,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'fuzz.example' }])],
    });
    const der = new Uint8Array(csr.rawData);
    const c509 = x509CsrToC509(der);
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 1 }),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        fc.boolean(),
        async (which, at, x, truncate) => {
          const base = which === 0 ? der : c509;
          const b = truncate ? base.slice(0, at % base.length) : Uint8Array.from(base);
          if (!truncate) b[at % b.length]! ^= x;
          await typedOrOkAsync(() => parseCertificationRequest(b));
        },
      ),
      { numRuns: 300 },
    );
  });
});
