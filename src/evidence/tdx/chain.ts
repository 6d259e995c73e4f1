import { createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { ChainInvalid, MalformedEvidence } from '../../errors.js';
import { decodePem } from '../../formats/pem.js';
import type { CertificateList } from '../../formats/x509/crl.js';
import { bytesEqual } from '../../util/bytes.js';
import { basicConstraints, checkCriticalExtensions, Oid, parseX509, type X509Cert } from '../snp/x509.js';

/**
 * Intel's certificate chains (Intel "SGX PCK Certificate and CRL Profile"): PCK leaf → PCK Platform or
 * Processor CA → Intel SGX Root CA, and TCB Signing → Root CA for the collateral. Every certificate is
 * ECDSA P-256 with SHA-256. The root must be one of the trusted digests (Intel's pinned root, plus any the
 * caller configured) and its self-signature must verify; each link checks names, signature, CA flag and
 * validity at `now`. Throws ChainInvalid `tdx.chain.*` (`<what>` names the chain: `pck`, `tcb_signing`).
 */

/** ecdsa-with-SHA256 (RFC 5758 §3.2). */
export const ECDSA_SHA256 = '1.2.840.10045.4.3.2';
/** Intel's chains have 2 or 3 certificates; this bounds hostile input. */
const MAX_CHAIN = 4;

export interface IntelChain {
  /** Leaf first, root last. */
  readonly certs: readonly X509Cert[];
  readonly leafKey: KeyObject;
  /** The latest notBefore and earliest notAfter of the chain: the window in which it is valid. */
  readonly notBefore: Date;
  readonly notAfter: Date;
}

const KNOWN_CRITICAL = [Oid.basicConstraints, Oid.keyUsage];

/** Splits PEM text (trailing NULs, as QEs write them, removed) into DER certificates. */
export function readPemChain(pem: Uint8Array | string, what: string): Uint8Array[] {
  let text = typeof pem === 'string' ? pem : Buffer.from(pem).toString('latin1');
  text = text.replace(/\0+$/, '');
  const blocks = decodePem(text, `tdx.${what}`);
  if (blocks.length < 2 || blocks.length > MAX_CHAIN || blocks.some((b) => b.label !== 'CERTIFICATE'))
    throw new MalformedEvidence(`tdx.${what}.pem`, `${what}: expected 2-${MAX_CHAIN} CERTIFICATE blocks`);
  return blocks.map((b) => b.der);
}

/** Whether `issuer` signed `signed` (ECDSA P-256 / SHA-256 over the TBS bytes). */
export function signedBy(
  signed: { tbs: Uint8Array; signatureValue: Uint8Array },
  issuer: KeyObject,
): boolean {
  try {
    return cryptoVerify('sha256', signed.tbs, issuer, signed.signatureValue);
  } catch {
    return false;
  }
}

/** The certificate's public key (node:crypto), from its SubjectPublicKeyInfo. */
export function spkiKey(c: X509Cert, what: string): KeyObject {
  try {
    return createPublicKey({ key: Buffer.from(c.subjectPublicKeyInfo), format: 'der', type: 'spki' });
  } catch (e) {
    throw new MalformedEvidence(`tdx.${what}.key`, `${what}: unusable public key`, { cause: e });
  }
}

/**
 * Verifies `ders` (leaf first) as a chain to a trusted root. Structure and signatures only: dates are
 * checked by {@link checkWindow} at each use, so a verified chain can be cached.
 */
export function verifyIntelChain(
  ders: readonly Uint8Array[],
  trustedRoots: readonly string[],
  what: string,
): IntelChain {
  const certs = ders.map((d) => parseX509(d, `tdx.${what}.cert`));
  const root = certs[certs.length - 1]!;
  // Pinned by digest: a root with Intel's names but another key fails here (go-sev-guest issue #185's lesson).
  if (!trustedRoots.includes(root.sha256))
    throw new ChainInvalid(`tdx.chain.root_untrusted`, `${what} chain root ${root.sha256} is not trusted`);
  const keys = certs.map((c) => spkiKey(c, what));
  for (let i = certs.length - 1; i >= 0; i--) {
    const c = certs[i]!;
    const issuer = i === certs.length - 1 ? c : certs[i + 1]!;
    const role = i === 0 ? 'leaf' : i === certs.length - 1 ? 'root' : 'intermediate';
    if (c.signatureAlgorithm.oid !== ECDSA_SHA256 || c.tbsSignatureAlgorithm.oid !== ECDSA_SHA256)
      throw new ChainInvalid(
        'tdx.chain.signature_algorithm',
        `${what} ${role} is not signed with ECDSA-SHA256`,
      );
    if (!bytesEqual(c.issuer, issuer.subject))
      throw new ChainInvalid(
        'tdx.chain.issuer',
        `${what} ${role} issuer is not the next certificate's subject`,
      );
    if (!signedBy(c, keys[i === certs.length - 1 ? i : i + 1]!))
      throw new ChainInvalid('tdx.chain.signature', `${what} ${role} signature does not verify`);
    checkCriticalExtensions(c.extensions, KNOWN_CRITICAL, 'tdx.chain.critical_extension', `${what} ${role}`);
    if (i > 0 && basicConstraints(c, `tdx.${what}.cert`)?.ca !== true)
      throw new ChainInvalid('tdx.chain.not_ca', `${what} ${role} is not a CA`);
  }
  let notBefore = certs[0]!.notBefore;
  let notAfter = certs[0]!.notAfter;
  for (const c of certs) {
    if (c.notBefore > notBefore) notBefore = c.notBefore;
    if (c.notAfter < notAfter) notAfter = c.notAfter;
  }
  return { certs, leafKey: keys[0]!, notBefore, notAfter };
}

/** Throws ChainInvalid `tdx.chain.expired` unless `now` is inside the chain's validity. */
export function checkWindow(chain: IntelChain, now: Date, what: string): void {
  const t = now.getTime();
  if (t < chain.notBefore.getTime() || t > chain.notAfter.getTime())
    throw new ChainInvalid(
      'tdx.chain.expired',
      `${what} chain is valid ${chain.notBefore.toISOString()}..${chain.notAfter.toISOString()}, not at ${now.toISOString()}`,
    );
}

/**
 * Checks a CRL (RFC 5280 §6.3, reduced to what Intel's CRLs need): issued by `issuer` (names and
 * signature), current at `now` (thisUpdate <= now <= nextUpdate), no unknown critical entry extension;
 * then none of `serials` is listed. Throws ChainInvalid `tdx.crl.*`, and `tdx.chain.revoked`.
 */
export function checkCrl(
  crl: CertificateList & {
    revokedSerials: ReadonlySet<string>;
    criticalEntryExtensions: readonly string[];
    sha256: string;
  },
  issuer: X509Cert,
  issuerKey: KeyObject,
  now: Date,
  serials: readonly { hex: string; role: string }[],
  what: string,
  verifiedSignatures?: Set<string>,
): void {
  if (!bytesEqual(crl.issuer, issuer.subject))
    throw new ChainInvalid('tdx.crl.issuer', `${what} CRL is not issued by its CA`);
  // The signature depends only on the CRL's bytes and the issuer's key: a verifier may remember it was good
  // (by both digests); the dates and serials below are checked on every call.
  const sigKey = `${crl.sha256}|${issuer.sha256}`;
  if (!verifiedSignatures?.has(sigKey)) {
    if (crl.signatureAlgorithm.oid !== ECDSA_SHA256 || !signedBy(crl, issuerKey))
      throw new ChainInvalid('tdx.crl.signature', `${what} CRL signature does not verify`);
    verifiedSignatures?.add(sigKey);
  }
  checkCrlDates(crl, now, what);
  if (crl.criticalEntryExtensions.length > 0)
    throw new ChainInvalid('tdx.crl.critical_extension', `${what} CRL has critical entry extensions`);
  for (const s of serials)
    if (crl.revokedSerials.has(s.hex))
      throw new ChainInvalid(
        'tdx.chain.revoked',
        `${s.role} certificate ${s.hex} is revoked by the ${what} CRL`,
      );
}

/** Throws ChainInvalid `tdx.crl.expired` unless thisUpdate <= now <= nextUpdate (the date part of {@link checkCrl}). */
export function checkCrlDates(crl: CertificateList, now: Date, what: string): void {
  const t = now.getTime();
  if (t < crl.thisUpdate.getTime() || (crl.nextUpdate !== undefined && t > crl.nextUpdate.getTime()))
    throw new ChainInvalid('tdx.crl.expired', `${what} CRL is not current at ${now.toISOString()}`);
}
