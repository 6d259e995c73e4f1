import { createHash, type KeyObject, sign } from 'node:crypto';
import { InvalidArgument } from '../../errors.js';
import {
  HCL_HW_REPORT_OFFSET,
  HCL_REQUEST_DATA_OFFSET,
  HCL_RUNTIME_DATA_OFFSET,
  HCL_SIGNATURE,
  HclHashType,
  HclReportType,
} from '../../formats/azure/hcl-report.js';
import { encodePem } from '../../formats/pem.js';
import { Writer } from '../../formats/reader.js';
import { encodeAttest } from '../../formats/tpm/attest.js';
import { TPM_ALG, TPM_ST } from '../../formats/tpm/constants.js';
import { newKeyPairSync } from '../../util/key-pair.js';
import type { SimChain } from '../snp/chain.js';
import { type SimLaunchParams, SimSnpFirmware } from '../snp/firmware.js';
import { SIM_DEFAULT_MEASUREMENT, SIM_DEFAULT_POLICY } from '../snp/report.js';

/** The size of vTPM NV index 0x01400001 on Azure: the HCL report, zero-padded. */
const NV_INDEX_BYTES = 2600;
const PCR_COUNT = 24;

export interface SimAzureVmOptions {
  /** Launch parameters of the SNP guest (default: the simulator's measurement and policy, zero HOST_DATA as on Azure). */
  readonly launch?: Partial<SimLaunchParams>;
  /** The 24 SHA-256 PCR values the vTPM quotes (default: PCR i filled with byte i). */
  readonly pcrs?: readonly Uint8Array[];
  /** `vm-configuration` of the runtime data. */
  readonly vmConfiguration?: { readonly [k: string]: unknown };
}

/** Builds the HCL report (header, SNP report, request data, runtime data), NV-padded. */
export function encodeHclReport(
  snpReport: Uint8Array,
  runtimeData: Uint8Array,
  nvBytes = NV_INDEX_BYTES,
): Uint8Array {
  const size = HCL_RUNTIME_DATA_OFFSET + runtimeData.length;
  const w = new Writer(Math.max(size, nvBytes));
  w.at(0x00).u32le(HCL_SIGNATURE).u32le(1).u32le(size).u32le(2).u32le(0);
  w.at(HCL_HW_REPORT_OFFSET).bytes(snpReport);
  w.at(HCL_REQUEST_DATA_OFFSET)
    .u32le(HCL_RUNTIME_DATA_OFFSET - HCL_REQUEST_DATA_OFFSET + runtimeData.length)
    .u32le(1)
    .u32le(HclReportType.snp)
    .u32le(HclHashType.sha256)
    .u32le(runtimeData.length)
    .bytes(runtimeData);
  return w.buf;
}

/**
 * A simulated Azure confidential VM: the SNP simulator's firmware behind a paravisor that writes the HCL
 * report (REPORT_DATA = SHA-256 of the runtime data naming its vTPM AK), and a software vTPM that quotes
 * its 24 SHA-256 PCRs with an RSA-2048 AK (RSASSA-PKCS1-v1_5, SHA-256). It produces what the CoCo
 * attester produces on Azure, in Trustee's three forms; the shapes were checked against Trustee's real
 * samples (docs/kbs.md "Azure"). Its roots are the SNP simulator's, not AMD's.
 */
export class SimAzureVm {
  readonly firmware: SimSnpFirmware;
  readonly pcrs: readonly Uint8Array[];
  private readonly ak: { readonly privateKey: KeyObject; readonly publicKey: KeyObject };
  private readonly vmConfiguration: { readonly [k: string]: unknown };

  /** Throws InvalidArgument `sim.azure.pcrs` and what SimSnpFirmware throws for bad launch parameters. */
  constructor(chain: SimChain, opts: SimAzureVmOptions = {}) {
    this.firmware = new SimSnpFirmware(chain, {
      measurement: SIM_DEFAULT_MEASUREMENT,
      policy: SIM_DEFAULT_POLICY,
      hostData: new Uint8Array(32),
      ...opts.launch,
    });
    const pcrs = opts.pcrs ?? Array.from({ length: PCR_COUNT }, (_, i) => new Uint8Array(32).fill(i));
    if (pcrs.length !== PCR_COUNT || pcrs.some((p) => p.length !== 32)) {
      throw new InvalidArgument('sim.azure.pcrs', 'the vTPM quotes 24 SHA-256 PCRs');
    }
    this.pcrs = pcrs.map((p) => Uint8Array.from(p));
    this.ak = newKeyPairSync('rsa', { modulusLength: 2048 });
    this.vmConfiguration = opts.vmConfiguration ?? {
      'console-enabled': false,
      'secure-boot': true,
      'tpm-enabled': true,
      vmUniqueId: '00000000-0000-4000-8000-000000000001',
    };
  }

  /** The runtime data the paravisor writes, with `userData` (64 bytes, zero-padded) as `user-data`. */
  runtimeData(userData: Uint8Array = new Uint8Array(0)): Uint8Array {
    const jwk = this.ak.publicKey.export({ format: 'jwk' });
    const ud = new Uint8Array(64);
    ud.set(userData.subarray(0, 64));
    const json = {
      keys: [{ kid: 'HCLAkPub', key_ops: ['sign'], kty: 'RSA', e: jwk.e, n: jwk.n }],
      'vm-configuration': this.vmConfiguration,
      'user-data': Buffer.from(ud).toString('hex'),
    };
    return new TextEncoder().encode(JSON.stringify(json));
  }

  /** An HCL report over `runtimeData` (default: {@link runtimeData} with no user data), at `vmpl`. */
  hclReport(runtimeData = this.runtimeData(), vmpl = 0): Uint8Array {
    const reportData = createHash('sha256').update(runtimeData).digest();
    const { report } = this.firmware.getReport(new Uint8Array(reportData), { vmpl });
    return encodeHclReport(report, runtimeData);
  }

  /** TPM2_Quote over all 24 SHA-256 PCRs with `nonce` as qualifyingData, signed by the AK. */
  quote(nonce: Uint8Array): { message: Uint8Array; signature: Uint8Array } {
    const digest = createHash('sha256');
    for (const p of this.pcrs) digest.update(p);
    const message = encodeAttest({
      type: TPM_ST.ATTEST_QUOTE,
      qualifiedSigner: Uint8Array.from([0, 0x0b, ...new Uint8Array(32).fill(0xa2)]),
      extraData: nonce,
      clockInfo: { clock: 0x1b6f9cn, resetCount: 2, restartCount: 0, safe: true },
      firmwareVersion: 0x2020031200120003n,
      attested: {
        pcrSelect: [{ hashAlg: TPM_ALG.SHA256, pcrs: this.pcrs.map((_, i) => i), sizeofSelect: 3 }],
        pcrDigest: new Uint8Array(digest.digest()),
      },
    });
    return { message, signature: new Uint8Array(sign('sha256', message, this.ak.privateKey)) };
  }

  /**
   * Evidence for `nonce` (the KBS report data: the quote's qualifyingData, and in v2 also the user-data)
   * as Trustee's v0, v1 or v2 JSON.
   */
  evidence(nonce: Uint8Array, version: 0 | 1 | 2 = 2): { [k: string]: unknown } {
    const hcl = this.hclReport(this.runtimeData(version === 2 ? nonce : undefined));
    const q = this.quote(nonce);
    const vcek = this.firmware.chain.vcek.der;
    if (version === 0) {
      return {
        quote: { signature: [...q.signature], message: [...q.message], pcrs: this.pcrs.map((p) => [...p]) },
        report: [...hcl],
        vcek: encodePem('CERTIFICATE', vcek),
      };
    }
    const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
    return {
      version,
      tpm_quote: { signature: hex(q.signature), message: hex(q.message), pcrs: this.pcrs.map(hex) },
      hcl_report: Buffer.from(hcl).toString('base64url') + '='.repeat((3 - (hcl.length % 3)) % 3),
      vcek: Buffer.from(vcek).toString('base64url') + '='.repeat((3 - (vcek.length % 3)) % 3),
    };
  }
}
