/**
 * Hostile input to the Trustee struct-form codec (src/formats/snp/sev-json.ts): every way a struct can fail
 * to say exactly one report gives a typed error with a stable reason; mutated structs are either refused
 * or rebuild to bytes that say exactly what the struct says (checked with the test's independent writer);
 * any report the sev crate could write round-trips byte for byte.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { AttestationError, ErrorCode } from '../../../src/errors.js';
import { encodeReport, type ReportFields, type SnpProduct } from '../../../src/formats/snp/index.js';
import { decodeSevSnpEvidence, parseSevSnpEvidenceJson } from '../../../src/formats/snp/sev-json.js';
import { encodeTcb } from '../../../src/formats/snp/tcb.js';
import { throwsCode } from '../../helpers/assert-error.js';
import { needsVectors, readVector } from '../../helpers/vectors.js';
import { sevEvidenceOf, sevStructOf } from '../../kbs/sev-struct.js';

// biome-ignore lint/suspicious/noExplicitAny: the tests edit untyped JSON
type Json = any;

const fixture = (name: string): Json =>
  JSON.parse(
    Buffer.from(readVector('kbs', 'trustee-snp-evidence', name, 'report.bin.trustee-evidence.json')).toString(
      'utf8',
    ),
  );
const clone = (v: Json): Json => structuredClone(v);
const malformed = (v: unknown, reason: string) =>
  throwsCode(() => decodeSevSnpEvidence(v), ErrorCode.Malformed, `snp.sev_json.${reason}`);

/** A value nested `depth` arrays deep, built without recursion. */
function deep(depth: number): Json {
  let v: Json = 0;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

describe('sev struct form: hostile input, one typed refusal each', needsVectors, () => {
  /** [what, the edit to a copy of the evidence, the reason] on Turin v5, Genoa v3 and Milan v2 evidence. */
  const edits: [string, string, (e: Json) => void, string][] = [
    ['turin', 'not an object', (e) => (e.attestation_report = [1, 2]), 'type'],
    ['turin', 'a byte field too short', (e) => e.attestation_report.report_data.pop(), 'length'],
    ['turin', 'a byte field too long', (e) => e.attestation_report.measurement.push(0), 'length'],
    [
      'turin',
      'a huge byte array',
      (e) => (e.attestation_report.chip_id = new Array(1_000_000).fill(0)),
      'length',
    ],
    ['turin', 'a byte of 256', (e) => (e.attestation_report.host_data[3] = 256), 'range'],
    ['turin', 'a negative byte', (e) => (e.attestation_report.host_data[3] = -1), 'range'],
    ['turin', 'a fractional byte', (e) => (e.attestation_report.signature.r[0] = 1.5), 'range'],
    ['turin', 'a byte as a string', (e) => (e.attestation_report.signature.s[0] = '1'), 'type'],
    ['turin', 'a byte as null', (e) => (e.attestation_report.family_id[0] = null), 'type'],
    ['turin', 'a u32 over 2^32-1', (e) => (e.attestation_report.guest_svn = 2 ** 32), 'range'],
    ['turin', 'a u64 beyond exact JSON numbers', (e) => (e.attestation_report.policy = 2 ** 53), 'range'],
    ['turin', 'a u8 over 255', (e) => (e.attestation_report.current.build = 300), 'range'],
    ['turin', 'a TCB component over 255', (e) => (e.attestation_report.launch_tcb.snp = 256), 'range'],
    [
      'turin',
      'a signature half of 48 bytes',
      (e) => (e.attestation_report.signature.r.length = 48),
      'length',
    ],
    ['turin', 'version 6', (e) => (e.attestation_report.version = 6), 'version'],
    ['turin', 'version 1', (e) => (e.attestation_report.version = 1), 'version'],
    ['turin', 'version as a string', (e) => (e.attestation_report.version = '5'), 'type'],
    [
      'turin',
      'v5 without a mitigation vector',
      (e) => (e.attestation_report.launch_mit_vector = null),
      'version_field',
    ],
    ['turin', 'v3 with a mitigation vector', (e) => (e.attestation_report.version = 3), 'version_field'],
    ['turin', 'a Turin TCB without fmc', (e) => (e.attestation_report.reported_tcb.fmc = null), 'tcb_layout'],
    ['genoa', 'a Genoa TCB with fmc', (e) => (e.attestation_report.committed_tcb.fmc = 0), 'tcb_layout'],
    ['genoa', 'v3 without CPUID', (e) => (e.attestation_report.cpuid_step = null), 'version_field'],
    ['milan2', 'v2 with CPUID', (e) => (e.attestation_report.cpuid_fam_id = 25), 'version_field'],
    [
      'milan2',
      'v2 claiming a Turin TCB on a Milan CHIP_ID',
      (e) => {
        for (const k of ['current_tcb', 'reported_tcb', 'committed_tcb', 'launch_tcb'])
          e.attestation_report[k].fmc = 0;
      },
      'tcb_layout',
    ],
    [
      'milan2',
      'v2 masked CHIP_ID with TCBs that disagree',
      (e) => {
        e.attestation_report.chip_id.fill(0);
        e.attestation_report.launch_tcb.fmc = 1;
      },
      'tcb_layout',
    ],
    ['turin', 'an unknown member of the report', (e) => (e.attestation_report.reserved = 0), 'unknown_key'],
    [
      'turin',
      'an unknown member of a TCB',
      (e) => (e.attestation_report.current_tcb.spl_4 = 0),
      'unknown_key',
    ],
    [
      'turin',
      'an unknown member of the signature',
      (e) => (e.attestation_report.signature.reserved = []),
      'unknown_key',
    ],
    ['turin', 'an unknown top-level member', (e) => (e.tee = 'snp'), 'unknown_key'],
    [
      'turin',
      'a __proto__ member',
      (e) =>
        (e.attestation_report = JSON.parse(
          `{"__proto__":{},${JSON.stringify(e.attestation_report).slice(1)}`,
        )),
      'unknown_key',
    ],
    ['turin', 'a missing report member', (e) => delete e.attestation_report.signature, 'missing_key'],
    ['turin', 'a missing TCB member', (e) => delete e.attestation_report.current_tcb.fmc, 'missing_key'],
    ['turin', 'no attestation_report', (e) => delete e.attestation_report, 'missing_key'],
    [
      'turin',
      'deep nesting in a byte field',
      (e) => (e.attestation_report.measurement = new Array(48).fill(deep(100_000))),
      'type',
    ],
    ['turin', 'deep nesting as the cert_chain entry', (e) => (e.cert_chain = deep(100_000)), 'type'],
    ['turin', 'cert_chain as base64', (e) => (e.cert_chain = 'AAAA'), 'type'],
    [
      'turin',
      'cert_chain with 17 entries',
      (e) => (e.cert_chain = new Array(17).fill({ cert_type: 'ARK', data: [1] })),
      'size',
    ],
    [
      'turin',
      'cert_chain with a million entries',
      (e) => (e.cert_chain = new Array(1_000_000).fill(0)),
      'size',
    ],
    [
      'turin',
      'certificates over 1 MiB',
      (e) => (e.cert_chain = [{ cert_type: 'VCEK', data: new Array(1 << 20).fill(0) }]),
      'size',
    ],
    [
      'turin',
      'the Empty cert type',
      (e) => (e.cert_chain = [{ cert_type: 'Empty', data: [1] }]),
      'cert_type',
    ],
    ['turin', 'an unknown cert type', (e) => (e.cert_chain = [{ cert_type: 'PEK', data: [1] }]), 'cert_type'],
    [
      'turin',
      'OTHER naming the VCEK GUID',
      (e) => (e.cert_chain = [{ cert_type: { OTHER: '63da758d-e664-4564-adc5-f4b93be8accd' }, data: [1] }]),
      'cert_type',
    ],
    [
      'turin',
      'OTHER not a UUID',
      (e) => (e.cert_chain = [{ cert_type: { OTHER: 'vcek' }, data: [1] }]),
      'cert_type',
    ],
    [
      'turin',
      'a cert type twice',
      (e) =>
        (e.cert_chain = [
          { cert_type: 'VCEK', data: [1] },
          { cert_type: 'VCEK', data: [2] },
        ]),
      'cert_duplicate',
    ],
    ['turin', 'an empty certificate', (e) => (e.cert_chain = [{ cert_type: 'VCEK', data: [] }]), 'length'],
    [
      'turin',
      'a certificate byte of 300',
      (e) => (e.cert_chain = [{ cert_type: 'VCEK', data: [300] }]),
      'range',
    ],
    [
      'turin',
      'a cert entry with an extra member',
      (e) => (e.cert_chain = [{ cert_type: 'VCEK', data: [1], guid: 'x' }]),
      'unknown_key',
    ],
  ];
  const cases: Record<string, string> = {
    turin: 'microsoft-tav-turin',
    genoa: 'microsoft-tav-genoa',
    milan2: 'trustee-milan',
  };

  for (const [base, what, edit, reason] of edits) {
    it(`${what}: snp.sev_json.${reason}`, () => {
      const e = clone(fixture(cases[base]!));
      edit(e);
      malformed(e, reason);
    });
  }

  it('a CPUID naming no known generation (Venice, a future family): NotSupported snp.sev_json.product', () => {
    for (const [fam, mod] of [
      [0x1a, 0x50],
      [0x1b, 0x00],
      [0x17, 0x31],
    ]) {
      const e = clone(fixture('microsoft-tav-genoa'));
      e.attestation_report.cpuid_fam_id = fam;
      e.attestation_report.cpuid_mod_id = mod;
      throwsCode(() => decodeSevSnpEvidence(e), ErrorCode.NotSupported, 'snp.sev_json.product');
    }
  });

  it('JSON text: not JSON, not UTF-8, or too large', () => {
    const t = (s: string | Uint8Array) => (typeof s === 'string' ? new Uint8Array(Buffer.from(s)) : s);
    throwsCode(
      () => parseSevSnpEvidenceJson(t('{"attestation_report": ')),
      ErrorCode.Malformed,
      'snp.sev_json.json',
    );
    throwsCode(
      () => parseSevSnpEvidenceJson(t(Uint8Array.of(0x7b, 0xff, 0x7d))),
      ErrorCode.Malformed,
      'snp.sev_json.json',
    );
    throwsCode(
      () => parseSevSnpEvidenceJson(new Uint8Array(5 << 20).fill(0x20)),
      ErrorCode.Malformed,
      'snp.sev_json.size',
    );
    throwsCode(() => parseSevSnpEvidenceJson(t('[]')), ErrorCode.Malformed, 'snp.sev_json.type');
  });
});

/** Every leaf and object path of a JSON value (arrays of numbers count as one leaf, plus one element). */
function paths(
  v: Json,
  at: (string | number)[] = [],
  out: (string | number)[][] = [],
): (string | number)[][] {
  out.push(at);
  if (Array.isArray(v)) {
    if (v.length > 0) out.push([...at, 0], [...at, v.length - 1]);
  } else if (v !== null && typeof v === 'object') {
    for (const k of Object.keys(v)) paths(v[k], [...at, k], out);
  }
  return out;
}

describe('sev struct form: properties', needsVectors, () => {
  const bases = [
    'microsoft-tav-turin',
    'microsoft-tav-genoa',
    'trustee-milan',
    'constellation-aws-milan-vlek-2024',
  ].map(fixture);

  it('a mutated struct is refused with a typed snp.sev_json reason, or its bytes say exactly what it says', () => {
    const mutation = fc.record({
      base: fc.integer({ min: 0, max: bases.length - 1 }),
      pick: fc.nat(),
      op: fc.constantFrom('replace', 'delete', 'add', 'nudge'),
      value: fc.oneof(
        fc.jsonValue({ maxDepth: 3 }),
        fc.integer({ min: -2, max: 2 ** 33 }),
        fc.constant(null),
      ),
      key: fc.string({ maxLength: 12 }),
    });
    let accepted = 0;
    let refused = 0;
    fc.assert(
      fc.property(mutation, (m) => {
        const e = clone(bases[m.base]);
        const all = paths(e).filter((p) => p.length > 0);
        const p = all[m.pick % all.length]!;
        const parent = p.slice(0, -1).reduce((o: Json, k) => o[k], e);
        const last = p[p.length - 1]!;
        if (m.op === 'replace') parent[last] = m.value;
        else if (m.op === 'delete' && !Array.isArray(parent)) delete parent[last];
        else if (m.op === 'add' && !Array.isArray(parent)) parent[m.key] = m.value;
        else if (typeof parent[last] === 'number') parent[last] += typeof m.value === 'number' ? m.value : 1;
        let out: ReturnType<typeof decodeSevSnpEvidence>;
        try {
          out = decodeSevSnpEvidence(e);
        } catch (err) {
          assert.ok(err instanceof AttestationError, `untyped ${String(err)}`);
          assert.match(err.reason, /^snp\.sev_json\.[a-z_]+$/);
          refused++;
          return;
        }
        accepted++;
        // Accepted: the independent writer reads the same struct back from the bytes (JSON text compared,
        // so -0 and 0 are one number as they are on the wire).
        assert.equal(out.report.length, 1184);
        const back = sevEvidenceOf(out.report, out.certTable);
        assert.equal(JSON.stringify(back.attestation_report), JSON.stringify(e.attestation_report));
      }),
      { numRuns: 400, interruptAfterTimeLimit: 10_000, seed: 20261206 },
    );
    // Both outcomes occurred: the property checked acceptances, not only refusals.
    assert.ok(accepted > 0 && refused > 0, `accepted ${accepted}, refused ${refused}`);
  });
});

describe('sev struct form: any report the sev crate could write round-trips byte for byte', () => {
  const MODELS: Record<SnpProduct, [number, number][]> = {
    Milan: [[0x19, 0x01]],
    Genoa: [
      [0x19, 0x11],
      [0x19, 0xa0],
    ],
    Turin: [
      [0x1a, 0x02],
      [0x1a, 0x11],
    ],
  };
  const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });
  const u8 = fc.integer({ min: 0, max: 255 });
  const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
  const u64 = fc.bigInt({ min: 0n, max: BigInt(Number.MAX_SAFE_INTEGER) });
  const tcbParts = fc.record({ fmc: u8, bootloader: u8, tee: u8, snp: u8, microcode: u8 });

  it('Milan, Genoa, Turin; v2, v3, v4, v5; random fields', () => {
    const report = fc
      .record({
        product: fc.constantFrom<SnpProduct>('Milan', 'Genoa', 'Turin'),
        which: fc.nat(),
        version: fc.constantFrom(2, 3, 4, 5),
        stepping: u8,
        tcbs: fc.tuple(tcbParts, tcbParts, tcbParts, tcbParts),
        chip: bytes(64),
        fw: fc.tuple(u8, u8, u8, u8, u8, u8),
        u32s: fc.tuple(u32, u32, u32, u32, u32),
        u64s: fc.tuple(u64, u64, u64, u64),
        b: fc.tuple(
          bytes(16),
          bytes(16),
          bytes(64),
          bytes(48),
          bytes(32),
          bytes(48),
          bytes(48),
          bytes(32),
          bytes(32),
        ),
        sig: fc.tuple(bytes(72), bytes(72)),
      })
      .map((r) => {
        const [family, model] = MODELS[r.product][r.which % MODELS[r.product].length]!;
        const turin = r.product === 'Turin';
        const chip = r.chip.slice();
        // v2 has no CPUID: the sev crate tells Turin by a CHIP_ID of 8 bytes; make each product's CHIP_ID its own kind.
        if (turin) chip.fill(0, 8);
        chip[0] = chip[0]! | 1;
        if (!turin) chip[63] = chip[63]! | 1;
        const tcb = (t: (typeof r.tcbs)[0]) => encodeTcb(turin ? t : { ...t, fmc: undefined }, r.product);
        const f: ReportFields = {
          version: r.version,
          guestSvn: r.u32s[0],
          policy: r.u64s[0],
          familyId: r.b[0],
          imageId: r.b[1],
          vmpl: r.u32s[1],
          signatureAlgo: r.u32s[2],
          currentTcb: tcb(r.tcbs[0]),
          platformInfo: r.u64s[1],
          signerInfo: r.u32s[3],
          reportData: r.b[2],
          measurement: r.b[3],
          hostData: r.b[4],
          idKeyDigest: r.b[5],
          authorKeyDigest: r.b[6],
          reportId: r.b[7],
          reportIdMa: r.b[8],
          reportedTcb: tcb(r.tcbs[1]),
          ...(r.version >= 3 ? { cpuid: { family, model, stepping: r.stepping } } : {}),
          chipId: chip,
          committedTcb: tcb(r.tcbs[2]),
          currentBuild: r.fw[0],
          currentMinor: r.fw[1],
          currentMajor: r.fw[2],
          committedBuild: r.fw[3],
          committedMinor: r.fw[4],
          committedMajor: r.fw[5],
          launchTcb: tcb(r.tcbs[3]),
          ...(r.version >= 5 ? { launchMitVector: r.u64s[2], currentMitVector: r.u64s[3] } : {}),
          signature: { r: r.sig[0], s: r.sig[1] },
        };
        return encodeReport(f);
      });
    fc.assert(
      fc.property(report, (bytes) => {
        const out = decodeSevSnpEvidence(sevEvidenceOf(bytes));
        assert.deepEqual(Buffer.from(out.report), Buffer.from(bytes));
        assert.equal(JSON.stringify(sevStructOf(out.report)), JSON.stringify(sevStructOf(bytes)));
      }),
      { numRuns: 300, interruptAfterTimeLimit: 10_000, seed: 1184 },
    );
  });
});
