import assert from 'node:assert/strict';
import { generateKeyPair } from 'node:crypto';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { ErrorCode } from '../../src/errors.js';
import {
  decodeGuestPolicy,
  decodeSignerInfo,
  decodeTcb,
  encodeGuestPolicy,
  encodeTcb,
  parseReport,
  productFromCpuid,
  REPORT_SIZE,
  SigningKey,
  type SnpProduct,
} from '../../src/formats/snp/index.js';
import {
  defaultReportFields,
  hwIdOf,
  SIM_DEFAULT_POLICY,
  sharedSimChain,
  signReport,
} from '../../src/sim/snp/index.js';
import { toHex } from '../../src/util/bytes.js';
import { publicKeyOf } from './der-helpers.js';
import { verifyReportSignature } from './report-signing.js';

const PRODUCTS: SnpProduct[] = ['Milan', 'Turin'];
const invalid = (reason: string) => (e: unknown) => {
  assert.equal((e as { code: string }).code, ErrorCode.InvalidArgument);
  assert.equal((e as { reason: string }).reason, reason);
  return true;
};

describe('signReport: signed with the chain key, readable by parseReport', () => {
  for (const product of PRODUCTS) {
    for (const signer of ['VCEK', 'VLEK'] as const) {
      it(`${product} ${signer}: default report round-trips and verifies with the leaf certificate key`, async () => {
        const chain = await sharedSimChain(product);
        const leafKey = publicKeyOf(signer === 'VCEK' ? chain.vcek.der : chain.vlek.der);
        const otherKey = publicKeyOf(signer === 'VCEK' ? chain.vlek.der : chain.vcek.der);
        const report = signReport({}, chain, { signer });
        assert.equal(report.length, REPORT_SIZE);
        assert.ok(verifyReportSignature(report, leafKey));
        assert.equal(verifyReportSignature(report, otherKey), false);

        const r = parseReport(report);
        const fields = defaultReportFields(chain, { reportId: r.reportId }, { signer });
        // Round trip: every field parseReport reads equals what the defaults say.
        for (const [k, v] of Object.entries(fields)) {
          assert.deepEqual((r as unknown as Record<string, unknown>)[k], v, k);
        }
        assert.equal(r.version, product === 'Turin' ? 5 : 3);
        assert.equal(r.signatureAlgo, 1);
        assert.equal(r.vmpl, 0);
        assert.equal(decodeSignerInfo(r.signerInfo).signingKey, SigningKey[signer]);
        assert.equal(productFromCpuid(r.cpuid!.family, r.cpuid!.model), product);
        const tcb = encodeTcb(chain.tcb, product);
        for (const t of [r.currentTcb, r.committedTcb, r.launchTcb, r.reportedTcb]) assert.equal(t, tcb);
        assert.deepEqual(decodeTcb(r.reportedTcb, product).snp, chain.tcb.snp);
        assert.equal(toHex(r.reportIdMa), 'ff'.repeat(32));
        assert.equal(`${r.currentMajor}.${r.currentMinor}`, '1.55');
        if (signer === 'VCEK') {
          assert.deepEqual(r.chipId, chain.chipId);
          assert.deepEqual(hwIdOf(product, r.chipId), hwIdOf(product, chain.chipId));
        } else {
          assert.ok(r.chipId.every((b) => b === 0));
        }
      });
    }
  }

  it('default policy is ABI 0.31, SMT allowed, bit 17 set (0x3001F), no debug or migration', () => {
    assert.equal(SIM_DEFAULT_POLICY, 0x3001fn);
    const p = decodeGuestPolicy(SIM_DEFAULT_POLICY);
    assert.deepEqual([p.abiMajor, p.abiMinor, p.smt, p.debug, p.migrateMa], [0, 31, true, false, false]);
  });

  it('Turin reports are v5 with Turin CPUID and mitigation vectors; CHIP_ID has 8 meaningful bytes', async () => {
    const chain = await sharedSimChain('Turin');
    const r = parseReport(signReport({}, chain));
    assert.deepEqual(r.cpuid, { family: 0x1a, model: 0x02, stepping: 1 });
    assert.equal(r.launchMitVector, 0x3fn);
    assert.equal(decodeTcb(r.reportedTcb, 'Turin').fmc, chain.tcb.fmc);
    assert.ok(r.chipId.subarray(8).every((b) => b === 0));
  });

  it('two default reports differ in REPORT_ID (random per report)', async () => {
    const chain = await sharedSimChain('Milan');
    const a = parseReport(signReport({}, chain));
    const b = parseReport(signReport({}, chain));
    assert.notDeepEqual(a.reportId, b.reportId);
  });
});

describe('signReport: overrides win, and the bytes are still correctly signed', () => {
  it('sets any field, including ones a verifier must reject (SIGNATURE_ALGO 0, reserved signer bits)', async () => {
    const chain = await sharedSimChain('Milan');
    const key = publicKeyOf(chain.vcek.der);
    const reportData = new Uint8Array(64).fill(7);
    const measurement = new Uint8Array(48).fill(9);
    const r1 = signReport({ reportData, measurement, guestSvn: 3, vmpl: 2 }, chain);
    const p1 = parseReport(r1);
    assert.deepEqual([p1.reportData, p1.measurement, p1.guestSvn, p1.vmpl], [reportData, measurement, 3, 2]);
    assert.ok(verifyReportSignature(r1, key));

    const r2 = signReport({ signatureAlgo: 0 }, chain);
    assert.equal(parseReport(r2).signatureAlgo, 0);
    assert.ok(verifyReportSignature(r2, key));

    // Bits parseReport refuses are still encoded and signed as given.
    const r3 = signReport({ signerInfo: 1 << 5, policy: 0n }, chain);
    assert.ok(verifyReportSignature(r3, key));
    assert.throws(
      () => parseReport(r3),
      (e: unknown) => (e as { code: string }).code === ErrorCode.Malformed,
    );
  });

  it('version 2 drops CPUID; a VLEK signer info selects the VLEK key without opts.signer', async () => {
    const chain = await sharedSimChain('Milan');
    const v2 = parseReport(signReport({ version: 2 }, chain));
    assert.equal(v2.version, 2);
    assert.equal(v2.cpuid, undefined);
    const vlek = signReport({ signerInfo: SigningKey.VLEK << 2 }, chain);
    assert.ok(verifyReportSignature(vlek, publicKeyOf(chain.vlek.der)));
    assert.ok(parseReport(vlek).chipId.every((b) => b === 0));
  });

  it('a given signature in the fields is ignored: the report is re-signed', async () => {
    const chain = await sharedSimChain('Milan');
    const bogus = { r: new Uint8Array(72).fill(1), s: new Uint8Array(72).fill(2) };
    const report = signReport({ signature: bogus }, chain);
    assert.ok(verifyReportSignature(report, publicKeyOf(chain.vcek.der)));
  });

  it('opts.key signs with another key: the chain VCEK then rejects it', async () => {
    const chain = await sharedSimChain('Milan');
    const other = await promisify(generateKeyPair)('ec', { namedCurve: 'P-384' });
    const report = signReport({}, chain, { key: other.privateKey });
    assert.ok(verifyReportSignature(report, other.publicKey));
    assert.equal(verifyReportSignature(report, publicKeyOf(chain.vcek.der)), false);
  });

  it('opts.zeroSignature leaves the signature area zero (MASK_CHIP_KEY behaviour)', async () => {
    const chain = await sharedSimChain('Milan');
    const report = signReport({}, chain, { zeroSignature: true });
    assert.ok(report.subarray(0x2a0).every((b) => b === 0));
    assert.equal(verifyReportSignature(report, publicKeyOf(chain.vcek.der)), false);
  });

  it('rejects byte fields of the wrong size and a non-ECDSA key', async () => {
    const chain = await sharedSimChain('Milan');
    assert.throws(
      () => signReport({ reportData: new Uint8Array(63) }, chain),
      invalid('sim.snp.report_fields'),
    );
    assert.throws(() => signReport({}, chain, { key: chain.ark.privateKey }), invalid('sim.snp.key'));
  });
});

describe('signReport: property', () => {
  it('any valid field choice round-trips through parseReport and verifies', async () => {
    const chain = await sharedSimChain('Milan');
    const key = publicKeyOf(chain.vcek.der);
    const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });
    fc.assert(
      fc.property(
        fc.record({
          version: fc.constantFrom(2, 3, 4, 5),
          guestSvn: fc.nat({ max: 0xffffffff }),
          vmpl: fc.integer({ min: 0, max: 3 }),
          reportData: bytes(64),
          measurement: bytes(48),
          hostData: bytes(32),
          familyId: bytes(16),
          idKeyDigest: bytes(48),
          policyFlags: fc.record({ smt: fc.boolean(), debug: fc.boolean(), migrateMa: fc.boolean() }),
          abiMinor: fc.integer({ min: 0, max: 255 }),
        }),
        ({ policyFlags, abiMinor, ...f }) => {
          const policy = encodeGuestPolicy({ ...policyFlags, abiMinor });
          const report = signReport({ ...f, policy }, chain);
          const r = parseReport(report);
          assert.deepEqual(
            [
              r.version,
              r.guestSvn,
              r.vmpl,
              r.reportData,
              r.measurement,
              r.hostData,
              r.familyId,
              r.idKeyDigest,
            ],
            [
              f.version,
              f.guestSvn,
              f.vmpl,
              f.reportData,
              f.measurement,
              f.hostData,
              f.familyId,
              f.idKeyDigest,
            ],
          );
          assert.equal(r.policy, policy);
          assert.equal(r.cpuid === undefined, f.version < 3);
          assert.ok(verifyReportSignature(report, key));
        },
      ),
      { numRuns: 200 },
    );
  });
});
