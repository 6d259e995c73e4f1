import { createHash, type VerifyKeyObjectInput, verify } from 'node:crypto';
import {
  BindingMismatch,
  ChainInvalid,
  InvalidArgument,
  MalformedEvidence,
  NotSupported,
  SignatureInvalid,
} from '../../errors.js';
import {
  decodeSignerInfo,
  decodeTcb,
  formatTcb,
  isSnpProduct,
  parseReport,
  productFromCpuid,
  SIG_ALGO_ECDSA_P384_SHA384,
  SIGNED_LENGTH,
  SigningKey,
  type SnpProduct,
  type SnpReport,
  type Tcb,
  tcbComponentsBelow,
} from '../../formats/snp/index.js';
import { isAllZero, toHex } from '../../util/bytes.js';
import {
  type AmdCa,
  type AmdLeaf,
  type AmdSigner,
  type AmdSpl,
  leafTcb,
  parseAmdCa,
  parseAmdLeaf,
  tcbMismatches,
} from './amd-cert.js';
import { checkValidity, verifyAmdChain, verifyCrlSignature } from './chain.js';
import { parseCrl } from './crl.js';
import { normalizeTrustedRoots, PINNED_ARK_SHA256, rootTrust, type TrustedRoot } from './roots.js';

/**
 * AMD SEV-SNP evidence verification: signatures and chains only, no policy (reference snp-tdx.md A5 steps
 * 1-6 plus the binding checks of steps 10 "REPORTED_TCB == cert TCB" and "cert TCB <= CURRENT_TCB" and 16
 * "CHIP_ID == hwID", and the fixes listed there beyond go-sev-guest: ARK pinning, the pinned ARK's own
 * signature, SIGNATURE_ALGO 0 refused, Turin TCB layout and 8-byte hwID, Genoa productName without
 * stepping).
 */

/** The three certificates, DER, as the host's certificate table or AMD KDS provides them. */
export interface SnpCerts {
  /** VCEK or VLEK. */
  readonly leaf: Uint8Array;
  /** ASK (for a VCEK) or ASVK (for a VLEK). */
  readonly intermediate: Uint8Array;
  /** ARK. */
  readonly root: Uint8Array;
}

export interface SnpVerifyOptions {
  /** The time at which every certificate (and the CRL, if given) must be valid. */
  readonly now: Date;
  readonly certs: SnpCerts;
  /**
   * The product, for v2 reports (no CPUID) whose leaf productName does not name one. When given it must
   * agree with what the report and leaf say.
   */
  readonly product?: SnpProduct;
  /** Extra roots trusted per product (e.g. the simulator's ARK). AMD's ARKs are always trusted. */
  readonly trustedRoots?: readonly TrustedRoot[];
  /** The CRL (DER) for the intermediate's chain (KDS /vcek|vlek/v1/{P}/crl); checked when given. */
  readonly crl?: Uint8Array;
  /**
   * How long past its nextUpdate the CRL is still accepted (ms). Default 0: a CRL past nextUpdate is refused
   * `snp.crl.expired`. An operator's choice for riding out a KDS outage (docs/api.md "Revocation").
   */
  readonly crlGraceMs?: number;
}

export interface SnpLeafInfo {
  readonly kind: AmdSigner;
  readonly sha256: string;
  readonly productName?: string;
  readonly stepping?: string;
  readonly structVersion?: number;
  /** The TCB the leaf certifies, decoded for the report's product. */
  readonly tcb: Tcb;
  readonly spl: AmdSpl;
  readonly hwId?: Uint8Array;
  readonly cspId?: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

export interface SnpVerified {
  /** The report as parsed from a private copy of the verified bytes (not the object passed in). */
  readonly report: SnpReport;
  readonly product: SnpProduct;
  readonly signer: AmdSigner;
  readonly leaf: SnpLeafInfo;
  /** False when CHIP_ID was not compared: all zero (host MASK_CHIP_ID) or a VLEK (which has no hwID). */
  readonly chipIdChecked: boolean;
  /** True only when a CRL was given and checked. */
  readonly crlChecked: boolean;
  /** SHA-256 of the root certificate's DER. */
  readonly rootSha256: string;
  /** `pinned` for AMD's ARK, `configured` for an extra root from options.trustedRoots. */
  readonly rootTrust: 'pinned' | 'configured';
}

interface CrlEntry {
  readonly thisUpdate: Date;
  readonly nextUpdate?: Date;
  readonly revoked: boolean;
}

/** What {@link SnpVerifier} has checked before the report's signature, for the checks after it. */
interface UpToSignature {
  readonly report: SnpReport;
  readonly product: SnpProduct;
  readonly signer: AmdSigner;
  readonly entry: ChainEntry;
  readonly trust: SnpVerified['rootTrust'];
  readonly crlChecked: boolean;
}

/** Parsed certificates of one (leaf, intermediate, root) triple and what has been proven about them. */
interface ChainEntry {
  readonly leaf: AmdLeaf;
  readonly intermediate: AmdCa;
  readonly root: AmdCa;
  readonly rootSha256: string;
  /** Products for which verifyAmdChain passed (names depend on the product; signatures do not). */
  readonly verifiedFor: Set<SnpProduct>;
  /** CRLs whose signature and issuer were checked against this root, by SHA-256 of their DER. */
  readonly crls: Map<string, CrlEntry>;
}

const MAX_CRLS_PER_CHAIN = 8;

/** Default bound on cached chains; a fleet of VCEKs is one entry per chip and TCB. */
export const DEFAULT_CACHE_ENTRIES = 1024;

function certsKey(c: SnpCerts): string {
  const h = createHash('sha256');
  for (const d of [c.leaf, c.intermediate, c.root]) {
    const len = Buffer.allocUnsafe(4);
    len.writeUInt32LE(d.length);
    h.update(len).update(d);
  }
  return h.digest('hex');
}

/**
 * A verifier with a cache of verified chains, keyed by SHA-256 of the three certificates' DER. A warm
 * verification (same chain seen before) does only the validity check at `now`, the trust check of the
 * root under this call's options, the binding checks and the report's ECDSA signature with the cached
 * leaf key. Nothing cached depends on the clock or on the caller's trusted roots; both are re-checked on
 * every call, so an expired certificate always fails and a configured root must be configured each time.
 */
export class SnpVerifier {
  private readonly chains = new Map<string, ChainEntry>();
  private readonly maxEntries: number;

  constructor(opts: { maxEntries?: number } = {}) {
    this.maxEntries = Math.max(1, opts.maxEntries ?? DEFAULT_CACHE_ENTRIES);
  }

  /** Number of cached chains. */
  get size(): number {
    return this.chains.size;
  }

  clear(): void {
    this.chains.clear();
  }

  /**
   * Verifies a parsed report against its certificates. Returns what was verified; throws an
   * AttestationError whose `reason` names the failed check:
   * - InvalidArgument: `snp.options.report`, `snp.options.now`, `snp.options.certs`, `snp.options.crl`,
   *   `snp.options.product`, `snp.trusted_roots`, `snp.product_required`;
   * - SignatureInvalid: `snp.signature_algo` (not 1), `snp.mask_chip_key`, `snp.signing_key_none`,
   *   `snp.signature_format`, `snp.signature`, `snp.chain.*_signature`, `snp.crl.signature`;
   * - MalformedEvidence: `snp.report.*` (raw bytes that do not parse), `snp.cert.*`, `snp.crl.*`;
   * - NotSupported: `snp.product_unknown` (CPUID names no known product);
   * - ChainInvalid: `snp.leaf_kind_mismatch`, `snp.chain.root_untrusted`, `snp.chain.*`, `snp.cert.*`,
   *   `snp.crl.*`, `snp.intermediate_revoked`;
   * - BindingMismatch: `snp.product_mismatch`, `snp.reported_tcb_mismatch`, `snp.reported_tcb_above_current`,
   *   `snp.chip_id_mismatch`.
   */
  verify(parsed: SnpReport, opts: SnpVerifyOptions): SnpVerified {
    const checked = this.checkUpToSignature(parsed, opts);
    return this.afterSignature(checked, verify('sha384', ...signatureCheck(checked)));
  }

  /**
   * {@link verify} with the report's ECDSA-P384 verification on libuv's thread pool (node:crypto's callback
   * form): the same checks in the same order, the same result and errors, but the event loop of a broker
   * serving many releases does not spend ~0.45 ms per report on it.
   */
  async verifyAsync(parsed: SnpReport, opts: SnpVerifyOptions): Promise<SnpVerified> {
    const checked = this.checkUpToSignature(parsed, opts);
    const ok = await new Promise<boolean>((resolve, reject) =>
      verify('sha384', ...signatureCheck(checked), (e, v) => (e ? reject(e) : resolve(v))),
    );
    return this.afterSignature(checked, ok);
  }

  /** Every check before the report's signature (see {@link verify}); what the checks after it need. */
  private checkUpToSignature(parsed: SnpReport, opts: SnpVerifyOptions): UpToSignature {
    // Everything checked below is read from the signed bytes themselves: re-parsing a private copy of
    // `raw` (about 1.5 µs) means a struct whose fields were edited after parsing cannot pass off unsigned
    // values, and the result does not change if the caller reuses its buffer.
    if (!(parsed?.raw instanceof Uint8Array)) {
      throw new InvalidArgument('snp.options.report', 'report must be a parsed SNP report');
    }
    const report = parseReport(Uint8Array.from(parsed.raw));
    const now = checkNow(opts?.now);
    const certs = checkCerts(opts.certs);
    const extraRoots = normalizeTrustedRoots(opts.trustedRoots);
    if (opts.product !== undefined && !isSnpProduct(opts.product)) {
      throw new InvalidArgument('snp.options.product', `unknown product ${String(opts.product)}`);
    }

    // ABI 56860 Table 23: SIGNATURE_ALGO 1 is the only algorithm; 0 means "no signature" and is refused.
    if (report.signatureAlgo !== SIG_ALGO_ECDSA_P384_SHA384) {
      throw new SignatureInvalid(
        'snp.signature_algo',
        `SIGNATURE_ALGO ${report.signatureAlgo} is not 1 (ECDSA P-384)`,
      );
    }
    // MASK_CHIP_KEY: the firmware wrote zeros instead of a signature.
    const signerInfo = decodeSignerInfo(report.signerInfo);
    if (signerInfo.maskChipKey)
      throw new SignatureInvalid('snp.mask_chip_key', 'MASK_CHIP_KEY set: report is unsigned');
    const signer = signerFrom(signerInfo.signingKey);

    // Certificates (parsed once per distinct triple); the leaf must be the key SIGNING_KEY names.
    const key = certsKey(certs);
    const entry = this.entryFor(key, certs);
    if (entry.leaf.kind !== signer) {
      throw new ChainInvalid(
        'snp.leaf_kind_mismatch',
        `report is signed by the ${signer}, the leaf is a ${entry.leaf.kind}`,
      );
    }

    const product = resolveProduct(report, entry.leaf, opts.product);

    // The root must be AMD's ARK for this product, or a root the caller configured for it.
    const trust = rootTrust(entry.rootSha256, product, extraRoots);
    if (!trust) {
      throw new ChainInvalid(
        'snp.chain.root_untrusted',
        `root ${entry.rootSha256} is neither the pinned ${product} ARK nor a configured root for ${product}`,
      );
    }
    if (!entry.verifiedFor.has(product)) {
      verifyAmdChain(entry.leaf, entry.intermediate, entry.root, product, trust === 'pinned');
      entry.verifiedFor.add(product);
      this.remember(key, entry);
    }

    // Validity of all three at `now`, on every call.
    const t = now.getTime();
    checkValidity('root', entry.root.cert, t);
    checkValidity('intermediate', entry.intermediate.cert, t);
    checkValidity('leaf', entry.leaf.cert, t);

    const crlChecked =
      opts.crl !== undefined ? this.checkCrl(entry, opts.crl, t, opts.crlGraceMs ?? 0) : false;

    return { report, product, signer, entry, trust, crlChecked };
  }

  /** The checks after the report's signature (`ok`: whether it verified), and the result. */
  private afterSignature(c: UpToSignature, ok: boolean): SnpVerified {
    if (!ok)
      throw new SignatureInvalid('snp.signature', 'report signature does not verify with the leaf key');
    const { report, product, signer, entry, trust, crlChecked } = c;
    // Binding: the leaf certifies exactly the TCB the report says it was derived from.
    const mismatched = tcbMismatches(entry.leaf, report.reportedTcb, product);
    if (mismatched.length > 0) {
      throw new BindingMismatch(
        'snp.reported_tcb_mismatch',
        `REPORTED_TCB differs from the ${signer} TCB in: ${mismatched.join(', ')}`,
      );
    }
    checkTcbNotAboveCurrent(report, entry.leaf, product);
    const chipIdChecked = checkChipId(report, entry.leaf, product);

    return {
      report,
      product,
      signer,
      leaf: leafInfo(entry.leaf, product),
      chipIdChecked,
      crlChecked,
      rootSha256: entry.rootSha256,
      rootTrust: trust,
    };
  }

  /** The cached entry for these certificates (most recently used), or a new, not yet cached one. */
  private entryFor(key: string, certs: SnpCerts): ChainEntry {
    const hit = this.chains.get(key);
    if (hit) {
      this.chains.delete(key);
      this.chains.set(key, hit);
      return hit;
    }
    // Parse private copies: the entry must not change if the caller reuses its buffers.
    const leaf = parseAmdLeaf(Uint8Array.from(certs.leaf));
    const intermediate = parseAmdCa(Uint8Array.from(certs.intermediate), 'intermediate');
    const root = parseRoot(certs.root);
    return {
      leaf,
      intermediate,
      root,
      rootSha256: root.cert.sha256,
      verifiedFor: new Set(),
      crls: new Map(),
    };
  }

  /** Caches an entry once its chain verified, so chains that fail never displace ones that pass. */
  private remember(key: string, entry: ChainEntry): void {
    if (this.chains.has(key)) return;
    if (this.chains.size >= this.maxEntries) {
      const oldest = this.chains.keys().next();
      if (!oldest.done) this.chains.delete(oldest.value);
    }
    this.chains.set(key, entry);
  }

  /** RFC 5280 §6.3.3 with an ARK-issued CRL: signature, issuer, dates, then the intermediate's serial. */
  private checkCrl(entry: ChainEntry, crlDer: Uint8Array, now: number, graceMs: number): boolean {
    if (!(crlDer instanceof Uint8Array))
      throw new InvalidArgument('snp.options.crl', 'crl must be DER bytes');
    const key = createHash('sha256').update(crlDer).digest('hex');
    let c = entry.crls.get(key);
    if (!c) {
      const crl = parseCrl(crlDer);
      verifyCrlSignature(crl, entry.root);
      c = {
        thisUpdate: crl.thisUpdate,
        ...(crl.nextUpdate ? { nextUpdate: crl.nextUpdate } : {}),
        revoked: crl.revokedSerials.has(toHex(entry.intermediate.cert.serialNumber)),
      };
      // Bounded: a chain has one current CRL; a few older ones may still be presented during rollover.
      if (entry.crls.size >= MAX_CRLS_PER_CHAIN) entry.crls.clear();
      entry.crls.set(key, c);
    }
    if (now < c.thisUpdate.getTime()) {
      throw new ChainInvalid(
        'snp.crl.not_yet_valid',
        `CRL thisUpdate ${c.thisUpdate.toISOString()} is after now`,
      );
    }
    // A CRL past nextUpdate may miss newer revocations: the caller must fetch a fresh one (or, within an
    // operator-set grace, accepts that risk while KDS is unreachable).
    if (!(graceMs >= 0)) throw new InvalidArgument('snp.options.crl', 'crlGraceMs must be >= 0');
    if (c.nextUpdate && now > c.nextUpdate.getTime() + graceMs) {
      throw new ChainInvalid('snp.crl.expired', `CRL nextUpdate ${c.nextUpdate.toISOString()} has passed`);
    }
    if (c.revoked) {
      throw new ChainInvalid(
        'snp.intermediate_revoked',
        `the intermediate (serial ${toHex(entry.intermediate.cert.serialNumber)}) is revoked`,
      );
    }
    return true;
  }
}

/** AMD's ARKs, parsed once per process (they are constants; parsing one costs ~0.1 ms of key import). */
const pinnedRoots = new Map<string, AmdCa>();

function parseRoot(der: Uint8Array): AmdCa {
  const sha = createHash('sha256').update(der).digest('hex');
  const pinned = Object.values(PINNED_ARK_SHA256).includes(sha);
  const cached = pinned ? pinnedRoots.get(sha) : undefined;
  if (cached) return cached;
  const root = parseAmdCa(Uint8Array.from(der), 'root');
  if (pinned) pinnedRoots.set(sha, root);
  return root;
}

/**
 * Verifies one report with nothing cached but the pinned roots' self-signatures (a cold verification).
 * For many reports, keep one {@link SnpVerifier}. Throws as {@link SnpVerifier.verify}.
 */
export function verifySnp(report: SnpReport, opts: SnpVerifyOptions): SnpVerified {
  return new SnpVerifier({ maxEntries: 1 }).verify(report, opts);
}

function checkNow(now: unknown): Date {
  if (!(now instanceof Date) || Number.isNaN(now.getTime())) {
    throw new InvalidArgument('snp.options.now', 'options.now must be a valid Date');
  }
  return now;
}

function checkCerts(c: SnpCerts | undefined): SnpCerts {
  if (
    !c ||
    !(c.leaf instanceof Uint8Array) ||
    !(c.intermediate instanceof Uint8Array) ||
    !(c.root instanceof Uint8Array)
  ) {
    throw new InvalidArgument(
      'snp.options.certs',
      'options.certs must hold leaf, intermediate and root DER bytes',
    );
  }
  return c;
}

function signerFrom(signingKey: number): AmdSigner {
  if (signingKey === SigningKey.VCEK) return 'VCEK';
  if (signingKey === SigningKey.VLEK) return 'VLEK';
  if (signingKey === SigningKey.None) {
    throw new SignatureInvalid('snp.signing_key_none', 'SIGNING_KEY is 7 (none): the report is not signed');
  }
  throw new MalformedEvidence('snp.report.signer_info', `SIGNING_KEY ${signingKey} is reserved`);
}

/**
 * The product: from CPUID for v3+ reports, else the leaf's productName, else options.product. Every source
 * that is known must agree (BindingMismatch `snp.product_mismatch`).
 */
function resolveProduct(report: SnpReport, leaf: AmdLeaf, option: SnpProduct | undefined): SnpProduct {
  let fromCpuid: SnpProduct | undefined;
  // An all-zero CPUID (firmware that did not fill the v3 fields) names nothing: fall back as for v2.
  const c = report.cpuid;
  if (c && (c.family | c.model | c.stepping) !== 0) {
    fromCpuid = productFromCpuid(c.family, c.model);
    if (!fromCpuid) {
      throw new NotSupported(
        'snp.product_unknown',
        `CPUID family 0x${c.family.toString(16)} model 0x${c.model.toString(16)} is no supported product`,
      );
    }
  }
  const sources: [string, SnpProduct | undefined][] = [
    ['report CPUID', fromCpuid],
    [`leaf productName "${leaf.productName ?? ''}"`, leaf.product],
    ['options.product', option],
  ];
  const known = sources.filter((s): s is [string, SnpProduct] => s[1] !== undefined);
  const first = known[0];
  if (!first) {
    throw new InvalidArgument(
      'snp.product_required',
      'a report without CPUID whose leaf productName names no product needs options.product',
    );
  }
  for (const [what, p] of known) {
    if (p !== first[1]) {
      throw new BindingMismatch('snp.product_mismatch', `${first[0]} says ${first[1]}, ${what} says ${p}`);
    }
  }
  return first[1];
}

/**
 * The report signature's check as node:crypto's verify takes it: ECDSA P-384 / SHA-384 over bytes
 * [0, 0x2A0) (ABI 56860 Table 23), the leaf's key, and R || S as a 96-byte big-endian IEEE P1363 signature.
 */
function signatureCheck(c: UpToSignature): [Uint8Array, VerifyKeyObjectInput, Buffer] {
  return [
    c.report.raw.subarray(0, SIGNED_LENGTH),
    { key: c.entry.leaf.publicKey, dsaEncoding: 'ieee-p1363' },
    reportSignature(c.report),
  ];
}

/**
 * R || S big-endian (IEEE P1363) from the report's little-endian 72-byte fields, whose upper 24 bytes must be
 * zero (Table 139). Throws SignatureInvalid `snp.signature_format`.
 */
function reportSignature(report: SnpReport): Buffer {
  const { r, s } = report.signature;
  const sig = Buffer.allocUnsafe(96);
  let high = 0;
  for (let i = 0; i < 48; i++) {
    sig[47 - i] = r[i]!;
    sig[95 - i] = s[i]!;
  }
  for (let i = 48; i < 72; i++) high |= r[i]! | s[i]!;
  if (high !== 0 || r.length !== 72 || s.length !== 72) {
    throw new SignatureInvalid('snp.signature_format', 'signature R/S exceed 384 bits');
  }
  return sig;
}

/**
 * A5 step 10, "cert TCB <= CURRENT_TCB": the TCB the leaf certifies (equal to REPORTED_TCB, checked just
 * before) is at most CURRENT_TCB in every component the product defines (fmc on Turin, bootloader, tee, snp,
 * microcode), as go-sev-guest's validate does. Firmware can derive the key of its own TCB or of an older
 * one (the host may set REPORTED_TCB below CURRENT_TCB to keep a cached VCEK during a rollout), never of a
 * newer one: a report signed with a key newer than the firmware that says it produced it is inconsistent,
 * and accepting it would let `minimumTcb` (checked against REPORTED_TCB) vouch for firmware that does not
 * run. Checked here, not in appraisal, because it relates the certificate to the report and no policy may
 * waive it: every caller gets it. Reserved bytes have no order and are not compared.
 *
 * Throws BindingMismatch `snp.reported_tcb_above_current`, naming the components, expected and actual.
 */
function checkTcbNotAboveCurrent(report: SnpReport, leaf: AmdLeaf, product: SnpProduct): void {
  const certified = leafTcb(leaf, product);
  const current = decodeTcb(report.currentTcb, product);
  const above = tcbComponentsBelow(current, certified);
  if (above.length > 0) {
    throw new BindingMismatch(
      'snp.reported_tcb_above_current',
      `the ${leaf.kind} TCB (REPORTED_TCB) is above CURRENT_TCB in: ${above.join(', ')}; ` +
        `expected <= ${formatTcb(current)}, actual ${formatTcb(certified)}`,
    );
  }
}

/**
 * CHIP_ID == hwID for a VCEK (Turin: CHIP_ID[0:8] == the 8-byte hwID). Skipped, and reported as not
 * checked, when CHIP_ID is all zero (the host set MASK_CHIP_ID) or the signer is a VLEK (no hwID).
 */
function checkChipId(report: SnpReport, leaf: AmdLeaf, product: SnpProduct): boolean {
  if (!leaf.hwId || isAllZero(report.chipId)) return false;
  const n = product === 'Turin' ? 8 : 64;
  const chip = report.chipId.subarray(0, n);
  if (leaf.hwId.length !== n || Buffer.compare(chip, leaf.hwId) !== 0) {
    throw new BindingMismatch('snp.chip_id_mismatch', 'CHIP_ID does not match the VCEK hwID');
  }
  return true;
}

/** A fresh object per result (copies of mutable parts) so callers cannot alter what the cache relies on. */
function leafInfo(leaf: AmdLeaf, product: SnpProduct): SnpLeafInfo {
  return {
    kind: leaf.kind,
    sha256: leaf.cert.sha256,
    ...(leaf.productName !== undefined ? { productName: leaf.productName } : {}),
    ...(leaf.stepping !== undefined ? { stepping: leaf.stepping } : {}),
    ...(leaf.structVersion !== undefined ? { structVersion: leaf.structVersion } : {}),
    tcb: leafTcb(leaf, product),
    spl: { ...leaf.spl },
    ...(leaf.hwId ? { hwId: Uint8Array.from(leaf.hwId) } : {}),
    ...(leaf.cspId !== undefined ? { cspId: leaf.cspId } : {}),
    notBefore: new Date(leaf.cert.notBefore.getTime()),
    notAfter: new Date(leaf.cert.notAfter.getTime()),
  };
}
