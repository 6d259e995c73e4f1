import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ErrorCode } from '../../../src/errors.js';
import { encodeReport, parseReport, type SnpProduct, SnpProducts } from '../../../src/formats/snp/index.js';
import {
  appraiseSnp,
  describeSnpPolicy,
  InvalidPolicy,
  parseSnpPolicy,
  SNP_FAILURE_CODES,
  SNP_POLICY_KEYS,
  SNP_RULES,
  type SnpPolicy,
} from '../../../src/policy/snp/index.js';
import { assertError, caughtError } from '../../helpers/assert-error.js';
import { ROOT } from '../../helpers/paths.js';
import { needsVectors, readVector } from '../../helpers/vectors.js';

const h = (bytes: number, fill = 'ab') => fill.repeat(bytes);

/** A document using every key, as a policy file would. */
const full = {
  minimumTcb: {
    Milan: { bootloader: 4, tee: 0, snp: 24, microcode: 219 },
    Turin: { fmc: 1, bootloader: 1, tee: 1, snp: 4, microcode: 81 },
    Genoa: 'any',
  },
  minimumLaunchTcb: 'any',
  permitProvisionalFirmware: false,
  minimumBuild: 29,
  minimumVersion: { major: 1, minor: 55 },
  minimumGuestSvn: 2,
  allowDebug: false,
  allowMigrateMa: false,
  allowSmt: true,
  allowCxl: 'any',
  requireSingleSocket: false,
  requireMemAes256Xts: false,
  requireRaplDis: false,
  requireCiphertextHiding: false,
  requirePageSwapDisable: false,
  minimumAbi: { major: 0, minor: 31 },
  measurements: [`0x${h(48, 'AB')}`, h(48, 'cd')],
  hostData: h(32),
  reportData: h(64),
  familyId: h(16),
  imageId: h(16),
  reportId: h(32),
  reportIdMa: h(32, 'ff'),
  chipId: h(8),
  trustedIdKeyDigests: [h(48)],
  trustedAuthorKeyDigests: [h(48, 'cd')],
  requireAuthorKey: false,
  requireIdBlock: true,
  vmpl: 0,
  allowSmtEnabled: true,
  allowTsme: true,
  allowSevTio: false,
  requireEcc: true,
  requireRaplDisabled: false,
  requireCiphertextHidingEnabled: false,
  requireAliasCheckComplete: true,
  minimumLaunchMitVector: '0x3F',
  minimumCurrentMitVector: 11,
};

/** parseSnpPolicy refuses `json` with InvalidPolicy `policy.invalid` naming `path`. */
function invalidAt(json: unknown, path: string) {
  const e = caughtError(() => parseSnpPolicy(json));
  assertError(e, ErrorCode.InvalidArgument, 'policy.invalid');
  assert.ok(e instanceof InvalidPolicy, `expected InvalidPolicy, got ${String(e)}`);
  assert.equal(e.path, path);
}

describe('parseSnpPolicy', () => {
  it('accepts a document with every key and normalizes hex', () => {
    const p = parseSnpPolicy(JSON.parse(JSON.stringify(full)));
    assert.deepEqual(Object.keys(p).sort(), [...SNP_POLICY_KEYS].sort());
    assert.deepEqual(p.measurements, [h(48, 'ab'), h(48, 'cd')]);
    assert.equal(p.minimumLaunchMitVector, '0x3f');
    assert.equal(p.minimumCurrentMitVector, 11);
    assert.deepEqual(p.minimumTcb, full.minimumTcb);
  });

  it('is idempotent and survives a JSON round trip', () => {
    const p = parseSnpPolicy(full);
    assert.deepEqual(parseSnpPolicy(JSON.parse(JSON.stringify(p))), p);
    assert.deepEqual(parseSnpPolicy({}), {});
  });

  it('rejects documents that are not objects', () => {
    for (const v of [null, [], 'policy', 3, true, undefined]) invalidAt(v, '$');
  });

  it('rejects unknown keys, also nested and misspelt', () => {
    invalidAt({ alowDebug: false }, '$.alowDebug');
    invalidAt({ minimumTcb: { Venice: 'any' } }, '$.minimumTcb.Venice');
    invalidAt(
      { minimumTcb: { Milan: { fmc: 1, bootloader: 1, tee: 1, snp: 1, microcode: 1 } } },
      '$.minimumTcb.Milan.fmc',
    );
    invalidAt({ minimumVersion: { major: 1, minor: 2, build: 3 } }, '$.minimumVersion.build');
  });

  it('validates hex: digits and exact length', () => {
    invalidAt({ measurements: [h(47)] }, '$.measurements[0]');
    invalidAt({ measurements: [h(48), `${h(47)}zz`] }, '$.measurements[1]');
    invalidAt({ hostData: h(33) }, '$.hostData');
    invalidAt({ reportData: h(32) }, '$.reportData');
    invalidAt({ familyId: 1 }, '$.familyId');
    invalidAt({ chipId: h(16) }, '$.chipId');
    invalidAt({ trustedIdKeyDigests: [h(32)] }, '$.trustedIdKeyDigests[0]');
    invalidAt({ reportId: `${h(31)}a` }, '$.reportId');
  });

  it('refuses an all-zero chipId (it would match every masked or VLEK report), 64 or 8 bytes', () => {
    for (const zero of [h(64, '00'), h(8, '00'), `0x${h(64, '00')}`, `0x${h(8, '00')}`]) {
      invalidAt({ chipId: zero }, '$.chipId');
    }
    // A single non-zero byte names a chip.
    assert.equal(parseSnpPolicy({ chipId: `${h(7, '00')}01` }).chipId, `${h(7, '00')}01`);
    assert.equal(parseSnpPolicy({ chipId: `01${h(63, '00')}` }).chipId, `01${h(63, '00')}`);
  });

  it('validates numbers and ranges', () => {
    invalidAt({ vmpl: 4 }, '$.vmpl');
    invalidAt({ vmpl: -1 }, '$.vmpl');
    invalidAt({ vmpl: '0' }, '$.vmpl');
    invalidAt({ minimumBuild: 256 }, '$.minimumBuild');
    invalidAt({ minimumGuestSvn: 2 ** 32 }, '$.minimumGuestSvn');
    invalidAt({ minimumGuestSvn: 1.5 }, '$.minimumGuestSvn');
    invalidAt({ minimumAbi: { major: 0 } }, '$.minimumAbi');
    invalidAt({ minimumAbi: { major: 0, minor: 300 } }, '$.minimumAbi.minor');
    invalidAt(
      { minimumTcb: { Turin: { fmc: 256, bootloader: 1, tee: 1, snp: 1, microcode: 1 } } },
      '$.minimumTcb.Turin.fmc',
    );
    invalidAt({ minimumLaunchMitVector: -1 }, '$.minimumLaunchMitVector');
    invalidAt({ minimumLaunchMitVector: 2 ** 53 }, '$.minimumLaunchMitVector');
    invalidAt({ minimumLaunchMitVector: `0x${'f'.repeat(17)}` }, '$.minimumLaunchMitVector');
    invalidAt({ minimumCurrentMitVector: '3f' }, '$.minimumCurrentMitVector');
  });

  it('validates booleans and the any keyword', () => {
    invalidAt({ allowDebug: 'true' }, '$.allowDebug');
    invalidAt({ allowDebug: 'ANY' }, '$.allowDebug');
    invalidAt({ allowDebug: null }, '$.allowDebug');
    assert.deepEqual(parseSnpPolicy({ allowDebug: 'any', vmpl: 'any', measurements: 'any' }), {
      allowDebug: 'any',
      vmpl: 'any',
      measurements: 'any',
    });
  });

  it('requires every TCB component of the product layout, and at least one product', () => {
    invalidAt({ minimumTcb: { Milan: { bootloader: 1, tee: 1, snp: 1 } } }, '$.minimumTcb.Milan');
    invalidAt(
      { minimumTcb: { Turin: { bootloader: 1, tee: 1, snp: 1, microcode: 1 } } },
      '$.minimumTcb.Turin',
    );
    invalidAt({ minimumTcb: {} }, '$.minimumTcb');
  });

  it('rejects empty allow-lists', () => {
    invalidAt({ measurements: [] }, '$.measurements');
    invalidAt({ trustedAuthorKeyDigests: [] }, '$.trustedAuthorKeyDigests');
  });

  it('rejects contradictory or unsatisfiable key rules', () => {
    invalidAt({ requireAuthorKey: true }, '$.requireAuthorKey');
    invalidAt({ requireAuthorKey: true, trustedIdKeyDigests: [h(48)] }, '$.requireAuthorKey');
    invalidAt({ requireIdBlock: true }, '$.requireIdBlock');
    invalidAt({ requireIdBlock: false, trustedIdKeyDigests: [h(48)] }, '$.requireIdBlock');
    invalidAt({ requireIdBlock: 'any', trustedAuthorKeyDigests: [h(48)] }, '$.requireIdBlock');
  });

  it('treats an own property holding undefined (built in code) as unset', () => {
    assert.deepEqual(parseSnpPolicy({ allowDebug: undefined, vmpl: 1 }), { vmpl: 1 });
  });

  it('the key list, the rules and the validators agree', () => {
    const rules = SNP_RULES.map((r) => r.name);
    const inputs = SNP_POLICY_KEYS.filter((k) => !rules.includes(k as never));
    assert.deepEqual(inputs.sort(), ['trustedAuthorKeyDigests', 'trustedIdKeyDigests']);
    assert.equal(new Set(SNP_FAILURE_CODES).size, SNP_FAILURE_CODES.length);
  });
});

describe('parseSnpPolicy properties', () => {
  const onlyInvalidArgument = (v: unknown) => {
    try {
      parseSnpPolicy(v);
    } catch (e) {
      if (
        !(e instanceof InvalidPolicy) ||
        e.code !== ErrorCode.InvalidArgument ||
        e.reason !== 'policy.invalid'
      ) {
        throw e;
      }
    }
  };

  it('arbitrary JSON never throws anything but InvalidArgument policy.invalid', () => {
    fc.assert(fc.property(fc.jsonValue(), onlyInvalidArgument), { numRuns: 2000 });
  });

  it('arbitrary values (not only JSON) never throw anything else either', () => {
    fc.assert(fc.property(fc.anything({ withNullPrototype: true, withBigInt: true }), onlyInvalidArgument), {
      numRuns: 1000,
    });
  });

  // Near-valid documents reach the inner validators: known keys with random or plausible values.
  const plausible = fc.oneof(
    fc.jsonValue(),
    fc.constantFrom('any', true, false, 0, 3, 255, 256, -1, '0x3f', h(48), h(32), h(64), h(16), h(8)),
    fc.array(fc.constantFrom(h(48), h(47), 'zz', 1), { maxLength: 3 }),
    fc.record({ major: fc.integer({ min: -1, max: 300 }), minor: fc.integer({ min: -1, max: 300 }) }),
    fc.dictionary(
      fc.constantFrom(...SnpProducts, 'Venice'),
      fc.oneof(
        fc.constant('any'),
        fc.dictionary(
          fc.constantFrom('fmc', 'bootloader', 'tee', 'snp', 'microcode', 'x'),
          fc.integer({ min: -1, max: 256 }),
        ),
      ),
    ),
  );
  const nearValid = fc.dictionary(fc.constantFrom(...SNP_POLICY_KEYS), plausible);

  it('near-valid documents never throw anything but InvalidArgument policy.invalid', () => {
    fc.assert(fc.property(nearValid, onlyInvalidArgument), { numRuns: 3000 });
  });

  // Valid values for every key (combinations may still be rejected), and reports with random fields.
  const u8 = fc.integer({ min: 0, max: 255 });
  const anyOr = <T>(a: fc.Arbitrary<T>) => fc.oneof(fc.constant('any' as const), a);
  const flag = fc.constantFrom(true, false, 'any' as const);
  const hexOf = (n: number) =>
    fc.uint8Array({ minLength: n, maxLength: n }).map((b) => Buffer.from(b).toString('hex'));
  const legacyTcb = fc.record({ bootloader: u8, tee: u8, snp: u8, microcode: u8 });
  const turinTcb = fc.record({ fmc: u8, bootloader: u8, tee: u8, snp: u8, microcode: u8 });
  const tcbs = anyOr(
    fc
      .record(
        { Milan: anyOr(legacyTcb), Genoa: anyOr(legacyTcb), Turin: anyOr(turinTcb) },
        { requiredKeys: [] },
      )
      .filter((o) => Object.keys(o).length > 0),
  );
  const mm = fc.record({ major: u8, minor: u8 });
  const digests = anyOr(fc.array(hexOf(48), { minLength: 1, maxLength: 3 }));
  const validPolicy = fc.record(
    {
      minimumTcb: tcbs,
      minimumLaunchTcb: tcbs,
      permitProvisionalFirmware: flag,
      minimumBuild: anyOr(u8),
      minimumVersion: anyOr(mm),
      minimumGuestSvn: anyOr(fc.integer({ min: 0, max: 0xffff_ffff })),
      allowDebug: flag,
      allowMigrateMa: flag,
      allowSmt: flag,
      allowCxl: flag,
      requireSingleSocket: flag,
      requireMemAes256Xts: flag,
      requireRaplDis: flag,
      requireCiphertextHiding: flag,
      requirePageSwapDisable: flag,
      minimumAbi: anyOr(mm),
      measurements: digests,
      hostData: anyOr(hexOf(32)),
      reportData: anyOr(hexOf(64)),
      familyId: anyOr(hexOf(16)),
      imageId: anyOr(hexOf(16)),
      reportId: anyOr(hexOf(32)),
      reportIdMa: anyOr(hexOf(32)),
      chipId: anyOr(fc.oneof(hexOf(64), hexOf(8)).filter((x) => /[^0]/.test(x))),
      trustedIdKeyDigests: digests,
      trustedAuthorKeyDigests: digests,
      requireAuthorKey: flag,
      requireIdBlock: flag,
      vmpl: anyOr(fc.integer({ min: 0, max: 3 })),
      allowSmtEnabled: flag,
      allowTsme: flag,
      allowSevTio: flag,
      requireEcc: flag,
      requireRaplDisabled: flag,
      requireCiphertextHidingEnabled: flag,
      requireAliasCheckComplete: flag,
      minimumLaunchMitVector: anyOr(
        fc.oneof(
          fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map((v) => `0x${v.toString(16)}`),
          fc.integer({ min: 0, max: 0x3f }),
        ),
      ),
      minimumCurrentMitVector: anyOr(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })),
    },
    { requiredKeys: [] },
  );

  const u64 = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
  const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });
  const zero = (n: number) => new Uint8Array(n);
  const report = fc
    .record({
      version: fc.constantFrom(2, 3, 5),
      guestSvn: fc.integer({ min: 0, max: 0xffff_ffff }),
      policy: fc.bigInt({ min: 0n, max: (1n << 26n) - 1n }).map((p) => p | (1n << 17n)),
      vmpl: fc.integer({ min: 0, max: 3 }),
      currentTcb: u64,
      committedTcb: u64,
      reportedTcb: u64,
      launchTcb: u64,
      platformInfo: fc.bigInt({ min: 0n, max: 0xffn }),
      signerInfo: fc.constantFrom(0, 1, 4, 5),
      measurement: bytes(48),
      idKeyDigest: bytes(48),
      authorKeyDigest: bytes(48),
      chipId: bytes(64),
      current: fc.tuple(u8, u8, u8),
      committed: fc.tuple(u8, u8, u8),
      mit: fc.tuple(u64, u64),
    })
    .map((r) =>
      parseReport(
        encodeReport({
          version: r.version,
          guestSvn: r.guestSvn,
          policy: r.policy,
          familyId: zero(16),
          imageId: zero(16),
          vmpl: r.vmpl,
          signatureAlgo: 1,
          currentTcb: r.currentTcb,
          platformInfo: r.platformInfo,
          signerInfo: r.signerInfo,
          reportData: zero(64),
          measurement: r.measurement,
          hostData: zero(32),
          idKeyDigest: r.idKeyDigest,
          authorKeyDigest: r.authorKeyDigest,
          reportId: zero(32),
          reportIdMa: new Uint8Array(32).fill(0xff),
          reportedTcb: r.reportedTcb,
          ...(r.version >= 3 ? { cpuid: { family: 0x19, model: 1, stepping: 1 } } : {}),
          chipId: r.chipId,
          committedTcb: r.committedTcb,
          currentMajor: r.current[0],
          currentMinor: r.current[1],
          currentBuild: r.current[2],
          committedMajor: r.committed[0],
          committedMinor: r.committed[1],
          committedBuild: r.committed[2],
          launchTcb: r.launchTcb,
          ...(r.version >= 5 ? { launchMitVector: r.mit[0], currentMitVector: r.mit[1] } : {}),
        }),
      ),
    );

  it('valid documents parse (unless a key combination is contradictory) and parse idempotently', () => {
    let parsed = 0;
    fc.assert(
      fc.property(validPolicy, (doc) => {
        let p: SnpPolicy;
        try {
          p = parseSnpPolicy(doc);
        } catch (e) {
          assert.ok(e instanceof InvalidPolicy);
          assert.ok(['$.requireAuthorKey', '$.requireIdBlock'].includes(e.path), e.path);
          return;
        }
        parsed++;
        assert.deepEqual(parseSnpPolicy(JSON.parse(JSON.stringify(p))), p);
      }),
      { numRuns: 1000 },
    );
    assert.ok(parsed > 300, `only ${parsed} of 1000 generated policies parsed`);
  });

  it('appraisal of any report under any valid policy: no throw, full partition, failures only from checked rules', () => {
    const all = SNP_RULES.map((r) => r.name).sort();
    const owner = new Map(SNP_RULES.flatMap((r) => r.codes.map((c) => [c as string, r.name] as const)));
    fc.assert(
      fc.property(validPolicy, report, fc.constantFrom<SnpProduct>(...SnpProducts), (doc, r, product) => {
        let policy: SnpPolicy;
        try {
          policy = parseSnpPolicy(doc);
        } catch {
          return;
        }
        const a = appraiseSnp(r, product, policy);
        assert.deepEqual([...a.checked, ...a.unchecked].sort(), all);
        for (const f of a.failures) {
          const rule = owner.get(f.code);
          assert.ok(rule, `undocumented code ${f.code}`);
          assert.ok(a.checked.includes(rule), `${f.code} reported by unchecked rule ${rule}`);
        }
        // describeSnpPolicy agrees with appraisal, except that a product listed as 'any' in a TCB minimum
        // leaves that rule unchecked for reports of that product only.
        const tcbAny = (k: 'minimumTcb' | 'minimumLaunchTcb') =>
          typeof policy[k] === 'object' && (policy[k] as Record<string, unknown>)[product] === 'any';
        const enforced = describeSnpPolicy(policy)
          .filter(
            (s) =>
              s.enforced &&
              !(s.rule === 'minimumTcb' && tcbAny('minimumTcb')) &&
              !(s.rule === 'minimumLaunchTcb' && tcbAny('minimumLaunchTcb')),
          )
          .map((s) => s.rule);
        assert.deepEqual(enforced, a.checked);
      }),
      { numRuns: 1500 },
    );
  });

  it('every failure code belongs to exactly one rule', () => {
    const owned = SNP_RULES.flatMap((r) => r.codes);
    assert.deepEqual([...owned].sort(), [...SNP_FAILURE_CODES].sort());
  });
});

describe('docs/policy.md', () => {
  const doc = readFileSync(join(ROOT, 'docs', 'policy.md'), 'utf8');

  it('documents every failure code and every policy key', () => {
    for (const code of SNP_FAILURE_CODES) assert.ok(doc.includes(`\`${code}\``), code);
    for (const key of SNP_POLICY_KEYS) assert.ok(doc.includes(`\`${key}\``), key);
  });

  it(
    'its example parses, accepts the real Milan and Genoa reports and rejects the Turin one',
    needsVectors,
    () => {
      const example = /```json\n([\s\S]*?)```/.exec(doc)![1]!;
      const policy = parseSnpPolicy(JSON.parse(example));
      const load = (c: string) => parseReport(readVector('snp', c, 'report.bin'));
      assert.deepEqual(appraiseSnp(load('microsoft-tav-milan'), 'Milan', policy).failures, []);
      assert.deepEqual(appraiseSnp(load('microsoft-tav-genoa'), 'Genoa', policy).failures, []);
      const turin = appraiseSnp(load('microsoft-tav-turin'), 'Turin', policy);
      assert.deepEqual(
        turin.failures.map((f) => f.code),
        ['snp.measurement', 'snp.id_block'],
      );
    },
  );
});
