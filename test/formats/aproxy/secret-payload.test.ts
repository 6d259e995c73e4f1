import assert from 'node:assert/strict';

import { describe, it } from 'node:test';
import fc from 'fast-check';
import { encodeSecretPayload, parseSecretPayload } from '../../../src/formats/aproxy/secret-payload.js';
import {
  encodeCommitSignedContent,
  encodeLeaseSignedContent,
  encodeResponseSignedContent,
} from '../../../src/formats/aproxy/signed-content.js';
import {
  signAttestationResponse,
  signCommit,
  verifyAttestationResponse,
  verifyCommit,
} from '../../../src/native/broker-signature.js';
import { newKeyPairSync } from '../../../src/util/key-pair.js';
import { isTyped, throwsCode } from '../../helpers/assert-error.js';

const payload = {
  secret: new Uint8Array(32).fill(0x11),
  bootId: 'b-1',
  commitToken: new Uint8Array(32).fill(0x22),
};

describe('0.2.0 secret payload', () => {
  it('has the documented layout and round-trips', () => {
    const b = encodeSecretPayload(payload);
    const hex = Buffer.from(b).toString('hex');
    assert.equal(
      hex,
      `56535350` +
        `0100` +
        `0000` +
        `20000000${'11'.repeat(32)}` +
        `0300${Buffer.from('b-1').toString('hex')}` +
        `2000${'22'.repeat(32)}`,
    );
    assert.deepEqual(parseSecretPayload(b), payload);
  });

  it('rejects bad magic, version, flags, lengths and trailing bytes with typed errors', () => {
    const b = encodeSecretPayload(payload);
    const mut = (off: number, v: number) => {
      const c = Uint8Array.from(b);
      c[off] = v;
      return c;
    };
    throwsCode(() => parseSecretPayload(mut(0, 0x58)), 'ERR_MALFORMED', 'aproxy.secret_payload.magic');
    throwsCode(() => parseSecretPayload(mut(4, 3)), 'ERR_MALFORMED', 'aproxy.secret_payload.version');
    throwsCode(() => parseSecretPayload(mut(4, 0)), 'ERR_MALFORMED', 'aproxy.secret_payload.version');
    // Format 1 bytes relabelled as format 2 lack the key version fields.
    throwsCode(() => parseSecretPayload(mut(4, 2)), 'ERR_MALFORMED', 'aproxy.secret_payload.truncated');
    throwsCode(
      () => parseSecretPayload(mut(6, 1)),
      'ERR_MALFORMED',
      'aproxy.secret_payload.reserved_nonzero',
    );
    throwsCode(() => parseSecretPayload(mut(8, 0xff)), 'ERR_MALFORMED', 'aproxy.secret_payload.truncated');
    throwsCode(() => parseSecretPayload(mut(8, 0)), 'ERR_MALFORMED', 'aproxy.secret_payload.length');
    throwsCode(
      () => parseSecretPayload(Uint8Array.from([...b, 0])),
      'ERR_MALFORMED',
      'aproxy.secret_payload.trailing_bytes',
    );
    throwsCode(
      () => parseSecretPayload(b.subarray(0, b.length - 1)),
      'ERR_MALFORMED',
      'aproxy.secret_payload.truncated',
    );
  });

  it('format 2 carries the key version, and after a rotation the older state key, as documented', () => {
    const v2 = encodeSecretPayload({ ...payload, keyVersion: 3 });
    const base = Buffer.from(encodeSecretPayload(payload)).toString('hex');
    const hex = Buffer.from(v2).toString('hex');
    assert.equal(hex, `${base.slice(0, 8)}0200${base.slice(12)}030000000000000000000000`);
    assert.deepEqual(parseSecretPayload(v2), { ...payload, keyVersion: 3 });

    const rotated = {
      ...payload,
      keyVersion: 4,
      stateKey: { key: new Uint8Array(32).fill(0x44), keyVersion: 3 },
    };
    const r = encodeSecretPayload(rotated);
    assert.equal(
      Buffer.from(r).toString('hex'),
      `${base.slice(0, 8)}0200${base.slice(12)}040000000300000020000000${'44'.repeat(32)}`,
    );
    assert.deepEqual(parseSecretPayload(r), rotated);
    // Format 1 is still what a payload without a key version encodes to, and still parses.
    assert.equal(Buffer.from(encodeSecretPayload(payload)).readUInt16LE(4), 1);
  });

  it('format 2: rejects inconsistent key versions and state key lengths', () => {
    const r = Buffer.from(
      encodeSecretPayload({
        ...payload,
        keyVersion: 4,
        stateKey: { key: new Uint8Array(32).fill(1), keyVersion: 3 },
      }),
    );
    const tail = r.length - 32 - 12; // u32 keyVersion, u32 stateKeyVersion, u32 length, key
    const mut = (off: number, v: number) => {
      const c = Uint8Array.from(r);
      new DataView(c.buffer).setUint32(off, v, true);
      return c;
    };
    throwsCode(() => parseSecretPayload(mut(tail, 0)), 'ERR_MALFORMED', 'aproxy.secret_payload.key_version');
    throwsCode(
      () => parseSecretPayload(mut(tail + 4, 4)),
      'ERR_MALFORMED',
      'aproxy.secret_payload.key_version',
    );
    throwsCode(() => parseSecretPayload(mut(tail + 4, 0)), 'ERR_MALFORMED', 'aproxy.secret_payload.length');
    throwsCode(
      () => parseSecretPayload(mut(tail + 8, 31)),
      'ERR_MALFORMED',
      'aproxy.secret_payload.trailing_bytes',
    );
    throwsCode(
      () => parseSecretPayload(mut(tail + 8, 33)),
      'ERR_MALFORMED',
      'aproxy.secret_payload.truncated',
    );
    throwsCode(
      () => encodeSecretPayload({ ...payload, stateKey: { key: new Uint8Array(32), keyVersion: 1 } }),
      'ERR_INVALID_ARGUMENT',
      'aproxy.encode.key_version',
    );
    throwsCode(
      () =>
        encodeSecretPayload({
          ...payload,
          keyVersion: 2,
          stateKey: { key: new Uint8Array(32), keyVersion: 2 },
        }),
      'ERR_INVALID_ARGUMENT',
      'aproxy.encode.key_version',
    );
    throwsCode(
      () => encodeSecretPayload({ ...payload, keyVersion: 0 }),
      'ERR_INVALID_ARGUMENT',
      'aproxy.encode.key_version',
    );
  });

  it('property: arbitrary bytes parse or fail with a typed error', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), fc.boolean(), (bytes, withMagic) => {
        const format = 1 + ((bytes[0] ?? 0) & 1);
        const input = withMagic
          ? Uint8Array.from([0x56, 0x53, 0x53, 0x50, format, 0, 0, 0, ...bytes])
          : bytes;
        try {
          parseSecretPayload(input);
        } catch (e) {
          assert.ok(isTyped(e), String(e));
        }
      }),
      { numRuns: 1000 },
    );
  });
});

describe('broker signature over the canonical response encoding', () => {
  const broker = newKeyPairSync('ec', { namedCurve: 'P-384' });
  const other = newKeyPairSync('ec', { namedCurve: 'P-384' });
  const fields = {
    challenge: new Uint8Array([1, 2, 3]),
    key: { x: new Uint8Array(66).fill(1), y: new Uint8Array(66).fill(2) },
    decryption: {
      epk: { x: new Uint8Array(66).fill(3), y: new Uint8Array(66).fill(4) },
      wrappedCek: new Uint8Array(40).fill(5),
      aad: new Uint8Array([0x61]),
      iv: new Uint8Array(12).fill(6),
      tag: new Uint8Array(16).fill(7),
    },
    ciphertext: new Uint8Array([9, 9]),
    identity: { project: 'p', zone: 'z', instanceId: 'i', instanceName: 'n' },
    stateCounter: 3n,
    stateDigest: new Uint8Array(32).fill(0x0d),
  };

  it('encodes domain, length-prefixed fields, identity flag and counter as documented', () => {
    const b = Buffer.from(encodeResponseSignedContent(fields));
    const lp = (x: Uint8Array | string) => {
      const d = typeof x === 'string' ? Buffer.from(x) : Buffer.from(x);
      const l = Buffer.alloc(4);
      l.writeUInt32LE(d.length);
      return Buffer.concat([l, d]);
    };
    const expected = Buffer.concat([
      Buffer.from('VOUCHSAFE-APROXY-RESPONSE-SIG/2\0'),
      lp(fields.challenge),
      lp(fields.key.x),
      lp(fields.key.y),
      lp(fields.decryption.epk.x),
      lp(fields.decryption.epk.y),
      lp(fields.decryption.wrappedCek),
      lp(fields.decryption.aad),
      lp(fields.decryption.iv),
      lp(fields.decryption.tag),
      lp(fields.ciphertext),
      Buffer.from([1]),
      lp('p'),
      lp('z'),
      lp('i'),
      lp('n'),
      Buffer.from('0300000000000000', 'hex'),
      lp(fields.stateDigest),
    ]);
    assert.equal(b.toString('hex'), expected.toString('hex'));
    const noId = Buffer.from(
      encodeResponseSignedContent({ ...fields, identity: null, stateCounter: null, stateDigest: null }),
    );
    assert.equal(noId.subarray(-13).toString('hex'), `00${'ff'.repeat(8)}00000000`);
    const commit = Buffer.from(
      encodeCommitSignedContent({
        challenge: fields.challenge,
        bootId: 'b',
        counter: 4n,
        stateDigest: fields.stateDigest,
      }),
    );
    assert.equal(
      commit.toString('hex'),
      Buffer.concat([
        Buffer.from('VOUCHSAFE-APROXY-COMMIT-SIG/2\0'),
        lp(fields.challenge),
        lp('b'),
        Buffer.from('0400000000000000', 'hex'),
        lp(fields.stateDigest),
      ]).toString('hex'),
    );
  });

  it('verifies with the pinned key and rejects another key or any changed field', () => {
    const sig = signAttestationResponse(broker.privateKey, fields);
    assert.equal(sig.length, 96);
    verifyAttestationResponse(broker.publicKey, fields, sig);
    throwsCode(
      () => verifyAttestationResponse(other.publicKey, fields, sig),
      'ERR_SIGNATURE_INVALID',
      'aproxy.signature',
    );
    const changed = [
      { ...fields, stateCounter: 4n },
      { ...fields, stateCounter: null },
      { ...fields, stateDigest: new Uint8Array(32).fill(0x0e) },
      { ...fields, identity: { ...fields.identity, instanceId: 'j' } },
      { ...fields, identity: null },
      { ...fields, challenge: new Uint8Array([1, 2, 4]) },
      { ...fields, ciphertext: new Uint8Array([9, 8]) },
      { ...fields, key: { ...fields.key, y: new Uint8Array(66).fill(9) } },
    ];
    for (const f of changed) {
      throwsCode(
        () => verifyAttestationResponse(broker.publicKey, f, sig),
        'ERR_SIGNATURE_INVALID',
        'aproxy.signature',
      );
    }
    const ack = { challenge: fields.challenge, bootId: 'b', counter: 4n, stateDigest: fields.stateDigest };
    const csig = signCommit(broker.privateKey, ack);
    verifyCommit(broker.publicKey, ack, csig);
    for (const f of [
      { ...ack, counter: 5n },
      { ...ack, stateDigest: new Uint8Array(32) },
    ]) {
      throwsCode(
        () => verifyCommit(broker.publicKey, f, csig),
        'ERR_SIGNATURE_INVALID',
        'aproxy.commit_signature',
      );
    }
  });

  it('encodes the lease acknowledgement content as documented (op byte, nonce, boot id, expiry)', () => {
    const nonce = new Uint8Array(16).fill(0xab);
    const lp = (x: Uint8Array | string) => {
      const d = Buffer.from(x);
      const l = Buffer.alloc(4);
      l.writeUInt32LE(d.length);
      return Buffer.concat([l, d]);
    };
    const hb = Buffer.from(
      encodeLeaseSignedContent({ op: 'heartbeat', nonce, bootId: 'b-1', leaseExpiresAt: 1_700_000_000_123 }),
    );
    const at = Buffer.alloc(8);
    at.writeBigUInt64LE(1_700_000_000_123n);
    assert.equal(
      hb.toString('hex'),
      Buffer.concat([
        Buffer.from('VOUCHSAFE-APROXY-LEASE-SIG/1\0'),
        Buffer.from([1]),
        lp(nonce),
        lp('b-1'),
        at,
      ]).toString('hex'),
    );
    const end = Buffer.from(
      encodeLeaseSignedContent({ op: 'end', nonce, bootId: 'b-1', leaseExpiresAt: null }),
    );
    assert.equal(end[29], 2);
    assert.equal(end.subarray(-8).toString('hex'), '00'.repeat(8));
    throwsCode(
      () => encodeLeaseSignedContent({ op: 'heartbeat', nonce, bootId: 'b', leaseExpiresAt: 1.5 }),
      'ERR_INVALID_ARGUMENT',
      'aproxy.encode.lease',
    );
  });

  it('refuses a non-P-384 signing key', () => {
    const p256 = newKeyPairSync('ec', { namedCurve: 'P-256' });
    throwsCode(
      () => signAttestationResponse(p256.privateKey, fields),
      'ERR_INVALID_ARGUMENT',
      'aproxy.signature.key',
    );
  });
});
