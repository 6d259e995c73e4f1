import * as nodeCrypto from 'node:crypto';
import { createHash, createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import {
  BindingMismatch,
  CollateralUnavailable,
  InvalidArgument,
  MalformedEvidence,
  SignatureInvalid,
} from '../../errors.js';
import {
  type PckSgxExtension,
  parsePckSgxExtension,
  SGX_EXTENSION_OID,
} from '../../formats/tdx/pck-extension.js';
import type { TdxQuote } from '../../formats/tdx/quote.js';
import { bytesEqual, ctEqual, isAllZero, toHex } from '../../util/bytes.js';
import { extensionValue } from '../snp/x509.js';
import {
  checkCrl,
  checkCrlDates,
  checkWindow,
  type IntelChain,
  readPemChain,
  verifyIntelChain,
} from './chain.js';
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
 * Verified chains, collateral, CRL signatures and imported attestation keys are cached by digest or exact
 * bytes (64 entries each), which (chain, collateral) pairs passed their CRL checks, and the last TCB
 * evaluation with its exact inputs; dates, the QE report signature and binding and the quote signature are
 * checked on every call.
 */
export const TDX_CACHE_ENTRIES = 64;

function remember<V>(m: Map<string, V>, k: string, v: V): V {
  if (m.size >= TDX_CACHE_ENTRIES) m.delete(m.keys().next().value as string);
  m.set(k, v);
  return v;
}

/**
 * SHA-256 by node:crypto's one-shot `hash` (Node >= 20.12: no Hash object per call, about half the cost for
 * the few hundred bytes hashed per quote), by createHash on older Node (engines allows 20.0).
 */
const oneShot = (nodeCrypto as { hash?: (alg: string, data: Uint8Array, enc: string) => unknown }).hash;
function sha256(b: Uint8Array): string;
function sha256(b: Uint8Array, raw: 'buffer'): Buffer;
function sha256(b: Uint8Array, raw?: 'buffer'): string | Buffer {
  if (oneShot) return oneShot('sha256', b, raw ?? 'hex') as string | Buffer;
  const h = createHash('sha256').update(b);
  return raw ? h.digest() : h.digest('hex');
}

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

/** A TCB evaluation frozen through its matches and advisory lists (it is shared between calls). */
function frozen(t: TdxTcbEvaluation): TdxTcbEvaluation {
  for (const m of [t.platform, t.tdxModule, t.qe]) {
    if (m) Object.freeze(Object.freeze(m).advisoryIds);
  }
  Object.freeze(t.advisoryIds);
  return Object.freeze(t);
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
    const rootsKey = roots.length === 1 ? roots[0]! : roots.join(',');
    // An invalid Date compares false with every bound, so it would pass every validity window.
    if (!(opts.now instanceof Date) || Number.isNaN(opts.now.getTime())) {
      throw new InvalidArgument('tdx.options.now', 'options.now must be a valid Date');
    }
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
    const col = this.collateralOf(rootsKey, collateralDigest(opts.collateral), opts.collateral, roots);
    checkCollateralDates(col, now);
    if (checkRevocations) {
      const { rootCaCrl, pckCrl } = col;
      if (!pckCrl || !rootCaCrl)
        throw new CollateralUnavailable(
          'tdx.collateral.crl_missing',
          'revocation checking needs the PCK CRL and the Root CA CRL',
        );
      // Everything checkCrl checks but the dates is a function of this chain's certificates and this
      // collateral's CRLs and signer certificates: the pair, each cached by its exact bytes. Once the pair
      // passed, only the CRLs' dates are left to check; a new CRL is new collateral, checked in full.
      if (this.crlPassed.get(pck)?.has(col)) {
        checkCrlDates(rootCaCrl, now, 'Root CA');
        checkCrlDates(pckCrl, now, 'PCK');
      } else {
        this.checkRevocation(pck, col, rootCaCrl, pckCrl, now);
        const passed = this.crlPassed.get(pck) ?? new WeakSet<VerifiedCollateral>();
        this.crlPassed.set(pck, passed.add(col));
      }
    }

    // 3. The QE report is signed by the PCK.
    if (!p1363Verify(quote.qeReport.raw, pck.chain.leafKey, quote.qeReportSignature))
      throw new SignatureInvalid(
        'tdx.qe_report.signature',
        'the QE report signature does not verify with the PCK',
      );
    // 4. The QE vouches for the attestation key: REPORTDATA = SHA-256(key || auth data) || zeros.
    const binding = sha256(Buffer.concat([quote.attestationKey, quote.qeAuthData]), 'buffer');
    const rd = quote.qeReport.reportData;
    if (!ctEqual(rd.subarray(0, 32), binding) || !isAllZero(rd.subarray(32)))
      throw new BindingMismatch('tdx.qe_report.binding', 'the QE report does not bind the attestation key');
    // 5. The quote is signed by the attestation key.
    if (!p1363Verify(quote.signed, this.attestationKeyOf(quote.attestationKey), quote.signature))
      throw new SignatureInvalid('tdx.quote.signature', 'the quote signature does not verify');

    // 6. TCB evaluation.
    const tcb = this.tcbOf(quote, pck, col);
    return {
      quote,
      pck: pck.ext,
      tcb,
      revocationChecked: checkRevocations,
      evidenceDigest: sha256(quote.signed),
    };
  }

  /** Pairs of a verified PCK chain and verified collateral whose CRL checks (but the dates) passed. */
  private readonly crlPassed = new WeakMap<VerifiedPck, WeakSet<VerifiedCollateral>>();

  /** The Root CA CRL must not list the PCK CA or a TCB Signing certificate, the PCK CRL not the PCK. */
  private checkRevocation(
    pck: VerifiedPck,
    col: VerifiedCollateral,
    rootCaCrl: NonNullable<VerifiedCollateral['rootCaCrl']>,
    pckCrl: NonNullable<VerifiedCollateral['pckCrl']>,
    now: Date,
  ): void {
    const certs = pck.chain.certs;
    const root = certs[certs.length - 1]!;
    const intermediates = certs.slice(1, -1).map((c) => ({ hex: toHex(c.serialNumber), role: 'PCK CA' }));
    const signers = [col.tcbSigning.certs[0]!, col.qeSigning.certs[0]!].map((c) => ({
      hex: toHex(c.serialNumber),
      role: 'TCB Signing',
    }));
    if (this.crlSignatures.size >= TDX_CACHE_ENTRIES) this.crlSignatures.clear();
    checkCrl(
      rootCaCrl,
      root,
      this.keyOf(root),
      now,
      [...intermediates, ...signers],
      'Root CA',
      this.crlSignatures,
    );
    const pckCa = certs[1]!;
    checkCrl(
      pckCrl,
      pckCa,
      this.keyOf(pckCa),
      now,
      [{ hex: toHex(certs[0]!.serialNumber), role: 'PCK' }],
      'PCK',
      this.crlSignatures,
    );
  }

  /**
   * Attestation keys imported, by their exact 64 bytes (hex). A QE keeps its attestation key across quotes,
   * and the import (a JWK import with its on-curve check, ~45 µs, then ~15 µs more on the key's first use and
   * again when the garbage collector frees it) is a function of those bytes alone: the same bytes always give
   * the same key, and bytes that are not a P-256 point throw and are never remembered. Whether the QE vouches
   * for the key (its report's signature and binding) is still checked for every quote.
   */
  private readonly attestationKeys = new Map<string, KeyObject>();
  private lastAttestationKey: { readonly raw: Uint8Array; readonly key: KeyObject } | undefined;
  private attestationKeyOf(raw: Uint8Array): KeyObject {
    const last = this.lastAttestationKey;
    if (last && bytesEqual(last.raw, raw)) return last.key;
    const id = toHex(raw);
    const key = this.attestationKeys.get(id) ?? remember(this.attestationKeys, id, attestationKey(raw));
    this.lastAttestationKey = { raw: raw.slice(), key };
    return key;
  }

  /** The last collateral looked up: the same digest under the same roots skips building its map key. */
  private lastCol:
    | { readonly roots: string; readonly digest: string; readonly col: VerifiedCollateral }
    | undefined;
  private collateralOf(
    rootsKey: string,
    digest: string,
    c: TdxCollateral,
    roots: readonly string[],
  ): VerifiedCollateral {
    const last = this.lastCol;
    // The entry stays good after the map evicts it: it is the verification of exactly these bytes.
    if (last && last.roots === rootsKey && last.digest === digest) return last.col;
    const key = `${rootsKey}|${digest}`;
    const col =
      this.collateral.get(key) ?? remember(this.collateral, key, verifyCollateralSignatures(c, roots));
    this.lastCol = { roots: rootsKey, digest, col };
    return col;
  }

  /**
   * The last TCB evaluation. evaluateTdxTcb is a function of the verified collateral's TCB Info and QE
   * Identity, the PCK's SGX extension (both kept with what was verified from their exact bytes) and eight
   * quote fields: TEE_TCB_SVN, MRSIGNERSEAM, SEAM_ATTRIBUTES and the QE report's MISCSELECT, ATTRIBUTES,
   * MRSIGNER, ISVPRODID, ISVSVN. The result is reused only for the same collateral and extension objects and
   * equal bytes of every field (a platform sends the same ones in every quote); it is frozen, as calls share it.
   * A mismatch throws and is not remembered.
   */
  private lastTcb:
    | {
        readonly col: VerifiedCollateral;
        readonly ext: PckSgxExtension;
        readonly teeTcbSvn: Uint8Array;
        readonly mrSignerSeam: Uint8Array;
        readonly seamAttributes: Uint8Array;
        readonly qeAttributes: Uint8Array;
        readonly qeMrSigner: Uint8Array;
        readonly miscSelect: number;
        readonly isvProdId: number;
        readonly isvSvn: number;
        readonly tcb: TdxTcbEvaluation;
      }
    | undefined;
  private tcbOf(quote: TdxQuote, pck: VerifiedPck, col: VerifiedCollateral): TdxTcbEvaluation {
    const b = quote.body;
    const r = quote.qeReport;
    const l = this.lastTcb;
    if (
      l &&
      l.col === col &&
      l.ext === pck.ext &&
      l.miscSelect === r.miscSelect &&
      l.isvProdId === r.isvProdId &&
      l.isvSvn === r.isvSvn &&
      bytesEqual(l.teeTcbSvn, b.teeTcbSvn) &&
      bytesEqual(l.mrSignerSeam, b.mrSignerSeam) &&
      bytesEqual(l.seamAttributes, b.seamAttributes) &&
      bytesEqual(l.qeAttributes, r.attributes) &&
      bytesEqual(l.qeMrSigner, r.mrSigner)
    )
      return l.tcb;
    const tcb = frozen(evaluateTdxTcb(b, r, pck.ext, col.tcbInfo, col.qeIdentity));
    this.lastTcb = {
      col,
      ext: pck.ext,
      teeTcbSvn: b.teeTcbSvn.slice(),
      mrSignerSeam: b.mrSignerSeam.slice(),
      seamAttributes: b.seamAttributes.slice(),
      qeAttributes: r.attributes.slice(),
      qeMrSigner: r.mrSigner.slice(),
      miscSelect: r.miscSelect,
      isvProdId: r.isvProdId,
      isvSvn: r.isvSvn,
      tcb,
    };
    return tcb;
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
