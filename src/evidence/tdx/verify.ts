import { createHash, createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { BindingMismatch, CollateralUnavailable, MalformedEvidence, SignatureInvalid } from '../../errors.js';
import {
  type PckSgxExtension,
  parsePckSgxExtension,
  SGX_EXTENSION_OID,
} from '../../formats/tdx/pck-extension.js';
import type { TdxQuote } from '../../formats/tdx/quote.js';
import { ctEqual, isAllZero, toHex } from '../../util/bytes.js';
import { extensionValue } from '../snp/x509.js';
import { checkCrl, checkWindow, type IntelChain, readPemChain, verifyIntelChain } from './chain.js';
import {
  checkCollateralDates,
  collateralDigest,
  type TdxCollateral,
  type VerifiedCollateral,
  verifyCollateralSignatures,
} from './collateral.js';
import { normalizeTdxRoots } from './roots.js';
import { evaluateTdxTcb, type TdxTcbEvaluation } from './tcb.js';

/**
 * Verification of a parsed TDX quote (Intel TDX DCAP Quote Verification; the checks of go-tdx-guest's
 * verify.TdxQuote, shared/reference/snp-tdx.md §B), in this order:
 * 1. the PCK chain from the quote's certification data chains to a trusted root (Intel's, pinned) and is
 *    valid at `now`;
 * 2. the collateral's signatures (TCB Info, QE Identity, by the TCB Signing chain to the same roots) and
 *    dates; the CRLs (Root CA CRL by the root, PCK CRL by the PCK's CA) unless `checkRevocations: false`;
 * 3. the QE report is signed by the PCK key;
 * 4. the QE report binds the attestation key: REPORTDATA = SHA-256(attestation key || QE auth data) || 32 zeros;
 * 5. the quote (header and body) is signed by the attestation key;
 * 6. TCB evaluation (src/evidence/tdx/tcb.ts): the status is a result, not a refusal; the policy decides.
 * No policy decision is made here.
 */

export interface TdxVerifyOptions {
  /** The collateral (from PCS, a cache, or an offline directory). Absent: CollateralUnavailable. */
  readonly collateral?: TdxCollateral;
  /** The clock for certificate, CRL and collateral validity. */
  readonly now: Date;
  /** SHA-256 (hex) of roots trusted besides Intel's pinned root (the simulator's). */
  readonly trustedRoots?: readonly string[];
  /** Check the PCK CRL and the Root CA CRL (default true: both must be in the collateral). */
  readonly checkRevocations?: boolean;
  /** The verifier (and its caches); default one per process. */
  readonly verifier?: TdxVerifier;
}

export interface TdxVerified {
  readonly quote: TdxQuote;
  readonly pck: PckSgxExtension;
  readonly tcb: TdxTcbEvaluation;
  /** Whether the CRLs were checked. */
  readonly revocationChecked: boolean;
  /** SHA-256 (hex) of the signed quote bytes (header and body). */
  readonly evidenceDigest: string;
}

interface VerifiedPck {
  readonly chain: IntelChain;
  readonly ext: PckSgxExtension;
}

/**
 * Verified chains, collateral and CRL signatures are cached by digest (64 entries each); dates, serials and
 * the TCB are checked on every call.
 */
export const TDX_CACHE_ENTRIES = 64;

function remember<V>(m: Map<string, V>, k: string, v: V): V {
  if (m.size >= TDX_CACHE_ENTRIES) m.delete(m.keys().next().value as string);
  m.set(k, v);
  return v;
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Imports the attestation key: raw x||y on P-256. Throws MalformedEvidence `tdx.quote.attestation_key`. */
function attestationKey(raw: Uint8Array): KeyObject {
  try {
    return createPublicKey({
      key: {
        kty: 'EC',
        crv: 'P-256',
        x: Buffer.from(raw.subarray(0, 32)).toString('base64url'),
        y: Buffer.from(raw.subarray(32, 64)).toString('base64url'),
      },
      format: 'jwk',
    });
  } catch (e) {
    throw new MalformedEvidence('tdx.quote.attestation_key', 'the attestation key is not a P-256 point', {
      cause: e,
    });
  }
}

function p1363Verify(data: Uint8Array, key: KeyObject, sig: Uint8Array): boolean {
  try {
    return cryptoVerify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, sig);
  } catch {
    return false;
  }
}

/** A TDX verifier with caches of verified PCK chains and collateral. */
export class TdxVerifier {
  private readonly chains = new Map<string, VerifiedPck>();
  private readonly collateral = new Map<string, VerifiedCollateral>();
  /** CRL signatures found good, by CRL and issuer digest. */
  private readonly crlSignatures = new Set<string>();

  /** Verifies `quote`; see the module comment for the steps and the codes thrown. */
  verify(quote: TdxQuote, opts: TdxVerifyOptions): TdxVerified {
    const roots = normalizeTdxRoots(opts.trustedRoots);
    const rootsKey = roots.join(',');
    const now = opts.now;
    const checkRevocations = opts.checkRevocations !== false;

    // 1. PCK chain (cached by its bytes and the trusted roots). A platform sends the same chain in every
    // quote: equal bytes to the last chain seen (a memcmp) reuse its digest instead of hashing ~4 KiB.
    const chainKey = this.chainKeyOf(rootsKey, quote.pckChainPem);
    let pck = this.chains.get(chainKey);
    if (!pck) {
      const chain = verifyIntelChain(readPemChain(quote.pckChainPem, 'pck'), roots, 'pck');
      const ext = extensionValue(chain.certs[0]!, SGX_EXTENSION_OID);
      if (!ext) throw new MalformedEvidence('tdx.pck.sgx_extension', 'the PCK has no SGX extension');
      pck = remember(this.chains, chainKey, { chain, ext: parsePckSgxExtension(ext) });
    }
    checkWindow(pck.chain, now, 'PCK');

    // 2. Collateral.
    if (!opts.collateral)
      throw new CollateralUnavailable('tdx.collateral.missing', 'TDX verification needs collateral');
    const colKey = `${rootsKey}|${collateralDigest(opts.collateral)}`;
    const col =
      this.collateral.get(colKey) ??
      remember(this.collateral, colKey, verifyCollateralSignatures(opts.collateral, roots));
    checkCollateralDates(col, now);
    if (checkRevocations) {
      if (!col.pckCrl || !col.rootCaCrl)
        throw new CollateralUnavailable(
          'tdx.collateral.crl_missing',
          'revocation checking needs the PCK CRL and the Root CA CRL',
        );
      const certs = pck.chain.certs;
      const root = certs[certs.length - 1]!;
      const intermediates = certs.slice(1, -1).map((c) => ({ hex: toHex(c.serialNumber), role: 'PCK CA' }));
      const signers = [col.tcbSigning.certs[0]!, col.qeSigning.certs[0]!].map((c) => ({
        hex: toHex(c.serialNumber),
        role: 'TCB Signing',
      }));
      if (this.crlSignatures.size >= TDX_CACHE_ENTRIES) this.crlSignatures.clear();
      checkCrl(
        col.rootCaCrl,
        root,
        this.keyOf(root),
        now,
        [...intermediates, ...signers],
        'Root CA',
        this.crlSignatures,
      );
      const pckCa = certs[1]!;
      checkCrl(
        col.pckCrl,
        pckCa,
        this.keyOf(pckCa),
        now,
        [{ hex: toHex(certs[0]!.serialNumber), role: 'PCK' }],
        'PCK',
        this.crlSignatures,
      );
    }

    // 3. The QE report is signed by the PCK.
    if (!p1363Verify(quote.qeReport.raw, pck.chain.leafKey, quote.qeReportSignature))
      throw new SignatureInvalid(
        'tdx.qe_report.signature',
        'the QE report signature does not verify with the PCK',
      );
    // 4. The QE vouches for the attestation key: REPORTDATA = SHA-256(key || auth data) || zeros.
    const binding = createHash('sha256').update(quote.attestationKey).update(quote.qeAuthData).digest();
    const rd = quote.qeReport.reportData;
    if (!ctEqual(rd.subarray(0, 32), binding) || !isAllZero(rd.subarray(32)))
      throw new BindingMismatch('tdx.qe_report.binding', 'the QE report does not bind the attestation key');
    // 5. The quote is signed by the attestation key.
    if (!p1363Verify(quote.signed, attestationKey(quote.attestationKey), quote.signature))
      throw new SignatureInvalid('tdx.quote.signature', 'the quote signature does not verify');

    // 6. TCB evaluation.
    const tcb = evaluateTdxTcb(quote.body, quote.qeReport, pck.ext, col.tcbInfo, col.qeIdentity);
    return {
      quote,
      pck: pck.ext,
      tcb,
      revocationChecked: checkRevocations,
      evidenceDigest: sha256(quote.signed),
    };
  }

  private lastChain: { readonly pem: Uint8Array; readonly key: string; readonly roots: string } | undefined;
  private chainKeyOf(rootsKey: string, pem: Uint8Array): string {
    const last = this.lastChain;
    if (
      last &&
      last.roots === rootsKey &&
      Buffer.from(pem.buffer, pem.byteOffset, pem.byteLength).equals(last.pem)
    ) {
      return last.key;
    }
    const key = `${rootsKey}|${sha256(pem)}`;
    this.lastChain = { pem: pem.slice(), key, roots: rootsKey };
    return key;
  }

  private readonly keys = new Map<string, KeyObject>();
  private keyOf(c: IntelChain['certs'][number]): KeyObject {
    let k = this.keys.get(c.sha256);
    if (!k) {
      k = createPublicKey({ key: Buffer.from(c.subjectPublicKeyInfo), format: 'der', type: 'spki' });
      remember(this.keys, c.sha256, k);
    }
    return k;
  }
}

const shared = new TdxVerifier();

/** Verifies a parsed quote with the process's shared verifier (or `opts.verifier`). */
export function verifyTdx(quote: TdxQuote, opts: TdxVerifyOptions): TdxVerified {
  const v = opts.verifier ?? shared;
  return v.verify(quote, opts);
}
