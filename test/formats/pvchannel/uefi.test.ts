/** UEFI variable and KEY_RELEASE payloads (docs/pvchannel.md §7.3, §7.4): layout at the documented offsets, and refusals. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  decodeKeyReleaseAnswer,
  decodeKeyReleaseRequest,
  encodeKeyReleaseAnswer,
  encodeKeyReleaseRequest,
} from '../../../src/formats/pvchannel/key-release.js';
import {
  decodeGetAnswer,
  decodeGetNextAnswer,
  decodeGetNextRequest,
  decodeGetRequest,
  decodeQueryInfoAnswer,
  decodeSetRequest,
  encodeGetAnswer,
  encodeGetNextAnswer,
  encodeGetRequest,
  encodeQueryInfoAnswer,
  encodeSetRequest,
  nameFromString,
} from '../../../src/formats/pvchannel/uefi.js';
import { decodeHostStoreFile, encodeHostStoreFile } from '../../../src/formats/pvchannel/uefi-host-file.js';
import { throwsCode } from '../../helpers/assert-error.js';

const guid = Uint8Array.from({ length: 16 }, (_, i) => i + 1);
const name = nameFromString('Boot0001');

describe('UEFI payloads', () => {
  it('UEFI_SET: fields at 0x00, 0x10, 0x14, 0x18, name at 0x20; round trip', () => {
    const b = encodeSetRequest({ guid, name, attributes: 7, data: Uint8Array.of(9, 8) });
    const dv = new DataView(b.buffer);
    assert.deepEqual(b.subarray(0, 16), guid);
    assert.equal(dv.getUint16(0x10, true), name.length);
    assert.equal(dv.getUint32(0x14, true), 7);
    assert.equal(dv.getUint32(0x18, true), 2);
    assert.deepEqual(b.subarray(0x20, 0x20 + name.length), name);
    assert.equal(b.length, 0x20 + name.length + 2);
    assert.deepEqual(decodeSetRequest(b), { guid, name, attributes: 7, data: Uint8Array.of(9, 8) });
  });

  it('names: odd length, a NUL code unit, empty (except GET_NEXT start), over 512 bytes are refused', () => {
    const odd = encodeGetRequest({ guid, name: Uint8Array.of(0x41, 0, 0x42) });
    throwsCode(() => decodeGetRequest(odd), 'ERR_MALFORMED', 'pvchannel.uefi_get.name_length');
    const nul = encodeGetRequest({ guid, name: Uint8Array.of(0x41, 0, 0, 0) });
    throwsCode(() => decodeGetRequest(nul), 'ERR_MALFORMED', 'pvchannel.uefi_get.name_nul');
    const empty = encodeGetRequest({ guid, name: new Uint8Array(0) });
    throwsCode(() => decodeGetRequest(empty), 'ERR_MALFORMED', 'pvchannel.uefi_get.name_length');
    assert.equal(
      decodeGetNextRequest(encodeGetRequest({ guid: new Uint8Array(16), name: new Uint8Array(0) })).name
        .length,
      0,
    );
    throwsCode(() => decodeGetNextRequest(empty), 'ERR_MALFORMED', 'pvchannel.uefi_get_next.start_guid');
    const long = encodeGetRequest({ guid, name: new Uint8Array(514).fill(0x41) });
    throwsCode(() => decodeGetRequest(long), 'ERR_MALFORMED', 'pvchannel.uefi_get.name_length');
  });

  it('reserved bytes, reserved attributes, trailing bytes, an error answer carrying data, unknown EFI status', () => {
    const r = encodeGetRequest({ guid, name });
    r[0x13] = 1;
    throwsCode(() => decodeGetRequest(r), 'ERR_MALFORMED', 'pvchannel.uefi_get.reserved_nonzero');
    const attrs = encodeSetRequest({ guid, name, attributes: 0x100, data: Uint8Array.of(1) });
    throwsCode(() => decodeSetRequest(attrs), 'ERR_MALFORMED', 'pvchannel.uefi_set.attributes');
    const trailing = Uint8Array.from([...encodeGetRequest({ guid, name }), 0]);
    throwsCode(() => decodeGetRequest(trailing), 'ERR_MALFORMED', 'pvchannel.uefi_get.trailing_bytes');
    const a = encodeGetAnswer({ status: 0, attributes: 7, data: Uint8Array.of(1) });
    a[0] = 14; // NOT_FOUND, yet a variable follows
    throwsCode(() => decodeGetAnswer(a), 'ERR_MALFORMED', 'pvchannel.uefi_get_answer.error_fields');
    a[0] = 99;
    throwsCode(() => decodeGetAnswer(a), 'ERR_MALFORMED', 'pvchannel.uefi_get_answer.status');
    const n = encodeGetNextAnswer({ status: 0, next: { guid, name } });
    n[0] = 14;
    throwsCode(() => decodeGetNextAnswer(n), 'ERR_MALFORMED', 'pvchannel.uefi_get_next_answer.error_fields');
    const q = encodeQueryInfoAnswer({
      status: 0,
      maximumVariableStorageSize: 10n,
      remainingVariableStorageSize: 11n,
      maximumVariableSize: 1n,
    });
    throwsCode(() => decodeQueryInfoAnswer(q), 'ERR_MALFORMED', 'pvchannel.uefi_query_info_answer.sizes');
  });

  it('host file: round trip; a record out of bounds or a truncated file is refused', () => {
    const f = encodeHostStoreFile([{ guid, name, attributes: 3, data: Uint8Array.of(1, 2, 3) }]);
    assert.deepEqual(decodeHostStoreFile(f), [{ guid, name, attributes: 3, data: Uint8Array.of(1, 2, 3) }]);
    throwsCode(
      () => decodeHostStoreFile(f.subarray(0, f.length - 1)),
      'ERR_MALFORMED',
      'pvchannel.uefi_host_file.truncated',
    );
    const bad = Uint8Array.from(f);
    bad[12 + 16] = 3; // odd name length
    throwsCode(() => decodeHostStoreFile(bad), 'ERR_MALFORMED', 'pvchannel.uefi_host_file.record');
  });
});

describe('KEY_RELEASE payloads', () => {
  it('op at 0x0, stream at 0x4, message at 0x8; CLOSE and CLOSED carry nothing, MESSAGE and REPLY something', () => {
    const q = encodeKeyReleaseRequest({ op: 1, stream: 0xdeadbeef, message: Uint8Array.of(0x7b) });
    assert.deepEqual([...q], [1, 0, 0, 0, 0xef, 0xbe, 0xad, 0xde, 0x7b]);
    assert.deepEqual(decodeKeyReleaseRequest(q), { op: 1, stream: 0xdeadbeef, message: Uint8Array.of(0x7b) });
    const emptyMessage = encodeKeyReleaseRequest({ op: 1, stream: 1, message: new Uint8Array(0) });
    throwsCode(() => decodeKeyReleaseRequest(emptyMessage), 'ERR_MALFORMED', 'pvchannel.key_release.length');
    const closeWithBytes = encodeKeyReleaseRequest({ op: 2, stream: 1, message: Uint8Array.of(1) });
    throwsCode(
      () => decodeKeyReleaseRequest(closeWithBytes),
      'ERR_MALFORMED',
      'pvchannel.key_release.length',
    );
    const op3 = Uint8Array.from(q);
    op3[0] = 3;
    throwsCode(() => decodeKeyReleaseRequest(op3), 'ERR_MALFORMED', 'pvchannel.key_release.op');
    const res = Uint8Array.from(q);
    res[2] = 1;
    throwsCode(() => decodeKeyReleaseRequest(res), 'ERR_MALFORMED', 'pvchannel.key_release.reserved_nonzero');
    const a = encodeKeyReleaseAnswer({ kind: 2, stream: 5, message: new Uint8Array(0) });
    assert.deepEqual(decodeKeyReleaseAnswer(a), { kind: 2, stream: 5, message: new Uint8Array(0) });
  });
});
