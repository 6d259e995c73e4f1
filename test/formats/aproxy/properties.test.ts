import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  encodeAttestationRequest,
  encodeAttestationResponse,
  encodeLeaseRequest,
  encodeLeaseResponse,
  encodeNegotiationResponse,
  type NegotiationParam,
  type ProtocolVersion,
  parseAttestationRequest,
  parseAttestationResponse,
  parseCommitRequest,
  parseCommitResponse,
  parseLeaseRequest,
  parseLeaseResponse,
  parseNegotiationRequest,
  parseNegotiationResponse,
  parseOpeningMessage,
} from '../../../src/formats/aproxy/index.js';
import { onlyTyped } from '../../helpers/assert-error.js';

const bytes = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max });
const coord = bytes(66, 66);
const version = fc.constantFrom<ProtocolVersion>('0.1.0', '0.2.0');

const request = fc.record({
  report: bytes(1, 200),
  certs: fc.option(bytes(0, 50), { nil: undefined }),
  challenge: bytes(1, 64),
  x: coord,
  y: coord,
  counter: fc.option(fc.bigInt({ min: 0n, max: 0xffff_ffff_ffff_fffen }), { nil: null }),
});

const parsers: ((b: Uint8Array) => unknown)[] = [
  parseNegotiationRequest,
  (b) => parseNegotiationResponse(b, '0.1.0'),
  (b) => parseNegotiationResponse(b, '0.2.0'),
  (b) => parseAttestationRequest(b, '0.1.0'),
  (b) => parseAttestationRequest(b, '0.2.0'),
  (b) => parseAttestationResponse(b, '0.1.0'),
  (b) => parseAttestationResponse(b, '0.2.0'),
  parseCommitRequest,
  parseCommitResponse,
  parseLeaseRequest,
  (b) => parseLeaseResponse(b, 'heartbeat'),
  (b) => parseLeaseResponse(b, 'end'),
  parseOpeningMessage,
];

describe('aproxy message parser properties', () => {
  it('AttestationRequest round-trips for both versions', () => {
    fc.assert(
      fc.property(request, version, (r, v) => {
        const req = {
          tee: 'snp' as const,
          evidence: r.certs === undefined ? { report: r.report } : { report: r.report, certsBuf: r.certs },
          challenge: r.challenge,
          key: { x: r.x, y: r.y },
          ...(v === '0.2.0'
            ? { stateCounter: r.counter, stateDigest: r.counter === null ? null : new Uint8Array(32).fill(7) }
            : {}),
        };
        assert.deepEqual(parseAttestationRequest(encodeAttestationRequest(req, v), v), req);
      }),
      { numRuns: 200 },
    );
  });

  it('AttestationResponse and NegotiationResponse round-trip', () => {
    const params = fc.array(fc.constantFrom<NegotiationParam>('Challenge', 'EcPublicKeyBytes'), {
      maxLength: 4,
    });
    fc.assert(
      fc.property(
        bytes(1, 100),
        coord,
        coord,
        bytes(1, 80),
        fc.option(fc.string({ maxLength: 20 }), { nil: null }),
        params,
        (secret, x, y, aad, tok, ps) => {
          const resp = {
            success: true,
            secret,
            decryption: {
              epk: { x, y },
              wrappedCek: new Uint8Array(40),
              aad,
              iv: new Uint8Array(12),
              tag: new Uint8Array(16),
            },
            token: tok === null ? null : { kind: 'Jwt' as const, value: tok },
          };
          assert.deepEqual(parseAttestationResponse(encodeAttestationResponse(resp, '0.1.0'), '0.1.0'), resp);
          const neg = { challenge: secret, params: ps };
          assert.deepEqual(parseNegotiationResponse(encodeNegotiationResponse(neg, '0.1.0'), '0.1.0'), neg);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('Heartbeat / End requests and LeaseResponses round-trip', () => {
    const op = fc.constantFrom<'heartbeat' | 'end'>('heartbeat', 'end');
    const bootId = fc.stringMatching(/^[A-Za-z0-9._:-]{1,128}$/);
    fc.assert(
      fc.property(
        op,
        bootId,
        bytes(16, 64),
        bytes(16, 64),
        fc.option(bytes(96, 96), { nil: null }),
        fc.nat(),
        (o, id, tok, nonce, sig, at) => {
          const req = { op: o, bootId: id, commitToken: tok, nonce };
          assert.deepEqual(parseLeaseRequest(encodeLeaseRequest(req)), { version: [0, 2, 0], ...req });
          const resp = { op: o, leaseExpiresAt: o === 'heartbeat' ? at : null, signature: sig };
          assert.deepEqual(parseLeaseResponse(encodeLeaseResponse(resp), o), { success: true, ...resp });
        },
      ),
      { numRuns: 300 },
    );
  });

  it('any single-byte corruption of a valid message parses or fails with a typed error', () => {
    fc.assert(
      fc.property(request, version, fc.nat(), fc.integer({ min: 0, max: 255 }), (r, v, pos, val) => {
        const enc = encodeAttestationRequest(
          {
            tee: 'snp',
            evidence: { report: r.report },
            challenge: r.challenge,
            key: { x: r.x, y: r.y },
            stateCounter: r.counter,
            stateDigest: r.counter === null ? null : new Uint8Array(32).fill(7),
          },
          v,
        );
        const c = Uint8Array.from(enc);
        c[pos % c.length] = val;
        for (const p of parsers) onlyTyped(() => p(c));
      }),
      { numRuns: 500 },
    );
  });

  it('arbitrary JSON values and arbitrary bytes never escape as untyped errors', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), (value) => {
        const b = new Uint8Array(Buffer.from(JSON.stringify(value) ?? 'null'));
        for (const p of parsers) onlyTyped(() => p(b));
      }),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (b) => {
        for (const p of parsers) onlyTyped(() => p(b));
      }),
      { numRuns: 500 },
    );
  });

  it('objects with the right keys but arbitrary values fail only with typed errors', () => {
    const anyVal = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.base64String({ maxLength: 20 }));
    fc.assert(
      fc.property(anyVal, anyVal, anyVal, anyVal, anyVal, (a, b, c, d, e) => {
        const msgs = [
          { version: a, tee: b },
          { challenge: a, params: b, version: c },
          { tee: a, evidence: { Snp: { report: b, certs_buf: c } }, challenge: d, key: { x: e, y: e } },
          { success: a, secret: b, decryption: c, token: d, identity: e, signature: a },
          { bootId: a, commitToken: b, counter: c },
          { version: a, op: b, bootId: c, commitToken: d, nonce: e },
          { version: [0, 2, 0], op: 'heartbeat', bootId: a, commitToken: b, nonce: c },
          { success: true, op: a, leaseExpiresAt: b, signature: c },
          { success: true, op: 'heartbeat', leaseExpiresAt: a, signature: b },
          { success: false, error: { code: a, reason: b, message: c } },
        ];
        for (const m of msgs) {
          const bytesOf = new Uint8Array(Buffer.from(JSON.stringify(m)));
          for (const p of parsers) onlyTyped(() => p(bytesOf));
        }
      }),
      { numRuns: 300 },
    );
  });
});
