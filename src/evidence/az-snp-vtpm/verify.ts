import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { BindingMismatch, MalformedEvidence, NotSupported } from '../../errors.js';
import type { HclRuntimeData } from '../../formats/azure/runtime-data.js';
import { TPM_ALG, TPM_ST } from '../../formats/tpm/constants.js';
import { ctEqual } from '../../util/bytes.js';
import { type SnpAttestation, type SnpAttestationOptions, verifySnpAttestation } from '../snp/attestation.js';
import { checkPcrBanks, checkQuoteSignedBy } from '../tpm/verify-quote.js';
import type { ParsedAzSnpVtpm } from './parse.js';

/**
 * How `az-snp-vtpm` evidence is verified: the SEV-SNP options of the one pipeline (clock, trusted roots,
 * the KDS getter for the ASK/ARK the evidence does not carry, revocation), plus AMD intermediates given
 * explicitly (e.g. read from a file instead of KDS).
 */
export interface AzSnpVtpmVerifyOptions extends SnpAttestationOptions {
  readonly amdChain?: { readonly intermediate?: Uint8Array; readonly root?: Uint8Array };
}

/** What verification proved. */
export interface AzSnpVtpmVerified {
  readonly version: 0 | 1 | 2;
  /** The SNP report's verification (src/evidence/snp verifySnpAttestation). */
  readonly snp: SnpAttestation;
  /** The runtime data REPORT_DATA binds (AK, vm-configuration, user-data). */
  readonly runtime: HclRuntimeData;
  /** The quote's extraData: what the verifier's report data must equal (compared by the caller). */
  readonly nonce: Uint8Array;
  /** The quoted SHA-256 PCRs by index. */
  readonly pcrs: ReadonlyMap<number, Uint8Array>;
  /** SHA-256 of the AK's SubjectPublicKeyInfo (hex). */
  readonly akSha256: string;
}

/** Azure's paravisor (the HCL) runs at VMPL 0; a report from any other VMPL was not written by it. */
const HCL_VMPL = 0;
const MIN_AK_BITS = 2048;
/** The report data the claims carry is 64 bytes, as for SEV-SNP; a longer nonce could not be compared. */
const REPORT_DATA_BYTES = 64;

function akKeyOf(runtime: HclRuntimeData): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: { ...runtime.akPub }, format: 'jwk' });
  } catch (e) {
    throw new MalformedEvidence('azure.runtime_data.ak', 'HCLAkPub is not a usable RSA key', { cause: e });
  }
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits < MIN_AK_BITS) throw new NotSupported('azure.runtime_data.ak_size', `HCLAkPub has ${bits} bits`);
  return key;
}

/** The quote's one SHA-256 bank, indexes ascending, paired with the values in order. */
function pcrMap(p: ParsedAzSnpVtpm): Map<number, Uint8Array> {
  const a = p.attest;
  if (a.type !== TPM_ST.ATTEST_QUOTE) {
    throw new MalformedEvidence('tpm.quote.not_quote', 'the attestation is not a TPM2_Quote');
  }
  const sel = a.attested.pcrSelect;
  const bank = sel[0];
  if (sel.length !== 1 || bank === undefined || bank.hashAlg !== TPM_ALG.SHA256) {
    throw new BindingMismatch('azure.pcrs', 'the quote must select exactly one bank, SHA-256');
  }
  if (bank.pcrs.length !== p.pcrs.length) {
    throw new BindingMismatch('azure.pcrs', `${bank.pcrs.length} PCRs quoted, ${p.pcrs.length} supplied`);
  }
  const indexes = [...bank.pcrs].sort((x, y) => x - y);
  return new Map(indexes.map((i, k) => [i, p.pcrs[k]!]));
}

/**
 * Verifies `az-snp-vtpm` evidence as Trustee's verifier does (deps/verifier/src/az_snp_vtpm), in this order:
 * 1. the SNP report through the one SEV-SNP pipeline (signature, VCEK from the evidence, ASK/ARK from
 *    `amdChain` or the getter, chain to a pinned AMD root, REPORTED_TCB and CHIP_ID against the VCEK);
 * 2. the report's VMPL is 0 (the paravisor's): otherwise guest code at a lower privilege could have asked
 *    for a report over runtime data naming its own key;
 * 3. REPORT_DATA[0..32) equals SHA-256 of the runtime data (the HCL header's hash type is SHA-256);
 * 4. the quote: signed (RSASSA-PKCS1-v1_5, SHA-256) by the runtime data's HCLAkPub, a TPM2_Quote over one
 *    SHA-256 bank whose values are those supplied and whose pcrDigest matches them;
 * 5. v2: the runtime data's user-data begins with the quote's extraData (both carry the KBS report data).
 * The quote's extraData is returned, not compared: the caller checks it against its expected report data
 * (the broker does, with the claims' reportData). Throws what verifySnpAttestation and checkQuoteSignedBy
 * throw; BindingMismatch `azure.vmpl`, `azure.report_data`, `azure.pcrs`, `azure.user_data`;
 * MalformedEvidence `azure.runtime_data.ak`, `azure.nonce`; NotSupported `azure.runtime_data.ak_size`.
 */
export async function verifyAzSnpVtpm(
  p: ParsedAzSnpVtpm,
  opts: AzSnpVtpmVerifyOptions,
): Promise<AzSnpVtpmVerified> {
  const { amdChain, ...snpOpts } = opts;
  // 1. The SNP report.
  const snp = await verifySnpAttestation(
    {
      report: p.hcl.snpReport,
      certs: {
        leaf: p.vcek,
        ...(amdChain?.intermediate ? { intermediate: amdChain.intermediate } : {}),
        ...(amdChain?.root ? { root: amdChain.root } : {}),
      },
    },
    snpOpts,
  );
  const report = snp.verified.report;
  // 2. VMPL 0.
  if (report.vmpl !== HCL_VMPL) {
    throw new BindingMismatch(
      'azure.vmpl',
      `the SNP report is from VMPL ${report.vmpl}, not the paravisor's`,
    );
  }
  // 3. REPORT_DATA binds the runtime data.
  const digest = new Uint8Array(createHash('sha256').update(p.hcl.runtimeData).digest());
  if (!ctEqual(report.reportData.subarray(0, 32), digest)) {
    throw new BindingMismatch('azure.report_data', 'REPORT_DATA does not hold the runtime data digest');
  }
  // 4. The quote, by the AK the runtime data names.
  const ak = akKeyOf(p.runtime);
  const pcrs = pcrMap(p);
  const bank = { hashAlg: TPM_ALG.SHA256, values: pcrs };
  checkPcrBanks([bank]);
  const sig = { sigAlg: TPM_ALG.RSASSA, hashAlg: TPM_ALG.SHA256, signature: p.signature };
  checkQuoteSignedBy(ak, p.attest, sig, [bank], 'checked-by-caller');
  const nonce = Uint8Array.from(p.attest.extraData);
  if (nonce.length > REPORT_DATA_BYTES) {
    throw new MalformedEvidence('azure.nonce', `the quote nonce has ${nonce.length} bytes, more than 64`);
  }
  // 5. v2: user-data carries the same report data.
  if (p.version >= 2) {
    const ud = p.runtime.userData;
    if (ud === null || ud.length < nonce.length || !ctEqual(ud.subarray(0, nonce.length), nonce)) {
      throw new BindingMismatch('azure.user_data', 'the HCL user-data does not begin with the quote nonce');
    }
  }
  const spki = ak.export({ type: 'spki', format: 'der' });
  return {
    version: p.version,
    snp,
    runtime: p.runtime,
    nonce,
    pcrs,
    akSha256: createHash('sha256').update(spki).digest('hex'),
  };
}
