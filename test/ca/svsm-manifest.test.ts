import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { AttestationError } from '../../src/errors.js';
import {
  efiBytesToGuid,
  encodeServicesManifest,
  encodeVtpmManifestV0,
  encodeVtpmManifestV1,
  findService,
  guidToEfiBytes,
  MAX_MANIFEST_SIZE,
  parseServicesManifest,
  parseVtpmManifest,
  SERVICES_MANIFEST_GUID,
  svsmReportData,
  VTPM_SERVICE_GUID,
} from '../../src/formats/svsm/index.js';
import { encodePublic, encodeTpm2bPublic } from '../../src/formats/tpm/index.js';
import { toHex } from '../../src/util/bytes.js';
import { errorWith } from '../helpers/assert-error.js';
import { softAk, softEk } from './fixtures.js';

const malformed = (reason: string) => errorWith('ERR_MALFORMED', reason);

describe('SVSM GUIDs (EFI mixed-endian layout)', () => {
  it('lays out the services-manifest GUID with the first three fields little-endian', () => {
    // go-sev-guest UUIDToLittleEndian: 63849ebb-3d92-4670-a1ff-58f9c94b87bb
    assert.equal(toHex(guidToEfiBytes(SERVICES_MANIFEST_GUID)), 'bb9e8463923d7046a1ff58f9c94b87bb');
    assert.equal(toHex(guidToEfiBytes(VTPM_SERVICE_GUID)), 'ebf176c42301a5459641b4e7dde5bfe3');
    assert.equal(efiBytesToGuid(guidToEfiBytes(VTPM_SERVICE_GUID)), VTPM_SERVICE_GUID);
  });

  it('refuses a malformed GUID', () => {
    assert.throws(() => guidToEfiBytes('not-a-guid'), errorWith('ERR_INVALID_ARGUMENT', 'svsm.guid'));
  });
});

describe('services manifest', () => {
  const g1 = '11112222-1234-5678-9abc-ddddeeeeffff';
  const g2 = '88889999-8888-9999-8888-999988889999';
  const d1 = new Uint8Array(Buffer.from('TheServiceData'));
  const d2 = new Uint8Array(Buffer.from('OtherserviceData'));

  it('matches COCONUT build_manifest_all: header, entries, payloads back to back', () => {
    // COCONUT services_manifest.rs test: len = 24 + 24 + 24 + 14 + 16, data at [72, 86) and [86, ...)
    const m = encodeServicesManifest([
      { guid: g1, payload: d1 },
      { guid: g2, payload: d2 },
    ]);
    assert.equal(m.length, 24 + 24 + 24 + 14 + 16);
    assert.deepEqual(m.subarray(72, 86), d1);
    assert.deepEqual(m.subarray(86), d2);
    const view = new DataView(m.buffer);
    assert.equal(view.getUint32(16, true), m.length, 'total length');
    assert.equal(view.getUint32(20, true), 2, 'entry count');
    assert.equal(view.getUint32(24 + 16, true), 72, 'first offset');
    assert.equal(view.getUint32(24 + 20, true), 14, 'first size');
    const p = parseServicesManifest(m);
    assert.deepEqual(
      p.entries.map((e) => [e.guid, e.offset, Buffer.from(e.payload).toString()]),
      [
        [g1, 72, 'TheServiceData'],
        [g2, 86, 'OtherserviceData'],
      ],
    );
    assert.deepEqual(findService(p, g2.toUpperCase())?.payload, d2);
    assert.equal(findService(p, VTPM_SERVICE_GUID), undefined);
  });

  it('an empty manifest is the 24-byte header', () => {
    const m = encodeServicesManifest([]);
    assert.equal(m.length, 24);
    assert.deepEqual(parseServicesManifest(m).entries, []);
  });

  it('accepts payloads in any order and with gaps, as long as they are in bounds and disjoint', () => {
    const m = new Uint8Array(24 + 48 + 10);
    m.set(guidToEfiBytes(SERVICES_MANIFEST_GUID));
    const v = new DataView(m.buffer);
    v.setUint32(16, m.length, true);
    v.setUint32(20, 2, true);
    m.set(guidToEfiBytes(g1), 24);
    v.setUint32(40, 78, true); // second half first
    v.setUint32(44, 4, true);
    m.set(guidToEfiBytes(g2), 48);
    v.setUint32(64, 72, true);
    v.setUint32(68, 3, true); // gap [75, 78)
    const p = parseServicesManifest(m);
    assert.equal(p.entries[0]!.offset, 78);
    assert.equal(p.entries[1]!.payload.length, 3);
  });

  function header(total: number, count: number): Uint8Array {
    const m = new Uint8Array(Math.max(total, 24));
    m.set(guidToEfiBytes(SERVICES_MANIFEST_GUID));
    const v = new DataView(m.buffer);
    v.setUint32(16, total, true);
    v.setUint32(20, count, true);
    return m;
  }

  it('refuses each malformation with a stable reason', () => {
    const good = encodeServicesManifest([
      { guid: g1, payload: d1 },
      { guid: g2, payload: d2 },
    ]);
    const edit = (f: (m: Uint8Array, v: DataView) => void) => {
      const m = Uint8Array.from(good);
      f(m, new DataView(m.buffer));
      return m;
    };
    assert.throws(() => parseServicesManifest(good.subarray(0, 18)), malformed('svsm.manifest.truncated'));
    assert.throws(() => parseServicesManifest(edit((m) => (m[0]! ^= 1))), malformed('svsm.manifest.guid'));
    // RFC 4122 byte order instead of the EFI layout is a different GUID
    const rfc = edit((m) => m.set(Buffer.from(SERVICES_MANIFEST_GUID.replace(/-/g, ''), 'hex'), 0));
    assert.throws(() => parseServicesManifest(rfc), malformed('svsm.manifest.guid'));
    assert.throws(
      () => parseServicesManifest(edit((_m, v) => v.setUint32(16, 999, true))),
      malformed('svsm.manifest.length'),
    );
    assert.throws(
      () => parseServicesManifest(Uint8Array.from([...good, 0])),
      malformed('svsm.manifest.length'),
    );
    assert.throws(
      () => parseServicesManifest(edit((_m, v) => v.setUint32(20, 4, true))),
      malformed('svsm.manifest.entries'),
    );
    assert.throws(
      () => parseServicesManifest(edit((_m, v) => v.setUint32(20, 0xffffffff, true))),
      malformed('svsm.manifest.entries'),
    );
    assert.throws(
      () => parseServicesManifest(edit((_m, v) => v.setUint32(44, 31, true))),
      malformed('svsm.manifest.bounds'),
    );
    assert.throws(
      () => parseServicesManifest(edit((_m, v) => v.setUint32(40, 50, true))),
      malformed('svsm.manifest.bounds'),
    );
    // offset + size overflowing 32 bits must not wrap around
    assert.throws(
      () => parseServicesManifest(edit((_m, v) => v.setUint32(44, 0xffffffff, true))),
      malformed('svsm.manifest.bounds'),
    );
    assert.throws(
      () => parseServicesManifest(edit((_m, v) => v.setUint32(64, 80, true))),
      malformed('svsm.manifest.overlap'),
    );
    assert.throws(
      () => parseServicesManifest(edit((m) => m.set(guidToEfiBytes(g1), 48))),
      malformed('svsm.manifest.duplicate'),
    );
    assert.throws(
      () => parseServicesManifest(header(MAX_MANIFEST_SIZE + 1, 0)),
      malformed('svsm.manifest.size'),
    );
  });

  it('encoder refuses duplicate services and bad GUIDs', () => {
    assert.throws(
      () =>
        encodeServicesManifest([
          { guid: g1, payload: d1 },
          { guid: g1.toUpperCase(), payload: d2 },
        ]),
      errorWith('ERR_INVALID_ARGUMENT', 'svsm.manifest.duplicate'),
    );
    assert.throws(
      () => encodeServicesManifest([{ guid: 'x', payload: d1 }]),
      errorWith('ERR_INVALID_ARGUMENT', 'svsm.guid'),
    );
  });

  it('REPORT_DATA = SHA-512(nonce || manifest)', () => {
    const nonce = new Uint8Array(64).fill(7);
    const m = encodeServicesManifest([{ guid: g1, payload: d1 }]);
    const want = createHash('sha512')
      .update(Buffer.concat([nonce, m]))
      .digest('hex');
    assert.equal(toHex(svsmReportData(nonce, m)), want);
  });

  it('property: any input either parses or throws a typed error, and encode/parse round-trips', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        try {
          parseServicesManifest(bytes);
        } catch (e) {
          assert.ok(e instanceof AttestationError, String(e));
        }
      }),
      { numRuns: 500 },
    );
    const entry = fc.record({ guid: fc.uuid(), payload: fc.uint8Array({ maxLength: 64 }) });
    fc.assert(
      fc.property(fc.uniqueArray(entry, { selector: (e) => e.guid, maxLength: 6 }), (entries) => {
        const m = encodeServicesManifest(entries);
        const p = parseServicesManifest(m);
        assert.deepEqual(
          p.entries.map((e) => [e.guid, toHex(e.payload)]),
          entries.map((e) => [e.guid.toLowerCase(), toHex(e.payload)]),
        );
      }),
      { numRuns: 200 },
    );
  });

  it('property: corrupting a header field of a valid manifest never escapes as an untyped error', () => {
    const base = encodeServicesManifest([
      { guid: g1, payload: d1 },
      { guid: g2, payload: d2 },
    ]);
    fc.assert(
      fc.property(fc.integer({ min: 16, max: 71 }), fc.integer({ min: 0, max: 255 }), (at, value) => {
        const m = Uint8Array.from(base);
        m[at] = value;
        try {
          parseServicesManifest(m);
        } catch (e) {
          assert.ok(e instanceof AttestationError, String(e));
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('vTPM service payload', () => {
  const ek = softEk('rsa');
  const ak = softAk();

  it('v0 is the bare TPMT_PUBLIC of the EK (COCONUT today)', () => {
    const payload = encodeVtpmManifestV0(ek.pub);
    assert.deepEqual(payload, encodePublic(ek.pub));
    assert.equal(payload.length, 314, 'RSA-2048 low-range EK TPMT_PUBLIC is 314 bytes');
    const v = parseVtpmManifest(payload);
    assert.equal(v.version, 0);
    assert.deepEqual(v.ek.raw, payload);
  });

  it('v1 is {u32 LE version 1, TPM2B_PUBLIC ek, TPM2B_PUBLIC ak}', () => {
    const payload = encodeVtpmManifestV1(ek.pub, ak.pub);
    const ekB = encodeTpm2bPublic(ek.pub);
    const akB = encodeTpm2bPublic(ak.pub);
    assert.equal(toHex(payload.subarray(0, 4)), '01000000');
    assert.deepEqual(payload.subarray(4, 4 + ekB.length), ekB);
    assert.deepEqual(payload.subarray(4 + ekB.length), akB);
    const v = parseVtpmManifest(payload, 1);
    assert.equal(v.version, 1);
    if (v.version !== 1) return;
    assert.deepEqual(v.ek.raw, encodePublic(ek.pub));
    assert.deepEqual(v.ak.raw, encodePublic(ak.pub));
  });

  it('refuses malformed payloads with stable reasons', () => {
    const v1 = encodeVtpmManifestV1(ek.pub, ak.pub);
    assert.throws(() => parseVtpmManifest(new Uint8Array()), malformed('svsm.vtpm.truncated'));
    assert.throws(() => parseVtpmManifest(v1.subarray(0, v1.length - 1)), malformed('svsm.vtpm.truncated'));
    assert.throws(() => parseVtpmManifest(v1.subarray(0, 7)), malformed('svsm.vtpm.truncated'));
    assert.throws(
      () => parseVtpmManifest(Uint8Array.from([...v1, 0])),
      malformed('svsm.vtpm.trailing_bytes'),
    );
    const v2 = Uint8Array.from(v1);
    v2[0] = 2;
    assert.throws(() => parseVtpmManifest(v2), errorWith('ERR_NOT_SUPPORTED', 'svsm.vtpm.version'));
    const zeroEk = Uint8Array.from(v1);
    zeroEk[4] = 0;
    zeroEk[5] = 0;
    assert.throws(() => parseVtpmManifest(zeroEk), malformed('svsm.vtpm.ek'));
    assert.throws(() => parseVtpmManifest(encodeVtpmManifestV0(ek.pub), 1), malformed('svsm.vtpm.version'));
    assert.throws(() => parseVtpmManifest(v1, 0), malformed('svsm.vtpm.version'));
    assert.throws(
      () => parseVtpmManifest(Uint8Array.from([...encodePublic(ek.pub), 0])),
      malformed('tpm.public.trailing_bytes'),
    );
  });

  it('property: random payloads either parse or throw a typed error', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
        try {
          parseVtpmManifest(bytes);
        } catch (e) {
          assert.ok(e instanceof AttestationError, String(e));
        }
      }),
      { numRuns: 500 },
    );
  });
});
