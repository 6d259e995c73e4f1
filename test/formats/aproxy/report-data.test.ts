import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  computeReportData,
  encodeStateCounterParam,
  PARAMS_0_2_0,
} from '../../../src/formats/aproxy/report-data.js';
import { throwsCode } from '../../helpers/assert-error.js';

const sha512 = (...parts: Uint8Array[]) => {
  const h = createHash('sha512');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};
const x = new Uint8Array(66).map((_, i) => i);
const y = new Uint8Array(66).map((_, i) => 0xff - i);
const nonce = new Uint8Array(32).fill(0x4e);
const key = { x, y };

describe('REPORT_DATA', () => {
  it('KBS order [EcPublicKeyBytes, Challenge] = SHA-512(x || y || nonce)', () => {
    const rd = computeReportData(['EcPublicKeyBytes', 'Challenge'], { challenge: nonce, key });
    assert.equal(rd.length, 64);
    assert.deepEqual(rd, sha512(x, y, nonce));
  });

  it('order [Challenge, EcPublicKeyBytes] = SHA-512(nonce || x || y), and the orders differ', () => {
    const a = computeReportData(['Challenge', 'EcPublicKeyBytes'], { challenge: nonce, key });
    const b = computeReportData(['EcPublicKeyBytes', 'Challenge'], { challenge: nonce, key });
    assert.deepEqual(a, sha512(nonce, x, y));
    assert.notDeepEqual(a, b);
  });

  it('hashes a repeated param twice and an empty list as SHA-512 of nothing (as the SVSM does)', () => {
    assert.deepEqual(
      computeReportData(['Challenge', 'Challenge'], { challenge: nonce, key }),
      sha512(nonce, nonce),
    );
    assert.deepEqual(computeReportData([], { challenge: nonce, key }), sha512());
  });

  it('0.2.0 = SHA-512(domain label || x || y || challenge || u64le(counter) || state digest)', () => {
    const label = Buffer.from('VOUCHSAFE-APROXY-REPORT-DATA/0.2.0\0', 'ascii');
    const digest = new Uint8Array(32).fill(0xd1);
    const ctr = Buffer.from('0700000000000000', 'hex');
    assert.deepEqual(
      computeReportData(PARAMS_0_2_0, { challenge: nonce, key, stateCounter: 7n, stateDigest: digest }),
      sha512(label, x, y, nonce, ctr, digest),
    );
    // No state: eight 0xFF and 32 zero bytes.
    assert.deepEqual(
      computeReportData(PARAMS_0_2_0, { challenge: nonce, key, stateCounter: null, stateDigest: null }),
      sha512(label, x, y, nonce, new Uint8Array(8).fill(0xff), new Uint8Array(32)),
    );
    // The label's first byte (0x56) is not a possible first byte of a P-521 coordinate (0x00 or 0x01).
    assert.ok(label[0]! > 1);
    throwsCode(
      () => computeReportData(PARAMS_0_2_0, { challenge: nonce, key, stateCounter: 1n }),
      'ERR_INVALID_ARGUMENT',
      'aproxy.params.state_digest',
    );
  });

  it('StateCounter is u64 little-endian, or 8 x 0xFF for no state', () => {
    assert.equal(Buffer.from(encodeStateCounterParam(null)).toString('hex'), 'ffffffffffffffff');
    assert.equal(Buffer.from(encodeStateCounterParam(0x0102n)).toString('hex'), '0201000000000000');
    const rd = computeReportData(['EcPublicKeyBytes', 'Challenge', 'StateCounter'], {
      challenge: nonce,
      key,
      stateCounter: 5n,
    });
    assert.deepEqual(rd, sha512(x, y, nonce, Uint8Array.from([5, 0, 0, 0, 0, 0, 0, 0])));
    const none = computeReportData(['StateCounter'], { challenge: nonce, key, stateCounter: null });
    assert.deepEqual(none, sha512(new Uint8Array(8).fill(0xff)));
  });

  it('refuses a StateCounter param without a stated counter, bad coordinates, and the reserved counter', () => {
    throwsCode(
      () => computeReportData(['StateCounter'], { challenge: nonce, key }),
      'ERR_INVALID_ARGUMENT',
      'aproxy.params.state_counter',
    );
    throwsCode(
      () => computeReportData(['EcPublicKeyBytes'], { challenge: nonce, key: { x: x.subarray(1), y } }),
      'ERR_INVALID_ARGUMENT',
      'aproxy.key.length',
    );
    throwsCode(
      () => encodeStateCounterParam(0xffff_ffff_ffff_ffffn),
      'ERR_INVALID_ARGUMENT',
      'aproxy.counter',
    );
  });
});
