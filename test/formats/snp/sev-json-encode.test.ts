/**
 * The struct-form encoder (src/formats/snp/sev-json.ts encodeSevSnpEvidence / formatSevSnpEvidenceJson):
 * from each shared report.bin it writes the real `sev` crate's fixture byte for byte
 * (../shared/vectors/kbs/trustee-snp-evidence, read in place); decoder(encoder(x)) == x over simulator
 * reports of every product and version; a report the struct cannot carry is refused with a typed reason.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import fc from 'fast-check';
import { ErrorCode } from '../../../src/errors.js';
import { buildCertTable } from '../../../src/formats/snp/cert-table.js';
import {
  CertGuid,
  encodeReport,
  parseCertTable,
  type ReportFields,
  type SnpProduct,
} from '../../../src/formats/snp/index.js';
import {
  decodeSevSnpEvidence,
  encodeSevSnpEvidence,
  formatSevSnpEvidenceJson,
  parseSevSnpEvidenceJson,
} from '../../../src/formats/snp/sev-json.js';
import { encodeTcb, type TcbParts } from '../../../src/formats/snp/tcb.js';
import {
  defaultReportFields,
  type SimChain,
  SimSnpFirmware,
  sharedSimChain,
} from '../../../src/sim/snp/index.js';
import { SIM_CPUID } from '../../../src/sim/snp/report.js';
import { throwsCode } from '../../helpers/assert-error.js';
import { needsVectors, readVector, vectorCases } from '../../helpers/vectors.js';

const FIXTURES = ['kbs', 'trustee-snp-evidence'] as const;

describe('sev struct form encoder: the real crate fixtures, byte for byte', needsVectors, () => {
  const cases = vectorCases(...FIXTURES);

  it('covers the eight fixtures', () => assert.equal(cases.length, 8));

  for (const name of cases) {
    it(`${name}: report.bin encodes to exactly the fixture file, which decodes back to report.bin`, () => {
      const raw = readVector('snp', name, 'report.bin');
      const file = readVector(...FIXTURES, name, 'report.bin.trustee-evidence.json');
      const ours = formatSevSnpEvidenceJson(raw);
      assert.equal(Buffer.from(ours).toString('utf8'), Buffer.from(file).toString('utf8'));
      assert.deepEqual(Buffer.from(ours), Buffer.from(file));
      assert.deepEqual(Buffer.from(parseSevSnpEvidenceJson(ours).report), Buffer.from(raw));
    });
  }

  it('the masked-CHIP_ID v2 reports, which the crate cannot write, are NotSupported snp.sev_json.product', () => {
    for (const f of ['report.bin', 'report2.bin']) {
      const raw = readVector('snp', 'constellation-aws-milan-vlek-2023', f);
      throwsCode(() => encodeSevSnpEvidence(raw), ErrorCode.NotSupported, 'snp.sev_json.product');
    }
  });
});

const PRODUCTS: readonly SnpProduct[] = ['Milan', 'Genoa', 'Turin'];

/**
 * The fields that make a report another product's: CPUID, an 8-byte CHIP_ID on Turin (what tells the
 * generation in v2), and its TCBs in that product's layout. One simulated chain signs them all (its RSA
 * keys are what is slow to make; the signature does not matter to the codec, the bytes do).
 */
function productFields(product: SnpProduct, chipId: Uint8Array, tcb: TcbParts): Partial<ReportFields> {
  const t = encodeTcb(product === 'Turin' ? tcb : { ...tcb, fmc: undefined }, product);
  const chip = chipId.slice();
  if (product === 'Turin') chip.fill(0, 8);
  return {
    cpuid: { ...SIM_CPUID[product] },
    chipId: chip,
    currentTcb: t,
    reportedTcb: t,
    committedTcb: t,
    launchTcb: t,
  };
}

describe('sev struct form encoder: decoder(encoder(x)) == x over simulator reports', () => {
  let chain: SimChain;
  before(async () => {
    chain = await sharedSimChain('Milan');
  });

  it('Milan, Genoa, Turin; report v2-v5; VCEK and VLEK; random launch values, TCBs and REPORT_DATA', () => {
    const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });
    const u8 = fc.integer({ min: 0, max: 255 });
    const input = fc.record({
      product: fc.constantFrom(...PRODUCTS),
      version: fc.constantFrom(2, 3, 4, 5),
      signer: fc.constantFrom('VCEK' as const, 'VLEK' as const),
      measurement: bytes(48),
      hostData: bytes(32),
      reportData: bytes(64),
      chipId: bytes(64).map((c) => {
        c[0] = c[0]! | 1; // not all zero (that is MASK_CHIP_ID)
        c[63] = c[63]! | 1; // and, on Milan/Genoa, not 8 bytes long (that is Turin's)
        return c;
      }),
      tcb: fc.record({ fmc: u8, bootloader: u8, tee: u8, snp: u8, microcode: u8 }),
      // Bit 17 set, bits 63:26 clear, as the firmware demands.
      policy: fc.integer({ min: 0, max: (1 << 26) - 1 }).map((p) => BigInt(p | (1 << 17))),
      guestSvn: fc.integer({ min: 0, max: 0xffff_ffff }),
      vmpl: fc.integer({ min: 0, max: 3 }),
      mit: fc.bigInt({ min: 0n, max: BigInt(Number.MAX_SAFE_INTEGER) }),
    });
    fc.assert(
      // A v2 report signed with a VLEK has an all-zero CHIP_ID: no generation, refused (tested below).
      fc.property(
        input.filter((i) => !(i.version === 2 && i.signer === 'VLEK')),
        (i) => {
          const fields = productFields(i.product, i.chipId, i.tcb);
          const fw = new SimSnpFirmware(chain, {
            measurement: i.measurement,
            hostData: i.hostData,
            policy: i.policy,
            guestSvn: i.guestSvn,
            vmpl: i.vmpl,
            signer: i.signer,
            reportFields: {
              ...fields,
              ...(i.signer === 'VLEK' ? { chipId: new Uint8Array(64) } : {}),
              version: i.version,
              ...(i.version >= 5 ? { launchMitVector: i.mit, currentMitVector: i.mit } : {}),
            },
          });
          const { report, certTable } = fw.getReport(i.reportData);
          const ev = encodeSevSnpEvidence(report, certTable);
          const back = decodeSevSnpEvidence(JSON.parse(JSON.stringify(ev)));
          assert.deepEqual(Buffer.from(back.report), Buffer.from(report));
          // The table is rebuilt, not copied: the same certificates under the same types, in order.
          assert.deepEqual(parseCertTable(back.certTable!), parseCertTable(certTable));
        },
      ),
      { numRuns: 100, seed: 1203 },
    );
  });

  it('cert_chain: the well-known types by name, another GUID as OTHER; no table gives null', async () => {
    const fw = new SimSnpFirmware(await sharedSimChain('Milan'), {
      measurement: new Uint8Array(48),
      hostData: new Uint8Array(32),
      policy: 0x30000n,
    });
    const { report, certTable } = fw.getReport(new Uint8Array(64));
    const ev = encodeSevSnpEvidence(report, certTable);
    assert.deepEqual(
      ev.cert_chain?.map((e) => e.cert_type),
      ['VCEK', 'ASK', 'ARK'],
    );
    assert.equal(encodeSevSnpEvidence(report).cert_chain, null);
    const other = '11111111-2222-3333-4444-555555555555';
    const withOther = buildCertTable([
      { guid: CertGuid.VCEK, data: new Uint8Array([1, 2, 3]) },
      { guid: other, data: new Uint8Array([4]) },
    ]);
    assert.deepEqual(encodeSevSnpEvidence(report, withOther).cert_chain, [
      { cert_type: 'VCEK', data: [1, 2, 3] },
      { cert_type: { OTHER: other }, data: [4] },
    ]);
  });
});

describe('sev struct form encoder: reports the struct cannot carry are refused', () => {
  let chain: SimChain;
  const base = (product: SnpProduct, over: Partial<ReportFields> = {}) =>
    encodeReport(
      defaultReportFields(chain, {
        ...productFields(product, chain.chipId, chain.tcb),
        ...(product === 'Turin' ? { version: 5, launchMitVector: 0n, currentMitVector: 0n } : {}),
        ...over,
      }),
    );
  before(async () => {
    chain = await sharedSimChain('Milan');
  });

  it('a TCB byte its layout reserves: snp.sev_json.unrepresentable (the struct would drop it)', () => {
    // Milan TCB byte 3 is reserved; the struct's TcbVersion has no place for it.
    const milan = base('Milan', { reportedTcb: encodeTcb(chain.tcb, 'Milan') | (1n << 24n) });
    throwsCode(() => encodeSevSnpEvidence(milan), ErrorCode.Malformed, 'snp.sev_json.unrepresentable');
    // Turin byte 5 likewise.
    const turin = base('Turin', { launchTcb: 1n << 40n });
    throwsCode(() => encodeSevSnpEvidence(turin), ErrorCode.Malformed, 'snp.sev_json.unrepresentable');
  });

  it('a u64 above 2^53-1 (no exact JSON number): snp.sev_json.range', () => {
    throwsCode(
      () => encodeSevSnpEvidence(base('Milan', { platformInfo: 1n << 60n })),
      ErrorCode.Malformed,
      'snp.sev_json.range',
    );
    throwsCode(
      () => encodeSevSnpEvidence(base('Turin', { launchMitVector: 2n ** 53n, currentMitVector: 0n })),
      ErrorCode.Malformed,
      'snp.sev_json.range',
    );
  });

  it('an unknown CPU generation, and a masked v2 CHIP_ID: NotSupported snp.sev_json.product', () => {
    throwsCode(
      () => encodeSevSnpEvidence(base('Milan', { cpuid: { family: 0x17, model: 1, stepping: 0 } })),
      ErrorCode.NotSupported,
      'snp.sev_json.product',
    );
    throwsCode(
      () => encodeSevSnpEvidence(base('Milan', { version: 2, cpuid: undefined, chipId: new Uint8Array(64) })),
      ErrorCode.NotSupported,
      'snp.sev_json.product',
    );
  });

  it('what parseReport refuses (size, reserved bytes) and a bad certificate table keep their reasons', () => {
    throwsCode(() => encodeSevSnpEvidence(new Uint8Array(100)), ErrorCode.Malformed, 'snp.report.size');
    const r = base('Genoa');
    const reserved = r.slice();
    reserved[0x1eb] = 1;
    throwsCode(() => encodeSevSnpEvidence(reserved), ErrorCode.Malformed, /^snp\.report\./);
    throwsCode(
      () => encodeSevSnpEvidence(r, new Uint8Array([1, 2, 3])),
      ErrorCode.Malformed,
      /^snp\.cert_table\./,
    );
  });
});
