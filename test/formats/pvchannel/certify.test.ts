import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { AttestationError } from '../../../src/errors.js';
import {
  CertFormat,
  CertifyOp,
  decodeCertifyAnswer,
  decodeCertifyRequest,
  encodeCertifyAkRequest,
  encodeCertifyAnswer,
  encodeCertifyEkRequest,
  encodeNonceAnswer,
  encodeNonceRequest,
} from '../../../src/formats/pvchannel/certify.js';
import { errorWith } from '../../helpers/assert-error.js';

/** CERTIFY_EK / CERTIFY_AK payloads (docs/pvchannel.md §7.2): layout, bounds, and hostile bytes. */

const ev = {
  nonce: new Uint8Array(64).fill(1),
  report: new Uint8Array(0x4a0).fill(2),
  certTable: new Uint8Array(0),
  manifest: Uint8Array.of(3, 4, 5),
};

describe('pvchannel CERTIFY payloads', () => {
  it('round-trips NONCE and CERTIFY both ways, with the documented header', () => {
    const nq = encodeNonceRequest();
    assert.deepEqual([...nq], [1, 0, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual(decodeCertifyRequest(nq, true), { op: CertifyOp.Nonce });
    const ek = encodeCertifyEkRequest(CertFormat.X509, ev);
    assert.deepEqual([...ek.subarray(0, 8)], [2, 0, 0, 0, 4, 0, 0, 0]);
    const d = decodeCertifyRequest(ek, false);
    assert.equal(d.op, CertifyOp.Certify);
    if (d.op === CertifyOp.Certify) {
      assert.deepEqual(d.body.manifest, ev.manifest);
      assert.equal(d.body.csr.length, 0);
    }
    const ak = encodeCertifyAkRequest(CertFormat.C509, { ...ev, csr: Uint8Array.of(9) });
    const a = decodeCertifyRequest(ak, true);
    assert.ok(a.op === CertifyOp.Certify && a.format === CertFormat.C509 && a.body.csr[0] === 9);
    const na = decodeCertifyAnswer(encodeNonceAnswer(ev.nonce), CertifyOp.Nonce);
    assert.ok(na.op === CertifyOp.Nonce && na.nonce.length === 64);
    const ca = decodeCertifyAnswer(
      encodeCertifyAnswer(CertFormat.X509, Uint8Array.of(1), [Uint8Array.of(2)]),
      2,
    );
    assert.ok(ca.op === CertifyOp.Certify && ca.chain.length === 1);
  });

  it('refuses wrong counts, a CERTIFY_AK body read as CERTIFY_EK, bad bounds, reserved bytes, trailing bytes', () => {
    const ak = encodeCertifyAkRequest(CertFormat.X509, { ...ev, csr: Uint8Array.of(9) });
    assert.throws(
      () => decodeCertifyRequest(ak, false),
      errorWith('ERR_MALFORMED', 'pvchannel.certify_ek.field_count'),
    );
    const ek = encodeCertifyEkRequest(CertFormat.X509, ev);
    assert.throws(
      () => decodeCertifyRequest(ek, true),
      errorWith('ERR_MALFORMED', 'pvchannel.certify_ak.field_count'),
    );
    const shortNonce = encodeCertifyEkRequest(CertFormat.X509, { ...ev, nonce: new Uint8Array(63) });
    assert.throws(
      () => decodeCertifyRequest(shortNonce, false),
      errorWith('ERR_MALFORMED', 'pvchannel.certify_ek.nonce'),
    );
    const noManifest = encodeCertifyEkRequest(CertFormat.X509, { ...ev, manifest: new Uint8Array(0) });
    assert.throws(
      () => decodeCertifyRequest(noManifest, false),
      errorWith('ERR_MALFORMED', 'pvchannel.certify_ek.manifest'),
    );
    const reserved = Uint8Array.from(ek);
    reserved[7] = 1;
    assert.throws(
      () => decodeCertifyRequest(reserved, false),
      errorWith('ERR_MALFORMED', 'pvchannel.certify_ek.reserved_nonzero'),
    );
    assert.throws(
      () => decodeCertifyRequest(Uint8Array.from([...ek, 0]), false),
      errorWith('ERR_MALFORMED', 'pvchannel.certify_ek.trailing_bytes'),
    );
    const huge = Uint8Array.from(ek);
    new DataView(huge.buffer).setUint32(8, 0xffffffff, true); // the nonce's length
    assert.throws(
      () => decodeCertifyRequest(huge, false),
      errorWith('ERR_MALFORMED', 'pvchannel.certify_ek.nonce'),
    );
    assert.throws(
      () => decodeCertifyRequest(Uint8Array.of(1, 0, 1, 0, 0, 0, 0, 0), false),
      errorWith('ERR_MALFORMED', 'pvchannel.certify_ek.format'),
    );
    assert.throws(
      () => decodeCertifyRequest(Uint8Array.of(3, 0, 0, 0, 0, 0, 0, 0), false),
      errorWith('ERR_MALFORMED', 'pvchannel.certify_ek.op'),
    );
    assert.throws(
      () => decodeCertifyAnswer(encodeNonceAnswer(ev.nonce), CertifyOp.Certify),
      errorWith('ERR_MALFORMED', 'pvchannel.certify_answer.op'),
    );
    const noChain = encodeCertifyAnswer(CertFormat.X509, Uint8Array.of(1), []);
    assert.throws(
      () => decodeCertifyAnswer(noChain, CertifyOp.Certify),
      errorWith('ERR_MALFORMED', 'pvchannel.certify_answer.field_count'),
    );
  });

  it('any bytes: a typed error or a decoded message, never another exception', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), fc.boolean(), (b, ak) => {
        for (const f of [() => decodeCertifyRequest(b, ak), () => decodeCertifyAnswer(b, ak ? 1 : 2)]) {
          try {
            f();
          } catch (e) {
            assert.ok(e instanceof AttestationError, String(e));
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});
