/**
 * az-snp-vtpm: Azure confidential VM evidence (HCL report + vTPM quote). The simulator (src/sim/azure)
 * produces Trustee's v0/v1/v2 shapes over the SNP simulator; every binding check is shown refusing. Real
 * Azure samples (Trustee deps/verifier/test_data/az-snp-vtpm) are not copied into this repository: the
 * last suite reads them in place from $VOUCHSAFE_AZURE_SAMPLES and is skipped without it.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { AttestationError } from '../../../src/errors.js';
import { azSnpVtpmEvidence, azureVmIdentity } from '../../../src/evidence/az-snp-vtpm/index.js';
import { parseAzSnpVtpmEvidenceJson } from '../../../src/formats/azure/evidence-json.js';
import { HCL_RUNTIME_DATA_OFFSET, parseHclReport } from '../../../src/formats/azure/hcl-report.js';
import { SimAzureVm } from '../../../src/sim/azure/index.js';
import { type SimChain, sharedSimChain } from '../../../src/sim/snp/index.js';
import { toHex } from '../../../src/util/bytes.js';

const NONCE = new Uint8Array(48).fill(0x9d);
let chain: SimChain;
let vm: SimAzureVm;
before(async () => {
  chain = await sharedSimChain('Milan');
  vm = new SimAzureVm(chain);
});
// The VCEK comes with the evidence; the ASK and ARK from KDS in production, the simulator's here.
const amd = () => ({ intermediate: chain.ask.der, root: chain.ark.der });
const opts = () => ({
  now: new Date(),
  amdChain: amd(),
  trustedRoots: [{ product: 'Milan' as const, sha256: chain.rootSha256 }],
});
const verify = async (json: unknown) =>
  azSnpVtpmEvidence.toClaims(await azSnpVtpmEvidence.verify(azSnpVtpmEvidence.parse({ json }), opts()));

async function refuses(json: unknown, code: string, reason: string): Promise<void> {
  await assert.rejects(verify(json), (e: unknown) => {
    assert.ok(e instanceof AttestationError, String(e));
    assert.equal(e.code, code, e.reason);
    assert.equal(e.reason, reason);
    return true;
  });
}

const b64u = (b: Uint8Array) => Buffer.from(b).toString('base64url') + '='.repeat((3 - (b.length % 3)) % 3);
const withHcl = (e: { [k: string]: unknown }, hcl: Uint8Array) => ({ ...e, hcl_report: b64u(hcl) });

describe('az-snp-vtpm on the simulator', () => {
  for (const version of [0, 1, 2] as const) {
    it(`v${version}: verifies; claims carry the SNP report, the PCRs and the padded nonce`, async () => {
      const c = await verify(vm.evidence(NONCE, version));
      assert.equal(c.tee, 'az-snp-vtpm');
      assert.equal(toHex(c.reportData), toHex(NONCE) + '00'.repeat(16));
      assert.equal(toHex(c.measurements['pcr7:sha256']!), '07'.repeat(32));
      assert.equal(Object.keys(c.measurements).length, 25);
      // Not HOST_DATA (zero on Azure): the VM is named by SHA-256 of the signed runtime data's vmUniqueId.
      assert.equal(c.identityField?.name, 'azure.vmUniqueId.sha256');
      assert.deepEqual(c.identityField?.value, azureVmIdentity('00000000-0000-4000-8000-000000000001'));
      assert.equal(c.details.azure.version, version);
      assert.equal(c.details.tpm.pcr23, '17'.repeat(32));
      assert.equal(c.debug, false);
    });
  }

  it('refuses an HCL report from VMPL 1 (not the paravisor)', async () => {
    const e = vm.evidence(NONCE, 1);
    await refuses(withHcl(e, vm.hclReport(vm.runtimeData(), 1)), 'ERR_BINDING_MISMATCH', 'azure.vmpl');
  });

  it('refuses runtime data that REPORT_DATA does not hash (an AK swapped in)', async () => {
    const other = new SimAzureVm(chain);
    const hcl = vm.hclReport();
    // The other VM's runtime data (its AK) spliced under this VM's signed report: same size, other bytes.
    const rd = other.runtimeData();
    assert.equal(rd.length, vm.runtimeData().length);
    hcl.set(rd, HCL_RUNTIME_DATA_OFFSET);
    const e = other.evidence(NONCE, 1);
    await refuses(withHcl(e, hcl), 'ERR_BINDING_MISMATCH', 'azure.report_data');
  });

  it('refuses a quote signed by another AK', async () => {
    const other = new SimAzureVm(chain);
    const e = vm.evidence(NONCE, 1) as { tpm_quote: object };
    const q = other.evidence(NONCE, 1) as { tpm_quote: object };
    await refuses({ ...e, tpm_quote: q.tpm_quote }, 'ERR_SIGNATURE_INVALID', 'tpm.quote.signature');
  });

  it('refuses PCR values that are not the quoted ones', async () => {
    const e = vm.evidence(NONCE, 1) as { tpm_quote: { pcrs: string[] } };
    e.tpm_quote.pcrs[8] = 'ff'.repeat(32);
    await refuses(e, 'ERR_BINDING_MISMATCH', 'tpm.quote.pcr_digest');
  });

  it('refuses fewer PCRs than the quote selects', async () => {
    const e = vm.evidence(NONCE, 1) as { tpm_quote: { pcrs: string[] } };
    e.tpm_quote.pcrs.pop();
    await refuses(e, 'ERR_BINDING_MISMATCH', 'azure.pcrs');
  });

  it('v2: refuses user-data that does not carry the quote nonce', async () => {
    const e = vm.evidence(NONCE, 2);
    const hcl = vm.hclReport(vm.runtimeData(new Uint8Array(48).fill(0x11)));
    await refuses(withHcl(e, hcl), 'ERR_BINDING_MISMATCH', 'azure.user_data');
  });

  it('refuses a signed SNP byte changed (the report signature)', async () => {
    const e = vm.evidence(NONCE, 1);
    const hcl = vm.hclReport();
    hcl[0x20 + 0x90]! ^= 1; // MEASUREMENT
    await refuses(withHcl(e, hcl), 'ERR_SIGNATURE_INVALID', 'snp.signature');
  });

  it('refuses the simulator chain unless its root is trusted', async () => {
    const p = azSnpVtpmEvidence.parse({ json: vm.evidence(NONCE, 1) });
    await assert.rejects(azSnpVtpmEvidence.verify(p, { now: new Date(), amdChain: amd() }), (e: unknown) => {
      assert.equal((e as AttestationError).code, 'ERR_CHAIN_INVALID');
      return true;
    });
  });
});

/**
 * Small hand-written excerpts of the real shapes (not the data): the HCL header and request-data header of
 * Trustee's real Milan sample deps/verifier/test_data/az-snp-vtpm/hcl-report.bin (trustee commit
 * 78962cd4, bytes 0x000-0x01F and 0x4C0-0x4D3) and of evidence-genoa.json's report (header version 2).
 */
describe('az-snp-vtpm: real shapes (excerpts)', () => {
  const build = (header: string, request: string, runtimeSize: number, padTo = 2600) => {
    const b = new Uint8Array(Math.max(padTo, HCL_RUNTIME_DATA_OFFSET + runtimeSize));
    b.set(Buffer.from(header.replace(/ /g, ''), 'hex'), 0);
    b.set(Buffer.from(request.replace(/ /g, ''), 'hex'), 0x4c0);
    b.fill(0x20, HCL_RUNTIME_DATA_OFFSET, HCL_RUNTIME_DATA_OFFSET + runtimeSize);
    return b;
  };
  it('Milan sample: header v1, report size 2346, 1110 bytes of runtime data, NV-padded to 2600', () => {
    const h = parseHclReport(
      build(
        '48434c41 01000000 2a090000 02000000 00000000 00000000 00000000 00000000',
        '6a040000 01000000 02000000 01000000 56040000',
        1110,
      ),
    );
    assert.deepEqual([h.version, h.reportSize, h.requestType, h.runtimeData.length], [1, 2346, 2, 1110]);
  });
  it('Genoa sample: header v2, report size 2436, 1200 bytes of runtime data', () => {
    const h = parseHclReport(
      build(
        '48434c41 02000000 84090000 02000000 00000000 00000000 00000000 00000000',
        'c4040000 01000000 02000000 01000000 b0040000',
        1200,
      ),
    );
    assert.deepEqual([h.version, h.reportSize, h.runtimeData.length], [2, 2436, 1200]);
  });
  it('refuses a TDX hardware report, a non-SHA-256 hash type, a size mismatch and non-zero padding', () => {
    const header = '48434c41 01000000 2a090000 02000000 00000000 00000000 00000000 00000000';
    const cases: [Uint8Array, string][] = [
      [build(header, '6a040000 01000000 04000000 01000000 56040000', 1110), 'azure.hcl.report_type'],
      [build(header, '6a040000 01000000 02000000 02000000 56040000', 1110), 'azure.hcl.hash_type'],
      [build(header, '6b040000 01000000 02000000 01000000 56040000', 1110), 'azure.hcl.data_size'],
      [
        build(header.replace('2a09', '2b09'), '6a040000 01000000 02000000 01000000 56040000', 1110),
        'azure.hcl.report_size',
      ],
      [build('48434c42'.padEnd(64, '0'), '', 0), 'azure.hcl.signature'],
    ];
    const padded = build(header, '6a040000 01000000 02000000 01000000 56040000', 1110);
    padded[2599] = 1;
    cases.push([padded, 'azure.hcl.padding']);
    for (const [b, reason] of cases) {
      assert.throws(
        () => parseHclReport(b),
        (e: unknown) => (e as AttestationError).reason === reason,
        reason,
      );
    }
  });
});

/**
 * Trustee's real Azure samples, read in place: set VOUCHSAFE_AZURE_SAMPLES to a directory holding
 * evidence-v0.json, evidence-v1.json, evidence-v2.json and evidence-genoa.json from
 * confidential-containers/trustee deps/verifier/test_data/az-snp-vtpm (commit 78962cd4), and
 * VOUCHSAFE_VECTORS (default ../shared/vectors) for AMD's ASK/ARK. Expected values are Trustee's own test
 * assertions (az_snp_vtpm/mod.rs tests).
 */
const SAMPLES = process.env.VOUCHSAFE_AZURE_SAMPLES;
const VECTORS = process.env.VOUCHSAFE_VECTORS ?? join(process.cwd(), '..', 'shared', 'vectors');
describe('az-snp-vtpm: Trustee real Azure samples', {
  skip: SAMPLES === undefined || !existsSync(SAMPLES) ? 'VOUCHSAFE_AZURE_SAMPLES not set' : false,
}, () => {
  const cases = [
    [
      'evidence-v0.json',
      'milan',
      '6368616c6c656e6765',
      'e15c44796beabf46abcec7c57e590942041e47497e4ec27571c8b7664f48dced',
    ],
    [
      'evidence-v1.json',
      'milan',
      '6368616c6c656e6765',
      'e15c44796beabf46abcec7c57e590942041e47497e4ec27571c8b7664f48dced',
    ],
    [
      'evidence-v2.json',
      'milan',
      '982f5c6e45df0ed3f10b6f60b02f0c8390e281300f3805e2279c16168cd6ae9aa398f647caa2338748cd0fd9f5f819ef',
      '84275b2f4312cd4fc6cbe6b152ad3c3683e513d9f1e23c34fca160c8cca7a6a7',
    ],
    [
      'evidence-genoa.json',
      'genoa',
      '0218488bae25d2509232bf676f1a66a30d7372add909109b36016ef136f2938ca05475f8b46094de6b64270ea35d950f',
      'afd689d0bb1c5f36f023fbaf574135f555a28a10c1f6b938d2a25e70c7783338',
    ],
  ] as const;
  for (const [file, product, nonce, pcr0] of cases) {
    it(`${file}: verifies to AMD's pinned ${product} root; nonce and PCR0 as Trustee asserts`, async () => {
      const e = parseAzSnpVtpmEvidenceJson(readFileSync(join(SAMPLES!, file)));
      const v = await azSnpVtpmEvidence.verify(azSnpVtpmEvidence.parse(e), {
        now: new Date(),
        amdChain: {
          intermediate: readFileSync(join(VECTORS, 'amd', `${product}_ask.pem`)),
          root: readFileSync(join(VECTORS, 'amd', `${product}_ark.pem`)),
        },
      });
      assert.equal(v.snp.verified.rootTrust, 'pinned');
      const c = azSnpVtpmEvidence.toClaims(v);
      assert.equal(c.details.nonce, nonce);
      assert.equal(c.details.tpm.pcr00, pcr0);
    });
  }
});

describe('az-snp-vtpm identity (the broker names an Azure VM by its vmUniqueId)', () => {
  it('SHA-256 of the lower-cased vmUniqueId; none for a missing or unusable id', () => {
    const id = '911B0EF8-0000-4000-8000-00000000ABCD';
    assert.deepEqual(azureVmIdentity(id), azureVmIdentity(id.toLowerCase()));
    assert.equal(azureVmIdentity(id)?.length, 32);
    for (const bad of [undefined, null, 7, '', 'x'.repeat(129), {}])
      assert.equal(azureVmIdentity(bad), undefined);
  });
});
