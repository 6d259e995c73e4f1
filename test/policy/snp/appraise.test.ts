import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCode, InvalidArgument, PolicyRejected } from '../../../src/errors.js';
import { encodeTcb, parseReport, type SnpProduct, type SnpReport } from '../../../src/formats/snp/index.js';
import {
  appraiseSnp,
  assertSnpPolicy,
  describeSnpPolicy,
  SNP_FAILURE_CODES,
  SNP_RULES,
  type SnpAppraisal,
  type SnpPolicy,
  type SnpRuleName,
} from '../../../src/policy/snp/index.js';
import { toHex } from '../../../src/util/bytes.js';
import { needsVectors, readVector, vectorCases } from '../../helpers/vectors.js';

/**
 * Appraisal of real SEV-SNP reports (read in place from the shared vectors and parsed) and of parsed reports
 * with fields overridden (spread + override): appraisal sees only the parsed struct, so no signing is
 * needed at this layer. Every rule has a case that rejects and a case that passes.
 */

const cache = new Map<string, SnpReport>();
function load(name: string): SnpReport {
  let r = cache.get(name);
  if (!r) {
    r = parseReport(readVector('snp', name, 'report.bin'));
    cache.set(name, r);
  }
  return r;
}

/** Milan v3 VCEK: POLICY 0x3001f (SMT, ABI 0.31), PLATFORM_INFO 0x25, committed == current, VMPL 0. */
const milan = () => load('microsoft-tav-milan');
/** Turin v5: TCB fmc=1 bl=1 tee=1 snp=4 ucode=81, mitigation vectors 0x3f, 8-byte CHIP_ID. */
const turin = () => load('microsoft-tav-turin');

const codes = (a: SnpAppraisal) => a.failures.map((f) => f.code);
const bit = (n: number) => 1n << BigInt(n);
const flipped = (b: Uint8Array): Uint8Array => {
  const c = Uint8Array.from(b);
  c[0]! ^= 0x01;
  return c;
};
const digest = (fill: number) => new Uint8Array(48).fill(fill);

function passes(report: SnpReport, product: SnpProduct, policy: SnpPolicy, rule: SnpRuleName): SnpAppraisal {
  const a = appraiseSnp(report, product, policy);
  assert.deepEqual(a.failures, [], `expected no failures, got ${JSON.stringify(a.failures)}`);
  assert.ok(a.checked.includes(rule), `${rule} should have been checked`);
  return a;
}

function rejects(report: SnpReport, product: SnpProduct, policy: SnpPolicy, code: string): SnpAppraisal {
  const a = appraiseSnp(report, product, policy);
  assert.deepEqual(codes(a), [code]);
  const f = a.failures[0]!;
  assert.equal(typeof f.expected, 'string');
  assert.equal(typeof f.actual, 'string');
  return a;
}

describe('SNP appraisal: real reports under the default policy', needsVectors, () => {
  // The outcome for every real case under `{}`; a new vector case must be added here.
  const expected: Record<string, string[]> = {
    'constellation-aws-milan-vlek-2023': ['snp.firmware.provisional'],
    'constellation-aws-milan-vlek-2024': ['snp.firmware.provisional'],
    'google-go-sev-guest-milan-v2': ['snp.policy.debug'],
    'microsoft-tav-genoa': [],
    'microsoft-tav-milan': [],
    'microsoft-tav-turin': [],
    'teekit-gcp-milan-sev-gcp': [],
    'trustee-milan': ['snp.firmware.provisional'],
    'virtee-sev-milan': [],
  };
  const products: Record<string, SnpProduct> = {
    'microsoft-tav-genoa': 'Genoa',
    'microsoft-tav-turin': 'Turin',
  };

  it('covers every vector case', () => {
    assert.deepEqual(vectorCases('snp'), Object.keys(expected).sort());
  });

  for (const [name, want] of Object.entries(expected)) {
    it(`${name}: ${want.length === 0 ? 'accepted' : want.join(', ')}`, () => {
      const a = appraiseSnp(load(name), products[name] ?? 'Milan', {});
      assert.deepEqual(codes(a), want);
    });
  }

  it('the default policy checks exactly debug, migration agent, CXL, provisional firmware and VMPL', () => {
    const a = appraiseSnp(milan(), 'Milan', {});
    assert.deepEqual(a.checked, [
      'allowDebug',
      'allowMigrateMa',
      'allowCxl',
      'permitProvisionalFirmware',
      'vmpl',
    ]);
    for (const r of [
      'measurements',
      'hostData',
      'reportData',
      'chipId',
      'minimumTcb',
      'allowSmt',
      'requireIdBlock',
    ]) {
      assert.ok(a.unchecked.includes(r as SnpRuleName), `${r} must be reported unchecked`);
    }
  });

  it('checked and unchecked partition the rules, whatever the policy', () => {
    const all = SNP_RULES.map((r) => r.name).sort();
    for (const policy of [{}, { measurements: [toHex(milan().measurement)], allowDebug: 'any' as const }]) {
      const a = appraiseSnp(milan(), 'Milan', policy);
      assert.deepEqual([...a.checked, ...a.unchecked].sort(), all);
      assert.equal(new Set([...a.checked, ...a.unchecked]).size, all.length);
    }
  });
});

describe('SNP appraisal: provisional firmware (COMMITTED vs CURRENT)', needsVectors, () => {
  it('trustee-milan (COMMITTED_TCB microcode 115 < CURRENT_TCB 206) is rejected by default', () => {
    const a = rejects(load('trustee-milan'), 'Milan', {}, 'snp.firmware.provisional');
    assert.match(a.failures[0]!.actual!, /microcode=115/);
  });

  it('trustee-milan is accepted with permitProvisionalFirmware', () => {
    passes(load('trustee-milan'), 'Milan', { permitProvisionalFirmware: true }, 'permitProvisionalFirmware');
  });

  // The AWS reports have COMMITTED_TCB != CURRENT_TCB too (microcode); the rule applies uniformly.
  for (const name of ['constellation-aws-milan-vlek-2023', 'constellation-aws-milan-vlek-2024']) {
    it(`${name} (committed microcode < current) is rejected by default and accepted when permitted`, () => {
      const r = load(name);
      assert.notEqual(r.committedTcb, r.currentTcb);
      rejects(r, 'Milan', {}, 'snp.firmware.provisional');
      rejects(r, 'Milan', { permitProvisionalFirmware: false }, 'snp.firmware.provisional');
      passes(r, 'Milan', { permitProvisionalFirmware: true }, 'permitProvisionalFirmware');
    });
  }

  it("'any' disables the rule and reports it unchecked", () => {
    const a = appraiseSnp(load('trustee-milan'), 'Milan', { permitProvisionalFirmware: 'any' });
    assert.deepEqual(a.failures, []);
    assert.ok(a.unchecked.includes('permitProvisionalFirmware'));
  });

  it('even when permitted, COMMITTED_TCB above CURRENT_TCB in any component is rejected', () => {
    const base = milan();
    const r = { ...base, committedTcb: base.currentTcb + (1n << 48n) }; // SNP SPL (byte 6) + 1
    rejects(r, 'Milan', { permitProvisionalFirmware: true }, 'snp.firmware.provisional');
    // ... and when committed is higher in one component but lower in another (not ordered): rejected.
    const mixed = { ...base, committedTcb: base.currentTcb + (1n << 48n) - (1n << 56n) };
    rejects(mixed, 'Milan', { permitProvisionalFirmware: true }, 'snp.firmware.provisional');
  });

  // One rule for reserved TCB bytes (they have no order): a difference fails, permitted or not, whichever
  // way it goes and whether the components are equal, below or above. Before, with provisional firmware
  // permitted, reserved bytes were ignored unless a component was also above.
  it('reserved TCB bytes that differ between COMMITTED and CURRENT fail in both directions, permitted or not', () => {
    const cases: [SnpReport, SnpProduct, bigint][] = [
      [milan(), 'Milan', 1n << 16n], // byte 2 (spl_4)
      [milan(), 'Milan', 1n << 40n], // byte 5 (spl_7)
      [turin(), 'Turin', 1n << 32n], // byte 4
      [turin(), 'Turin', 1n << 48n], // byte 6
    ];
    for (const [base, product, bitOf] of cases) {
      assert.equal(base.currentTcb & bitOf, 0n);
      const higher = base.currentTcb | bitOf;
      for (const permit of [false, true, undefined]) {
        const policy: SnpPolicy = permit === undefined ? {} : { permitProvisionalFirmware: permit };
        // COMMITTED's reserved byte above CURRENT's, then below it.
        for (const r of [
          { ...base, committedTcb: higher },
          { ...base, currentTcb: higher, committedTcb: base.currentTcb },
        ]) {
          const a = rejects(r, product, policy, 'snp.firmware.provisional');
          assert.match(a.failures[0]!.message, /reserved bytes/);
        }
      }
    }
    // ... also when a component is legitimately lower (permitted): the reserved bytes alone are named.
    const base = milan();
    const lower = base.currentTcb - (1n << 56n); // microcode - 1
    passes(
      { ...base, committedTcb: lower },
      'Milan',
      { permitProvisionalFirmware: true },
      'permitProvisionalFirmware',
    );
    for (const committedTcb of [lower | (1n << 16n), lower]) {
      const r = {
        ...base,
        committedTcb,
        currentTcb: committedTcb === lower ? base.currentTcb | (1n << 16n) : base.currentTcb,
      };
      const a = rejects(r, 'Milan', { permitProvisionalFirmware: true }, 'snp.firmware.provisional');
      assert.match(a.failures[0]!.message, /in: reserved bytes$/);
    }
  });

  it('a committed firmware version that differs is rejected unless permitted (and never when above)', () => {
    const base = milan(); // 1.55.29
    const older = { ...base, committedBuild: 28 };
    rejects(older, 'Milan', {}, 'snp.firmware.provisional_version');
    passes(older, 'Milan', { permitProvisionalFirmware: true }, 'permitProvisionalFirmware');
    const newer = { ...base, committedBuild: 30 };
    rejects(newer, 'Milan', { permitProvisionalFirmware: true }, 'snp.firmware.provisional_version');
    // Versions are ordered major, minor, build: committed 1.54.99 <= current 1.55.29.
    const lowerMinor = { ...base, committedMinor: 54, committedBuild: 99 };
    passes(lowerMinor, 'Milan', { permitProvisionalFirmware: true }, 'permitProvisionalFirmware');
    rejects(lowerMinor, 'Milan', {}, 'snp.firmware.provisional_version');
  });

  it('TCB and version mismatches are reported together', () => {
    const base = milan();
    const r = { ...base, committedTcb: base.currentTcb - (1n << 56n), committedBuild: 1 };
    assert.deepEqual(codes(appraiseSnp(r, 'Milan', {})), [
      'snp.firmware.provisional',
      'snp.firmware.provisional_version',
    ]);
  });
});

describe('SNP appraisal: minimum TCB (component-wise, per product)', needsVectors, () => {
  const milanMin = { bootloader: 4, tee: 0, snp: 24, microcode: 219 }; // microsoft-tav-milan's REPORTED_TCB

  it('passes at the exact minimum and rejects one component above it', () => {
    passes(milan(), 'Milan', { minimumTcb: { Milan: milanMin } }, 'minimumTcb');
    const a = rejects(
      milan(),
      'Milan',
      { minimumTcb: { Milan: { ...milanMin, snp: 25 } } },
      'snp.tcb.minimum',
    );
    assert.match(a.failures[0]!.message, /snp/);
  });

  it('compares components, not the raw u64: a high microcode does not hide a low SNP SPL', () => {
    const min = { bootloader: 0, tee: 0, snp: 25, microcode: 0 };
    // As raw u64 the minimum (0x0019...) is far below the report's 0xdb18...: a u64 compare would pass.
    assert.ok(encodeTcb(min, 'Milan') < milan().reportedTcb);
    rejects(milan(), 'Milan', { minimumTcb: { Milan: min } }, 'snp.tcb.minimum');
  });

  it('checks REPORTED_TCB (the signing key TCB), not CURRENT_TCB', () => {
    // trustee-milan: REPORTED microcode 115, CURRENT microcode 206.
    const r = load('trustee-milan');
    const policy = {
      permitProvisionalFirmware: true,
      minimumTcb: { Milan: { bootloader: 3, tee: 0, snp: 8 } },
    };
    passes(
      r,
      'Milan',
      { ...policy, minimumTcb: { Milan: { ...policy.minimumTcb.Milan, microcode: 115 } } },
      'minimumTcb',
    );
    rejects(
      r,
      'Milan',
      { ...policy, minimumTcb: { Milan: { ...policy.minimumTcb.Milan, microcode: 200 } } },
      'snp.tcb.minimum',
    );
  });

  it('Turin: decodes the Turin layout and compares fmc (real Turin report)', () => {
    const t = turin();
    const exact = { fmc: 1, bootloader: 1, tee: 1, snp: 4, microcode: 81 };
    passes(t, 'Turin', { minimumTcb: { Turin: exact } }, 'minimumTcb');
    const a = rejects(t, 'Turin', { minimumTcb: { Turin: { ...exact, fmc: 2 } } }, 'snp.tcb.minimum');
    assert.match(a.failures[0]!.message, /fmc/);
    assert.match(a.failures[0]!.actual!, /fmc=1 bootloader=1 tee=1 snp=4 microcode=81/);
    // SNP SPL 5 > 4 fails although the minimum's raw u64 is below the report's.
    const snp5 = { fmc: 0, bootloader: 0, tee: 0, snp: 5, microcode: 0 };
    assert.ok(encodeTcb(snp5, 'Turin') < t.reportedTcb);
    rejects(t, 'Turin', { minimumTcb: { Turin: snp5 } }, 'snp.tcb.minimum');
  });

  it('Turin: the same bytes read with the Milan layout would give other components', () => {
    // Byte 6 (Milan SNP) is 0 in the Turin report; byte 3 (Turin SNP) is 4. A Turin minimum snp=4 passes.
    passes(
      turin(),
      'Turin',
      { minimumTcb: { Turin: { fmc: 0, bootloader: 0, tee: 0, snp: 4, microcode: 0 } } },
      'minimumTcb',
    );
  });

  it('a report from a product the minimum does not list is rejected; listing it as any accepts', () => {
    const a = rejects(turin(), 'Turin', { minimumTcb: { Milan: milanMin } }, 'snp.tcb.minimum');
    assert.match(a.failures[0]!.expected!, /Turin/);
    const b = appraiseSnp(turin(), 'Turin', { minimumTcb: { Milan: milanMin, Turin: 'any' } });
    assert.deepEqual(b.failures, []);
    assert.ok(b.unchecked.includes('minimumTcb'));
  });

  it('minimumLaunchTcb checks LAUNCH_TCB', () => {
    const base = milan();
    passes(base, 'Milan', { minimumLaunchTcb: { Milan: milanMin } }, 'minimumLaunchTcb');
    const older = { ...base, launchTcb: encodeTcb({ ...milanMin, microcode: 200 }, 'Milan') };
    rejects(older, 'Milan', { minimumLaunchTcb: { Milan: milanMin } }, 'snp.tcb.launch_minimum');
    // REPORTED_TCB is unchanged, so minimumTcb still passes on the same report.
    passes(older, 'Milan', { minimumTcb: { Milan: milanMin } }, 'minimumTcb');
  });
});

describe('SNP appraisal: every rule rejects and passes', needsVectors, () => {
  it('minimumGuestSvn', () => {
    passes(milan(), 'Milan', { minimumGuestSvn: 2 }, 'minimumGuestSvn');
    rejects(milan(), 'Milan', { minimumGuestSvn: 3 }, 'snp.guest_svn');
  });

  it('minimumAbi (major before minor)', () => {
    passes(milan(), 'Milan', { minimumAbi: { major: 0, minor: 31 } }, 'minimumAbi');
    rejects(milan(), 'Milan', { minimumAbi: { major: 0, minor: 32 } }, 'snp.policy.abi');
    rejects(milan(), 'Milan', { minimumAbi: { major: 1, minor: 0 } }, 'snp.policy.abi');
    const abi10 = { ...milan(), policy: (milan().policy & ~0xffffn) | 0x0100n };
    passes(abi10, 'Milan', { minimumAbi: { major: 0, minor: 31 } }, 'minimumAbi');
  });

  const guestMaximums: [SnpRuleName, number, string][] = [
    ['allowDebug', 19, 'snp.policy.debug'],
    ['allowMigrateMa', 18, 'snp.policy.migrate_ma'],
    ['allowCxl', 21, 'snp.policy.cxl'],
  ];
  for (const [rule, n, code] of guestMaximums) {
    it(`${rule}: forbidden by default, allowed when true, unchecked when 'any'`, () => {
      const base = milan();
      const set = { ...base, policy: base.policy | bit(n) };
      passes(base, 'Milan', {}, rule);
      rejects(set, 'Milan', {}, code);
      rejects(set, 'Milan', { [rule]: false }, code);
      assert.deepEqual(appraiseSnp(set, 'Milan', { [rule]: true }).failures, []);
      const a = appraiseSnp(set, 'Milan', { [rule]: 'any' });
      assert.deepEqual(a.failures, []);
      assert.ok(a.unchecked.includes(rule));
    });
  }

  it('allowDebug: the real go-sev-guest report (POLICY.DEBUG=1) passes with allowDebug: any', () => {
    const r = load('google-go-sev-guest-milan-v2');
    const a = appraiseSnp(r, 'Milan', { allowDebug: 'any' });
    assert.deepEqual(a.failures, []);
    assert.ok(a.unchecked.includes('allowDebug'));
  });

  it('allowSmt: allowed by default, rejected when false', () => {
    const base = milan(); // POLICY.SMT = 1
    const a = appraiseSnp(base, 'Milan', {});
    assert.ok(a.unchecked.includes('allowSmt'));
    rejects(base, 'Milan', { allowSmt: false }, 'snp.policy.smt');
    passes({ ...base, policy: base.policy & ~bit(16) }, 'Milan', { allowSmt: false }, 'allowSmt');
  });

  const guestRequirements: [SnpRuleName, number, string][] = [
    ['requireSingleSocket', 20, 'snp.policy.single_socket'],
    ['requireMemAes256Xts', 22, 'snp.policy.mem_aes_256_xts'],
    ['requireRaplDis', 23, 'snp.policy.rapl_dis'],
    ['requireCiphertextHiding', 24, 'snp.policy.ciphertext_hiding'],
    ['requirePageSwapDisable', 25, 'snp.policy.page_swap_disable'],
  ];
  for (const [rule, n, code] of guestRequirements) {
    it(`${rule}: POLICY bit ${n} must be set when required`, () => {
      const base = milan();
      assert.equal(base.policy & bit(n), 0n);
      rejects(base, 'Milan', { [rule]: true }, code);
      passes({ ...base, policy: base.policy | bit(n) }, 'Milan', { [rule]: true }, rule);
      assert.ok(appraiseSnp(base, 'Milan', { [rule]: false }).unchecked.includes(rule));
    });
  }

  it('measurements: an allow-list', () => {
    const m = toHex(milan().measurement);
    passes(milan(), 'Milan', { measurements: [m] }, 'measurements');
    passes(milan(), 'Milan', { measurements: [toHex(digest(1)), m.toUpperCase()] }, 'measurements');
    rejects(milan(), 'Milan', { measurements: [toHex(digest(1)), toHex(digest(2))] }, 'snp.measurement');
    rejects(
      { ...milan(), measurement: flipped(milan().measurement) },
      'Milan',
      { measurements: [m] },
      'snp.measurement',
    );
  });

  const exact: [SnpRuleName & keyof SnpReport, string][] = [
    ['hostData', 'snp.host_data'],
    ['reportData', 'snp.report_data'],
    ['familyId', 'snp.family_id'],
    ['imageId', 'snp.image_id'],
    ['reportId', 'snp.report_id'],
    ['reportIdMa', 'snp.report_id_ma'],
    ['chipId', 'snp.chip_id'],
  ];
  for (const [field, code] of exact) {
    it(`${field}: exact match`, () => {
      const base = milan();
      const value = base[field] as Uint8Array;
      passes(base, 'Milan', { [field]: toHex(value) }, field);
      passes(base, 'Milan', { [field]: `0x${toHex(value).toUpperCase()}` }, field);
      const a = rejects({ ...base, [field]: flipped(value) }, 'Milan', { [field]: toHex(value) }, code);
      assert.equal(a.failures[0]!.expected, toHex(value));
      assert.equal(a.failures[0]!.actual, toHex(flipped(value)));
    });
  }

  it('chipId: a Turin 8-byte hwID matches CHIP_ID[0:8] with zeros after', () => {
    const t = turin();
    passes(t, 'Turin', { chipId: '59790fb1c39f35c1' }, 'chipId');
    rejects(t, 'Turin', { chipId: '59790fb1c39f35c2' }, 'snp.chip_id');
    const tail = Uint8Array.from(t.chipId);
    tail[63] = 1;
    rejects({ ...t, chipId: tail }, 'Turin', { chipId: '59790fb1c39f35c1' }, 'snp.chip_id');
    // A masked (all-zero) CHIP_ID never matches a pinned one.
    rejects({ ...t, chipId: new Uint8Array(64) }, 'Turin', { chipId: '59790fb1c39f35c1' }, 'snp.chip_id');
  });

  it('chipId: an all-zero value is refused as a policy, so it cannot match masked or VLEK reports', () => {
    // Every VLEK report (and every report whose host masked CHIP_ID) carries 64 zero bytes: a zero chipId
    // would have matched them all. The policy is refused wherever it is used, appraisal included.
    const vlek = load('constellation-aws-milan-vlek-2024');
    assert.ok(vlek.chipId.every((b) => b === 0));
    for (const chipId of ['00'.repeat(64), '00'.repeat(8)]) {
      assert.throws(
        () => appraiseSnp(vlek, 'Milan', { chipId, permitProvisionalFirmware: true }),
        (e: unknown) =>
          e instanceof InvalidArgument &&
          e.code === ErrorCode.InvalidArgument &&
          e.reason === 'policy.invalid',
      );
    }
  });

  it('minimumBuild (CURRENT_BUILD 29)', () => {
    passes(milan(), 'Milan', { minimumBuild: 29 }, 'minimumBuild');
    rejects(milan(), 'Milan', { minimumBuild: 30 }, 'snp.firmware.build');
  });

  it('minimumVersion (firmware API 1.55)', () => {
    passes(milan(), 'Milan', { minimumVersion: { major: 1, minor: 55 } }, 'minimumVersion');
    passes(milan(), 'Milan', { minimumVersion: { major: 0, minor: 99 } }, 'minimumVersion');
    rejects(milan(), 'Milan', { minimumVersion: { major: 1, minor: 56 } }, 'snp.firmware.version');
    rejects(milan(), 'Milan', { minimumVersion: { major: 2, minor: 0 } }, 'snp.firmware.version');
  });

  // microsoft-tav-milan PLATFORM_INFO = 0x25: SMT_EN, ECC_EN, ALIAS_CHECK_COMPLETE.
  const platformMaximums: [SnpRuleName, number, string][] = [
    ['allowSmtEnabled', 0, 'snp.platform.smt'],
    ['allowTsme', 1, 'snp.platform.tsme'],
    ['allowSevTio', 7, 'snp.platform.sev_tio'],
  ];
  for (const [rule, n, code] of platformMaximums) {
    it(`${rule}: PLATFORM_INFO bit ${n} allowed by default, rejected when false`, () => {
      const base = milan();
      const set = { ...base, platformInfo: base.platformInfo | bit(n) };
      const clear = { ...base, platformInfo: base.platformInfo & ~bit(n) };
      assert.deepEqual(appraiseSnp(set, 'Milan', {}).failures, []);
      rejects(set, 'Milan', { [rule]: false }, code);
      passes(clear, 'Milan', { [rule]: false }, rule);
    });
  }

  const platformRequirements: [SnpRuleName, number, string][] = [
    ['requireEcc', 2, 'snp.platform.ecc'],
    ['requireRaplDisabled', 3, 'snp.platform.rapl_disabled'],
    ['requireCiphertextHidingEnabled', 4, 'snp.platform.ciphertext_hiding'],
    ['requireAliasCheckComplete', 5, 'snp.platform.alias_check_complete'],
  ];
  for (const [rule, n, code] of platformRequirements) {
    it(`${rule}: PLATFORM_INFO bit ${n} must be set when required`, () => {
      const base = milan();
      rejects({ ...base, platformInfo: base.platformInfo & ~bit(n) }, 'Milan', { [rule]: true }, code);
      passes({ ...base, platformInfo: base.platformInfo | bit(n) }, 'Milan', { [rule]: true }, rule);
    });
  }

  it('requireAuthorKey: AUTHOR_KEY_EN must be 1 and the digest trusted', () => {
    const base = milan(); // AUTHOR_KEY_EN = 0
    const trusted = toHex(digest(0xaa));
    // requireAuthorKey implies requireIdBlock: with no trusted ID key, both report the missing author key.
    const none = appraiseSnp(base, 'Milan', { requireAuthorKey: true, trustedAuthorKeyDigests: [trusted] });
    assert.deepEqual(codes(none), ['snp.author_key', 'snp.id_block']);
    assert.equal(none.failures[0]!.actual, '0');
    // A trusted ID key satisfies the ID block but not the author-key requirement.
    const idOnly = {
      requireAuthorKey: true,
      trustedAuthorKeyDigests: [trusted],
      trustedIdKeyDigests: [toHex(base.idKeyDigest)],
    };
    rejects(base, 'Milan', idOnly, 'snp.author_key');
    const withAuthor = { ...base, signerInfo: base.signerInfo | 1, authorKeyDigest: digest(0xaa) };
    passes(
      withAuthor,
      'Milan',
      { requireAuthorKey: true, trustedAuthorKeyDigests: [trusted] },
      'requireAuthorKey',
    );
    const other = { ...withAuthor, authorKeyDigest: digest(0xbb) };
    const a = appraiseSnp(other, 'Milan', { requireAuthorKey: true, trustedAuthorKeyDigests: [trusted] });
    // The author key is untrusted and no ID key is trusted: both rules fail.
    assert.deepEqual(codes(a), ['snp.author_key', 'snp.id_block']);
  });

  it('requireIdBlock: the ID key or an enabled author key must be trusted (implied by the digest lists)', () => {
    const base = milan(); // real ID_KEY_DIGEST 0ad79ceb...
    const id = toHex(base.idKeyDigest);
    passes(base, 'Milan', { trustedIdKeyDigests: [id] }, 'requireIdBlock');
    passes(
      base,
      'Milan',
      { requireIdBlock: true, trustedIdKeyDigests: [toHex(digest(1)), id] },
      'requireIdBlock',
    );
    rejects(base, 'Milan', { trustedIdKeyDigests: [toHex(digest(1))] }, 'snp.id_block');
    rejects(
      { ...base, idKeyDigest: flipped(base.idKeyDigest) },
      'Milan',
      { requireIdBlock: true, trustedIdKeyDigests: [id] },
      'snp.id_block',
    );
    // Trusted through the author key instead.
    const author = toHex(digest(0xaa));
    const withAuthor = { ...base, signerInfo: base.signerInfo | 1, authorKeyDigest: digest(0xaa) };
    passes(withAuthor, 'Milan', { trustedAuthorKeyDigests: [author] }, 'requireIdBlock');
    // The same digest without AUTHOR_KEY_EN does not count.
    rejects(
      { ...base, authorKeyDigest: digest(0xaa) },
      'Milan',
      { trustedAuthorKeyDigests: [author] },
      'snp.id_block',
    );
  });

  it('minimumLaunchMitVector / minimumCurrentMitVector: (vector & min) == min on v5 (real Turin 0x3f)', () => {
    const t = turin();
    for (const [rule, code] of [
      ['minimumLaunchMitVector', 'snp.mit_vector.launch'],
      ['minimumCurrentMitVector', 'snp.mit_vector.current'],
    ] as const) {
      passes(t, 'Turin', { [rule]: '0x3f' }, rule);
      passes(t, 'Turin', { [rule]: 0x5 }, rule);
      const a = rejects(t, 'Turin', { [rule]: '0x41' }, code);
      assert.equal(a.failures[0]!.actual, '0x3f');
      assert.match(a.failures[0]!.message, /0x40/);
      // A v3 report has no vectors: a required minimum fails, 'any' does not.
      const m = rejects(milan(), 'Milan', { [rule]: 1 }, code);
      assert.equal(m.failures[0]!.actual, 'absent');
      assert.deepEqual(appraiseSnp(milan(), 'Milan', { [rule]: 'any' }).failures, []);
    }
  });

  it('mitigation vectors: real GCP Milan v5 (0xb)', () => {
    const g = load('teekit-gcp-milan-sev-gcp');
    passes(
      g,
      'Milan',
      { minimumCurrentMitVector: 0xb, minimumLaunchMitVector: 0x3 },
      'minimumCurrentMitVector',
    );
    rejects(g, 'Milan', { minimumCurrentMitVector: 0x4 }, 'snp.mit_vector.current');
  });

  it('vmpl: 0 by default, exact when set, unchecked when any', () => {
    const base = milan();
    const vmpl1 = { ...base, vmpl: 1 };
    passes(base, 'Milan', {}, 'vmpl');
    rejects(vmpl1, 'Milan', {}, 'snp.vmpl');
    rejects(base, 'Milan', { vmpl: 1 }, 'snp.vmpl');
    passes(vmpl1, 'Milan', { vmpl: 1 }, 'vmpl');
    const a = appraiseSnp(vmpl1, 'Milan', { vmpl: 'any' });
    assert.deepEqual(a.failures, []);
    assert.ok(a.unchecked.includes('vmpl'));
  });
});

describe('SNP appraisal: all failures at once, assert, misuse', needsVectors, () => {
  const bad = (): SnpReport => {
    const base = milan();
    return {
      ...base,
      policy: base.policy | bit(19) | bit(18),
      vmpl: 2,
      guestSvn: 1,
      committedTcb: base.currentTcb - (1n << 56n),
    };
  };
  const strict: SnpPolicy = {
    minimumGuestSvn: 2,
    measurements: [toHex(digest(7))],
    hostData: toHex(new Uint8Array(32)),
    minimumTcb: { Milan: { bootloader: 9, tee: 0, snp: 24, microcode: 219 } },
    requireEcc: true,
  };

  it('returns every failure, in rule order', () => {
    const a = appraiseSnp(bad(), 'Milan', strict);
    assert.deepEqual(codes(a), [
      'snp.guest_svn',
      'snp.policy.debug',
      'snp.policy.migrate_ma',
      'snp.measurement',
      'snp.host_data',
      'snp.firmware.provisional',
      'snp.tcb.minimum',
      'snp.vmpl',
    ]);
  });

  it('assertSnpPolicy throws PolicyRejected listing them all', () => {
    assert.throws(
      () => assertSnpPolicy(bad(), 'Milan', strict),
      (e: unknown) => {
        assert.ok(e instanceof PolicyRejected);
        assert.equal(e.code, ErrorCode.PolicyRejected);
        assert.equal(e.reason, 'snp.guest_svn');
        assert.equal(e.failures.length, 8);
        return true;
      },
    );
  });

  it('assertSnpPolicy returns the appraisal (with what was not checked) when it passes', () => {
    const a = assertSnpPolicy(milan(), 'Milan', { measurements: [toHex(milan().measurement)] });
    assert.deepEqual(a.failures, []);
    assert.ok(a.checked.includes('measurements'));
    assert.ok(a.unchecked.includes('hostData'));
  });

  it('every code reported is a documented code', () => {
    const a = appraiseSnp(bad(), 'Milan', strict);
    for (const c of codes(a)) assert.ok((SNP_FAILURE_CODES as readonly string[]).includes(c), c);
  });

  it('a malformed policy object is InvalidArgument policy.invalid, not a failure or a TypeError', () => {
    for (const policy of [
      { measurements: ['zz'] },
      { vmpl: 7 },
      { allowDebug: 'yes' },
      { minimumTcb: { Milan: { bootloader: 1 } } },
      { nonsense: true },
    ]) {
      assert.throws(
        () => appraiseSnp(milan(), 'Milan', policy as unknown as SnpPolicy),
        (e: unknown) => e instanceof InvalidArgument && e.reason === 'policy.invalid',
      );
    }
  });

  it('an unknown product is InvalidArgument snp.product', () => {
    assert.throws(
      () => appraiseSnp(milan(), 'Venice' as SnpProduct, {}),
      (e: unknown) =>
        e instanceof InvalidArgument && e.code === ErrorCode.InvalidArgument && e.reason === 'snp.product',
    );
  });

  it('describeSnpPolicy agrees with what appraisal checks', () => {
    const policies: SnpPolicy[] = [
      {},
      strict,
      {
        allowSmt: false,
        allowDebug: true,
        requireEcc: false,
        vmpl: 'any',
        trustedIdKeyDigests: [toHex(digest(1))],
      },
      {
        permitProvisionalFirmware: true,
        minimumCurrentMitVector: '0x1',
        requireAuthorKey: true,
        trustedAuthorKeyDigests: [toHex(digest(2))],
      },
    ];
    for (const policy of policies) {
      const a = appraiseSnp(milan(), 'Milan', policy);
      const d = describeSnpPolicy(policy);
      assert.deepEqual(
        d.filter((s) => s.enforced).map((s) => s.rule),
        a.checked,
        JSON.stringify(policy),
      );
    }
  });
});
