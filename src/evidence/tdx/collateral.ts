import { createHash, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { ChainInvalid, CollateralUnavailable, MalformedEvidence, SignatureInvalid } from '../../errors.js';
import {
  parseTdQeIdentity,
  parseTdxTcbInfo,
  type TdQeIdentity,
  type TdxTcbInfo,
} from '../../formats/tdx/collateral-json.js';
import type { SignedCollateral, TdxCollateral } from '../../formats/tdx/collateral-source.js';
import { type AmdCrl, parseCrl } from '../snp/crl.js';
import { checkWindow, type IntelChain, verifyIntelChain } from './chain.js';

export type { SignedCollateral, TdxCollateral } from '../../formats/tdx/collateral-source.js';

/** Collateral after its signatures were checked (dates are checked at each use). */
export interface VerifiedCollateral {
  readonly tcbInfo: TdxTcbInfo;
  readonly qeIdentity: TdQeIdentity;
  readonly tcbSigning: IntelChain;
  readonly qeSigning: IntelChain;
  readonly pckCrl?: AmdCrl;
  readonly rootCaCrl?: AmdCrl;
  /**
   * Epoch ms of the latest start and the earliest end of the four windows {@link checkCollateralDates}
   * checks (both signing chains, both bodies): each check passes exactly when `now` is inside its own
   * window, so all four pass exactly when `now` is inside this one.
   */
  readonly validFrom: number;
  readonly validUntil: number;
}

function verifyBody(c: SignedCollateral, key: KeyObject, what: string): void {
  if (!(c.signature instanceof Uint8Array) || c.signature.length !== 64)
    throw new MalformedEvidence(`tdx.${what}.signature`, `${what} signature is not 64 bytes`);
  let ok = false;
  try {
    ok = cryptoVerify('sha256', c.body, { key, dsaEncoding: 'ieee-p1363' }, c.signature);
  } catch {
    ok = false;
  }
  // Spec step (PCS API v4): the signature covers the body's exact bytes, not a re-serialisation.
  if (!ok) throw new SignatureInvalid(`tdx.${what}.signature`, `${what} signature does not verify`);
}

/** The parts a remembered digest was computed over, by reference. */
interface RememberedDigest {
  readonly parts: readonly unknown[];
  readonly digest: string;
}

const digests = new WeakMap<TdxCollateral, RememberedDigest>();

/** Every object and byte array the digest covers, in a fixed order (the issuer chains' arrays and members too). */
function partsOf(c: TdxCollateral): unknown[] {
  const out: unknown[] = [];
  for (const s of [c.tcbInfo, c.qeIdentity]) {
    out.push(
      s,
      s?.body,
      s?.signature,
      s?.issuerChain,
      ...(Array.isArray(s?.issuerChain) ? s.issuerChain : []),
    );
  }
  out.push(c.pckCrl, c.rootCaCrl);
  return out;
}

/** Whether every part of `c` is the object in `parts` (the order of {@link partsOf}), without building the list. */
function sameParts(c: TdxCollateral, parts: readonly unknown[]): boolean {
  let i = 0;
  for (const s of [c.tcbInfo, c.qeIdentity]) {
    if (parts[i++] !== s || parts[i++] !== s?.body || parts[i++] !== s?.signature) return false;
    const chain = s?.issuerChain;
    if (parts[i++] !== chain) return false;
    if (Array.isArray(chain)) for (const x of chain) if (parts[i++] !== x) return false;
  }
  return parts[i++] === c.pckCrl && parts[i++] === c.rootCaCrl && i === parts.length;
}

/**
 * A digest naming one collateral set, for caching its verification. Computed once per collateral object
 * (a WeakMap by identity): a warm verification with the same collateral object then costs a few reference
 * comparisons instead of hashing every body, chain and CRL. The remembered digest is used only while each
 * part is still the same object it was computed over, so a source that swaps in a new CRL or TCB Info
 * (PcsClient hands out new arrays on every call) is digested afresh. Bytes changed in place inside the same
 * array are not seen; the verifier would then keep using what it verified from the original bytes.
 */
export function collateralDigest(c: TdxCollateral): string {
  if (typeof c !== 'object' || c === null) return requireSigned(undefined, 'tcb_info') as never;
  const known = digests.get(c);
  if (known && sameParts(c, known.parts)) return known.digest;
  const digest = hashCollateral(c);
  digests.set(c, { parts: partsOf(c), digest });
  return digest;
}

const isBytes = (x: unknown): x is Uint8Array => x instanceof Uint8Array;

function hashCollateral(c: TdxCollateral): string {
  const h = createHash('sha256');
  for (const [s, what] of [
    [c.tcbInfo, 'tcb_info'],
    [c.qeIdentity, 'qe_identity'],
  ] as const) {
    // What is not bytes cannot be named by a digest: refused here with the reason requireSigned gives.
    const ok = s && isBytes(s.body) && isBytes(s.signature) && Array.isArray(s.issuerChain);
    if (!ok || !s.issuerChain.every(isBytes)) requireSigned(undefined, what);
    for (const part of [s.body, s.signature, ...s.issuerChain]) h.update(String(part.length)).update(part);
  }
  for (const crl of [c.pckCrl, c.rootCaCrl]) {
    if (crl !== undefined && !isBytes(crl)) throw new MalformedEvidence('tdx.crl.der', 'a CRL is bytes');
    h.update(crl ? String(crl.length) : '-').update(crl ?? new Uint8Array(0));
  }
  return h.digest('hex');
}

function requireSigned(c: SignedCollateral | undefined, what: string): SignedCollateral {
  // Also called with undefined by hashCollateral, to throw.
  if (!c || !(c.body instanceof Uint8Array) || !Array.isArray(c.issuerChain) || c.issuerChain.length < 2)
    throw new CollateralUnavailable(
      `tdx.collateral.${what}_missing`,
      `${what} (body, signature, issuer chain) is missing`,
    );
  return c;
}

/**
 * Verifies collateral signatures: each body by the leaf of its issuer chain, each chain to a trusted root;
 * the CRLs are parsed (checked against their issuers where used). Throws CollateralUnavailable
 * `tdx.collateral.*_missing`, ChainInvalid `tdx.chain.*`, SignatureInvalid `tdx.tcb_info.signature` /
 * `tdx.qe_identity.signature`, MalformedEvidence `tdx.tcb_info.json` / `tdx.qe_identity.json` / `tdx.crl.*`.
 */
export function verifyCollateralSignatures(
  c: TdxCollateral,
  trustedRoots: readonly string[],
): VerifiedCollateral {
  const ti = requireSigned(c?.tcbInfo, 'tcb_info');
  const qi = requireSigned(c?.qeIdentity, 'qe_identity');
  const tcbSigning = verifyIntelChain(ti.issuerChain, trustedRoots, 'tcb_signing');
  const qeSigning = verifyIntelChain(qi.issuerChain, trustedRoots, 'tcb_signing');
  verifyBody(ti, tcbSigning.leafKey, 'tcb_info');
  verifyBody(qi, qeSigning.leafKey, 'qe_identity');
  const tcbInfo = parseTdxTcbInfo(ti.body);
  const qeIdentity = parseTdQeIdentity(qi.body);
  const starts = [tcbSigning.notBefore, qeSigning.notBefore, tcbInfo.issueDate, qeIdentity.issueDate];
  const ends = [tcbSigning.notAfter, qeSigning.notAfter, tcbInfo.nextUpdate, qeIdentity.nextUpdate];
  return {
    tcbInfo,
    qeIdentity,
    tcbSigning,
    qeSigning,
    validFrom: Math.max(...starts.map((d) => d.getTime())),
    validUntil: Math.min(...ends.map((d) => d.getTime())),
    ...(c.pckCrl ? { pckCrl: parseCrl(c.pckCrl, 'tdx') } : {}),
    ...(c.rootCaCrl ? { rootCaCrl: parseCrl(c.rootCaCrl, 'tdx') } : {}),
  };
}

/**
 * Checks the dates of verified collateral at `now`: both signing chains valid, and each body current
 * (issueDate <= now <= nextUpdate: Intel's validity window for TCB Info and QE Identity). Throws
 * ChainInvalid `tdx.chain.expired`, `tdx.tcb_info.expired`, `tdx.qe_identity.expired`.
 */
export function checkCollateralDates(v: VerifiedCollateral, now: Date): void {
  // Inside every window: nothing to report. Otherwise (or with an invalid `now`, NaN) the checks below run
  // one by one and name the first window `now` is outside of, as they always have.
  const t = now.getTime();
  if (t >= v.validFrom && t <= v.validUntil) return;
  checkWindow(v.tcbSigning, now, 'TCB Info signing');
  checkWindow(v.qeSigning, now, 'QE Identity signing');
  for (const [what, body] of [
    ['tcb_info', v.tcbInfo],
    ['qe_identity', v.qeIdentity],
  ] as const) {
    if (now < body.issueDate || now > body.nextUpdate)
      throw new ChainInvalid(
        `tdx.${what}.expired`,
        `${what} is valid ${body.issueDate.toISOString()}..${body.nextUpdate.toISOString()}, not at ${now.toISOString()}`,
      );
  }
}
