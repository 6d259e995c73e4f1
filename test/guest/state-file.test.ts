import assert from 'node:assert/strict';
import { createCipheriv, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import {
  deriveStateKey,
  instanceBindingOf,
  parseStateHeader,
  readStateFile,
  STATE_HEADER_SIZE,
  sealState,
  unsealState,
  writeStateFileAtomic,
} from '../../src/guest/state-file.js';
import { isTyped, rejectsCode, throwsCode } from '../helpers/assert-error.js';

const secret = new Uint8Array(32).fill(0x33);
const key = deriveStateKey(secret);
const identity = { project: 'proj', zone: 'europe-west4-a', instanceId: '1234', instanceName: 'vm' };
const binding = instanceBindingOf(identity);
const body = new TextEncoder().encode('vTPM NVChip contents');
const file = sealState({ key, counter: 7n, instanceBinding: binding, body, keyVersion: 3 });

/** A format-1 state file (as written before key versions were recorded), sealed by hand. */
function sealV1(counter: bigint, b: Uint8Array): Uint8Array {
  const nonce = randomBytes(12);
  const h = Buffer.alloc(0x40);
  h.write('VSST', 0, 'latin1');
  h.writeUInt16LE(1, 4);
  h.writeBigUInt64LE(counter, 8);
  Buffer.from(binding).copy(h, 0x10);
  nonce.copy(h, 0x30);
  h.writeUInt32LE(b.length, 0x3c);
  const c = createCipheriv('aes-256-gcm', key, nonce);
  c.setAAD(h);
  return new Uint8Array(Buffer.concat([h, c.update(b), c.final(), c.getAuthTag()]));
}

const dir = mkdtempSync(join(tmpdir(), 'vs-state-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('state file', () => {
  it('has the documented header (format 2, with the key version), readable before decryption', () => {
    assert.equal(STATE_HEADER_SIZE, 0x48);
    const h = Buffer.from(file.subarray(0, STATE_HEADER_SIZE));
    assert.equal(h.subarray(0, 4).toString('latin1'), 'VSST');
    assert.equal(h.readUInt16LE(4), 2);
    assert.equal(h.readUInt16LE(6), 0);
    assert.equal(h.readBigUInt64LE(8), 7n);
    assert.deepEqual(new Uint8Array(h.subarray(0x10, 0x30)), binding);
    assert.equal(h.readUInt32LE(0x3c), body.length);
    assert.equal(h.readUInt32LE(0x40), 3);
    assert.equal(h.readUInt32LE(0x44), 0);
    assert.equal(file.length, 0x48 + body.length + 16);
    const parsed = parseStateHeader(file);
    assert.equal(parsed.counter, 7n);
    assert.equal(parsed.formatVersion, 2);
    assert.equal(parsed.keyVersion, 3);
    assert.equal(parsed.headerSize, 0x48);
    // Without a key version the field is 0 ("not known").
    assert.equal(
      parseStateHeader(sealState({ key, counter: 1n, instanceBinding: binding, body })).keyVersion,
      0,
    );
  });

  it('still reads format 1 (no key version: 0) and authenticates its 64-byte header', () => {
    const v1 = sealV1(5n, body);
    const h = parseStateHeader(v1);
    assert.deepEqual([h.formatVersion, h.headerSize, h.keyVersion, h.counter], [1, 0x40, 0, 5n]);
    assert.deepEqual(unsealState(v1, key, binding).body, body);
    const c = Uint8Array.from(v1);
    c[8] = 6; // the counter, in the AAD
    throwsCode(() => unsealState(c, key, binding), 'ERR_SIGNATURE_INVALID', 'state.auth');
  });

  it('the key version is authenticated: changing it fails as state.auth', () => {
    const c = Uint8Array.from(file);
    c[0x40] = 2;
    assert.equal(parseStateHeader(c).keyVersion, 2);
    throwsCode(() => unsealState(c, key, binding), 'ERR_SIGNATURE_INVALID', 'state.auth');
  });

  it('unseals with the right key and binding', () => {
    const u = unsealState(file, key, binding);
    assert.deepEqual(u.body, body);
    assert.equal(u.header.counter, 7n);
  });

  it('derives the key with HKDF-SHA256 from the secret (a different secret cannot open it)', () => {
    const other = deriveStateKey(new Uint8Array(32).fill(0x34));
    throwsCode(() => unsealState(file, other), 'ERR_SIGNATURE_INVALID', 'state.auth');
    throwsCode(() => deriveStateKey(new Uint8Array(8)), 'ERR_INVALID_ARGUMENT', 'state.secret');
  });

  it('every flipped bit anywhere in the file is a typed error, never a wrong body', () => {
    let n = 0;
    for (let i = 0; i < file.length; i++) {
      const c = Uint8Array.from(file);
      c[i]! ^= 1 << (i % 8);
      assert.throws(
        () => unsealState(c, key, binding),
        (e: unknown) => isTyped(e),
        `byte ${i}`,
      );
      n++;
    }
    assert.equal(n, file.length);
  });

  it('a changed counter (rollback of the header alone) fails authentication', () => {
    const c = Uint8Array.from(file);
    Buffer.from(c.buffer).writeBigUInt64LE(8n, 8);
    assert.equal(parseStateHeader(c).counter, 8n);
    throwsCode(() => unsealState(c, key), 'ERR_SIGNATURE_INVALID', 'state.auth');
  });

  it('refuses another instance, and accepts an unbound (all-zero) file for any instance', () => {
    const otherBinding = instanceBindingOf({ ...identity, instanceId: '1235' });
    throwsCode(() => unsealState(file, key, otherBinding), 'ERR_BINDING_MISMATCH', 'state.instance_binding');
    const unbound = sealState({ key, counter: 1n, instanceBinding: instanceBindingOf(null), body });
    assert.deepEqual(unsealState(unbound, key, otherBinding).body, body);
  });

  it('bounds-checks the header: magic, version, flags, reserved counter, sizes', () => {
    const mut = (off: number, v: number) => {
      const c = Uint8Array.from(file);
      c[off] = v;
      return c;
    };
    throwsCode(() => parseStateHeader(mut(0, 0)), 'ERR_MALFORMED', 'state.magic');
    throwsCode(() => parseStateHeader(mut(4, 3)), 'ERR_MALFORMED', 'state.version');
    throwsCode(() => parseStateHeader(mut(4, 0)), 'ERR_MALFORMED', 'state.version');
    throwsCode(() => parseStateHeader(mut(7, 1)), 'ERR_MALFORMED', 'state.reserved_nonzero');
    throwsCode(() => parseStateHeader(mut(0x45, 1)), 'ERR_MALFORMED', 'state.reserved_nonzero');
    // A format-1 file relabelled as format 2 (or the reverse) no longer matches its size.
    throwsCode(() => parseStateHeader(mut(4, 1)), 'ERR_MALFORMED', 'state.size');
    throwsCode(() => parseStateHeader(mut(0x3c, 0xff)), 'ERR_MALFORMED', 'state.size');
    throwsCode(() => parseStateHeader(file.subarray(0, 0x4f)), 'ERR_MALFORMED', 'state.size');
    throwsCode(() => parseStateHeader(file.subarray(0, file.length - 1)), 'ERR_MALFORMED', 'state.size');
    const c = Uint8Array.from(file);
    c.fill(0xff, 8, 16);
    throwsCode(() => parseStateHeader(c), 'ERR_MALFORMED', 'state.counter');
  });

  it('property: arbitrary bytes never escape as untyped errors', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (b, magic) => {
        const input = magic ? Uint8Array.from([0x56, 0x53, 0x53, 0x54, 1 + (b[0]! & 1), 0, 0, 0, ...b]) : b;
        try {
          unsealState(input, key, binding);
        } catch (e) {
          assert.ok(isTyped(e), String(e));
        }
      }),
      { numRuns: 500 },
    );
  });

  it('writes atomically (no temporary files left) and reads back; missing file is undefined', async () => {
    const p = join(dir, 'vm.state');
    assert.equal(await readStateFile(p), undefined);
    await writeStateFileAtomic(p, file);
    await writeStateFileAtomic(p, file);
    assert.deepEqual(await readStateFile(p), file);
    assert.deepEqual(readdirSync(dir), ['vm.state']);
  });

  it('refuses an oversized state file before reading it', async () => {
    const p = join(dir, 'huge.state');
    writeFileSync(p, Buffer.alloc(0x48 + 16 * 1024 * 1024 + 17));
    await rejectsCode(readStateFile(p), 'ERR_MALFORMED', 'state.size');
  });
});
