import { createHash, type KeyObject, randomBytes, sign } from 'node:crypto';
import { InvalidArgument } from '../../errors.js';
import { encodeGuestPolicy, encodeSignerInfo, SigningKey } from '../../formats/snp/bits.js';
import type { SnpProduct } from '../../formats/snp/product.js';
import {
  encodeReport,
  type ReportFields,
  SIG_ALGO_ECDSA_P384_SHA384,
  SIGNED_LENGTH,
} from '../../formats/snp/report.js';
import { encodeTcb } from '../../formats/snp/tcb.js';
import type { SimChain } from './chain.js';

/**
 * Building and signing SEV-SNP attestation reports as the AMD Secure Processor does (SEV-SNP ABI 56860
 * rev 1.57, Table 23 ATTESTATION_REPORT and section 7.3 "Attestation"; signature format per Table 139
 * ECDSA P-384 SIGNATURE: R and S as 72-byte little-endian integers).
 */

export type SimSigner = 'VCEK' | 'VLEK';

/** Combined CPUID family/model/stepping reported in v3+ reports, as real parts report them. */
export const SIM_CPUID: Readonly<Record<SnpProduct, { family: number; model: number; stepping: number }>> = {
  Milan: { family: 0x19, model: 0x01, stepping: 1 },
  Genoa: { family: 0x19, model: 0x11, stepping: 1 },
  Turin: { family: 0x1a, model: 0x02, stepping: 1 },
};

/**
 * Per-product defaults seen in real reports (shared/vectors microsoft-tav-*): report version, SNP firmware
 * version (CURRENT/COMMITTED major.minor.build), PLATFORM_INFO (Turin sets bit 6, IOMMU_WRITE_SAFE) and, for
 * v5, the mitigation vectors.
 */
const PRODUCT_DEFAULTS: Readonly<
  Record<SnpProduct, { version: number; build: number; platformInfo: bigint; mitVector?: bigint }>
> = {
  Milan: { version: 3, build: 29, platformInfo: 0x25n },
  Genoa: { version: 3, build: 40, platformInfo: 0x27n },
  Turin: { version: 5, build: 65, platformInfo: 0x65n, mitVector: 0x3fn },
};

/** ABI 0.31 with SMT allowed and the must-be-one bit 17: 0x3001F, the policy of the real TAV reports. */
export const SIM_DEFAULT_POLICY = encodeGuestPolicy({ abiMajor: 0, abiMinor: 31, smt: true });

/** A fixed, recognisable launch digest for reports whose test does not care about MEASUREMENT. */
export const SIM_DEFAULT_MEASUREMENT = new Uint8Array(
  createHash('sha384').update('vouchsafe simulated launch measurement').digest(),
);

function signerFrom(overrides: Partial<ReportFields> | undefined, signer?: SimSigner): SimSigner {
  if (signer) return signer;
  const key = overrides?.signerInfo !== undefined ? (overrides.signerInfo >> 2) & 0b111 : SigningKey.VCEK;
  return key === SigningKey.VLEK ? 'VLEK' : 'VCEK';
}

/**
 * A complete, valid report description consistent with `chain`: every TCB equal to the chain's, CHIP_ID the
 * chain's (VCEK) or zero (VLEK, as AWS reports show), signer info naming the signer, a random REPORT_ID.
 * `overrides` win field by field (an explicit `undefined` clears an optional field such as `cpuid`). The
 * signer is `opts.signer`, else the one `overrides.signerInfo` names, else VCEK.
 */
export function defaultReportFields(
  chain: SimChain,
  overrides?: Partial<ReportFields>,
  opts: { signer?: SimSigner } = {},
): ReportFields {
  const product = chain.product;
  const d = PRODUCT_DEFAULTS[product];
  const signer = signerFrom(overrides, opts.signer);
  const tcb = encodeTcb(chain.tcb, product);
  const defaults: ReportFields = {
    version: d.version,
    guestSvn: 0,
    policy: SIM_DEFAULT_POLICY,
    familyId: new Uint8Array(16),
    imageId: new Uint8Array(16),
    vmpl: 0,
    signatureAlgo: SIG_ALGO_ECDSA_P384_SHA384,
    currentTcb: tcb,
    platformInfo: d.platformInfo,
    signerInfo: encodeSignerInfo({ signingKey: signer === 'VLEK' ? SigningKey.VLEK : SigningKey.VCEK }),
    reportData: new Uint8Array(64),
    measurement: SIM_DEFAULT_MEASUREMENT.slice(),
    hostData: new Uint8Array(32),
    idKeyDigest: new Uint8Array(48),
    authorKeyDigest: new Uint8Array(48),
    reportId: new Uint8Array(randomBytes(32)),
    reportIdMa: new Uint8Array(32).fill(0xff),
    reportedTcb: tcb,
    cpuid: { ...SIM_CPUID[product] },
    chipId: signer === 'VCEK' ? chain.chipId.slice() : new Uint8Array(64),
    committedTcb: tcb,
    currentBuild: d.build,
    currentMinor: 55,
    currentMajor: 1,
    committedBuild: d.build,
    committedMinor: 55,
    committedMajor: 1,
    launchTcb: tcb,
    ...(d.mitVector !== undefined ? { launchMitVector: d.mitVector, currentMitVector: d.mitVector } : {}),
  };
  return { ...defaults, ...overrides };
}

/** Writes a big-endian integer as the 72-byte little-endian value the firmware stores. */
function littleEndian72(bigEndian: Uint8Array): Uint8Array {
  const out = new Uint8Array(72);
  for (let i = 0; i < bigEndian.length; i++) out[i] = bigEndian[bigEndian.length - 1 - i]!;
  return out;
}

export interface SignReportOptions {
  /** Which chain key signs (default: the one the signer info names, else VCEK). */
  readonly signer?: SimSigner;
  /** Sign with this ECDSA key instead (negative tests: a key the certificate does not certify). */
  readonly key?: KeyObject;
  /**
   * Leave the signature area zero, as firmware does when the host set MASK_CHIP_KEY (SNP_CONFIG): such a
   * report carries no signature at all and a verifier must reject it.
   */
  readonly zeroSignature?: boolean;
}

/**
 * Encodes `fields` over the chain's defaults and signs bytes [0, 0x2A0) with ECDSA P-384/SHA-384, writing R
 * and S little-endian at 0x2A0 and 0x2E8. Any field may be set, including invalid ones (SIGNATURE_ALGO 0,
 * reserved bits): the result is still a correct signature over exactly those bytes. A `signature` in
 * `fields` is ignored. Throws InvalidArgument `sim.snp.report_fields` (a byte field of the wrong length) or
 * `sim.snp.key` (a key that is not ECDSA).
 */
export function signReport(
  fields: Partial<ReportFields>,
  chain: SimChain,
  opts: SignReportOptions = {},
): Uint8Array {
  const signer = signerFrom(fields, opts.signer);
  const full = { ...defaultReportFields(chain, fields, { signer }), signature: undefined };
  let bytes: Uint8Array;
  try {
    bytes = encodeReport(full);
  } catch (e) {
    throw new InvalidArgument(
      'sim.snp.report_fields',
      `report fields do not encode: ${(e as Error).message}`,
    );
  }
  if (opts.zeroSignature) return bytes;
  const key = opts.key ?? (signer === 'VLEK' ? chain.vlek.privateKey : chain.vcek.privateKey);
  if (key.asymmetricKeyType !== 'ec') {
    throw new InvalidArgument(
      'sim.snp.key',
      `report signing key must be ECDSA, got ${key.asymmetricKeyType}`,
    );
  }
  const sig = sign('sha384', bytes.subarray(0, SIGNED_LENGTH), { key, dsaEncoding: 'ieee-p1363' });
  const half = sig.length / 2;
  bytes.set(littleEndian72(sig.subarray(0, half)), 0x2a0);
  bytes.set(littleEndian72(sig.subarray(half)), 0x2e8);
  return bytes;
}
