import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { AttestationError } from '../../../src/errors.js';
import {
  buildCertTable,
  CertGuid,
  encodeReport,
  parseCertTable,
  parseReport,
  REPORT_SIZE,
} from '../../../src/formats/snp/index.js';
import { defaultReportFields, sharedSimChain } from '../../../src/sim/snp/index.js';

/** Runs `f`; returns the typed error's reason, fails the test on success or on an untyped throw. */
function reasonOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof AttestationError, `untyped error: ${String(e)}`);
    return e.reason;
  }
  assert.fail('expected a typed error');
}

describe('SNP report parser on hostile input', () => {
  it('any length other than 0x4A0 is refused with snp.report.size', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 }), (b) => {
        fc.pre(b.length !== REPORT_SIZE);
        assert.equal(
          reasonOf(() => parseReport(b)),
          'snp.report.size',
        );
      }),
      { numRuns: 300 },
    );
  });

  it('random 0x4A0-byte inputs parse or fail with a typed error, never anything else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: REPORT_SIZE, maxLength: REPORT_SIZE }), (b) => {
        try {
          parseReport(b);
        } catch (e) {
          assert.ok(e instanceof AttestationError, String(e));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('versions, reserved bytes, policy bits and signer info are checked per version', async () => {
    const chain = await sharedSimChain('Milan');
    const good = encodeReport(defaultReportFields(chain));
    parseReport(good);
    const with_ = (off: number, v: number) => {
      const b = Uint8Array.from(good);
      b[off] = v;
      return b;
    };
    assert.equal(
      reasonOf(() => parseReport(with_(0x00, 1))),
      'snp.report.version',
    );
    assert.equal(
      reasonOf(() => parseReport(with_(0x00, 6))),
      'snp.report.version',
    );
    assert.equal(
      reasonOf(() => parseReport(with_(0x0a, 0))),
      'snp.report.policy',
    ); // bit 17 cleared
    assert.equal(
      reasonOf(() => parseReport(with_(0x0b, 0x04))),
      'snp.report.policy',
    ); // bit 26 set
    assert.equal(
      reasonOf(() => parseReport(with_(0x48, 0x08))),
      'snp.report.signer_info',
    ); // SIGNING_KEY 2
    assert.equal(
      reasonOf(() => parseReport(with_(0x48 + 1, 0x01))),
      'snp.report.signer_info',
    ); // bit 8
    for (const off of [0x04c, 0x18b, 0x19f, 0x1eb, 0x1ef, 0x1f8, 0x29f, 0x330, 0x49f]) {
      assert.equal(
        reasonOf(() => parseReport(with_(off, 1))),
        'snp.report.reserved_nonzero',
        `0x${off.toString(16)}`,
      );
    }
    // v2 has no CPUID bytes: 0x188 is reserved there.
    const v2 = encodeReport({ ...defaultReportFields(chain), version: 2 });
    const v2b = Uint8Array.from(v2);
    v2b[0x188] = 0x19;
    assert.equal(
      reasonOf(() => parseReport(v2b)),
      'snp.report.reserved_nonzero',
    );
  });
});

describe('certificate table', () => {
  const entries = [
    { guid: CertGuid.VCEK, data: new Uint8Array([1, 2, 3]) },
    { guid: CertGuid.ASK, data: new Uint8Array([4, 5]) },
    { guid: CertGuid.ARK, data: new Uint8Array([6]) },
  ];

  it('builds and parses back the same entries', () => {
    const parsed = parseCertTable(buildCertTable(entries));
    assert.deepEqual(
      parsed.map((e) => [e.guid, [...e.data]]),
      entries.map((e) => [e.guid, [...e.data]]),
    );
  });

  it('entries pointing outside the buffer or into the entry table are refused', () => {
    const t = buildCertTable(entries);
    const lie = Uint8Array.from(t);
    new DataView(lie.buffer).setUint32(20, 0xffff, true); // first entry's length
    assert.equal(
      reasonOf(() => parseCertTable(lie)),
      'snp.cert_table.bounds',
    );
    const overlap = Uint8Array.from(t);
    new DataView(overlap.buffer).setUint32(16, 0, true); // first entry's offset into the table itself
    assert.equal(
      reasonOf(() => parseCertTable(overlap)),
      'snp.cert_table.bounds',
    );
    assert.equal(
      reasonOf(() => parseCertTable(t.subarray(0, 10))),
      'snp.cert_table.truncated',
    );
  });

  it('random and truncated tables end in a typed error or a bounded parse', () => {
    const t = buildCertTable(entries);
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 400 }),
          fc.nat(t.length).map((n) => t.subarray(0, n)),
        ),
        (b) => {
          try {
            for (const e of parseCertTable(b)) assert.ok(e.data.length <= b.length);
          } catch (e) {
            assert.ok(e instanceof AttestationError, String(e));
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
