import { constants, type KeyObject, verify } from 'node:crypto';
import { ChainInvalid, SignatureInvalid } from '../../errors.js';
import type { SnpProduct } from '../../formats/snp/index.js';
import type { AmdCa, AmdLeaf } from './amd-cert.js';
import type { AmdCrl } from './crl.js';
import {
  checkCriticalExtensions,
  commonName,
  formatName,
  isRsaPssSha384,
  Oid,
  type X509Cert,
} from './x509.js';

/**
 * Chain checks for ARK -> ASK/ASVK -> VCEK/VLEK that do not depend on the clock (KDS 57230; RFC 5280
 * §6.1): names, CA constraints and the three RSASSA-PSS signatures. Whether the root is trusted at all is
 * decided before this (roots.ts); validity dates are checked on every verification (verify.ts), because a
 * chain that was valid yesterday may have expired today.
 */

/** RSASSA-PSS SHA-384, MGF1-SHA-384, salt 48: what AMD signs certificates and CRLs with. */
export function verifyRsaPss(key: KeyObject, data: Uint8Array, signature: Uint8Array): boolean {
  try {
    return verify(
      'sha384',
      data,
      { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 48 },
      signature,
    );
  } catch {
    // A signature of the wrong length or a key/padding mismatch is an invalid signature, not a crash.
    return false;
  }
}

const CRL_KNOWN: readonly string[] = [Oid.crlNumber, Oid.authorityKeyIdentifier];
const CRL_ENTRY_KNOWN: readonly string[] = [Oid.crlReason, Oid.invalidityDate];

/** SHA-256s of pinned roots whose self-signature has been checked in this process. */
const checkedPinnedRoots = new Set<string>();

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => Buffer.compare(a, b) === 0;

/**
 * Checks the chain for `product`. Throws ChainInvalid (`snp.chain.root_name`, `snp.chain.path_length`,
 * `snp.chain.intermediate_issuer`, `snp.chain.intermediate_name`, `snp.chain.leaf_issuer`, `snp.cert.hwid`)
 * or SignatureInvalid (`snp.chain.root_signature`, `snp.chain.intermediate_signature`,
 * `snp.chain.leaf_signature`).
 */
export function verifyAmdChain(
  leaf: AmdLeaf,
  intermediate: AmdCa,
  root: AmdCa,
  product: SnpProduct,
  rootIsPinned: boolean,
): void {
  // Root: self-issued, named ARK-{product}, and its self-signature holds — even for a pinned root
  // (TAV #140/#145: a pin on the hash alone never exercises the key that signs the ASK).
  const r = root.cert;
  if (!sameBytes(r.subject, r.issuer) || commonName(r.subjectName) !== `ARK-${product}`) {
    throw new ChainInvalid(
      'snp.chain.root_name',
      `root ${formatName(r.subjectName)} is not a self-issued ARK-${product}`,
    );
  }
  if (!(rootIsPinned && checkedPinnedRoots.has(r.sha256))) {
    if (!verifyRsaPss(root.publicKey, r.tbs, r.signatureValue)) {
      throw new SignatureInvalid(
        'snp.chain.root_signature',
        'the root certificate self-signature does not verify',
      );
    }
    if (rootIsPinned) checkedPinnedRoots.add(r.sha256);
  }
  // RFC 5280 §6.1.4 (m): one CA (the ASK) sits below the root, so a root pathLen must allow it.
  if (root.ca.pathLen !== undefined && root.ca.pathLen < 1) {
    throw new ChainInvalid('snp.chain.path_length', 'root pathLenConstraint forbids the intermediate');
  }

  // Intermediate: issued by the root, named SEV-{P} (ASK, signs VCEKs) or SEV-VLEK-{P} (ASVK, signs VLEKs).
  const i = intermediate.cert;
  if (!sameBytes(i.issuer, r.subject)) {
    throw new ChainInvalid(
      'snp.chain.intermediate_issuer',
      `intermediate issuer ${formatName(i.issuerName)} is not the root`,
    );
  }
  const wantCn = leaf.kind === 'VCEK' ? `SEV-${product}` : `SEV-VLEK-${product}`;
  if (commonName(i.subjectName) !== wantCn) {
    throw new ChainInvalid(
      'snp.chain.intermediate_name',
      `intermediate ${formatName(i.subjectName)} is not CN=${wantCn}`,
    );
  }
  if (!verifyRsaPss(root.publicKey, i.tbs, i.signatureValue)) {
    throw new SignatureInvalid(
      'snp.chain.intermediate_signature',
      'the intermediate is not signed by the root',
    );
  }

  // Leaf: issued by the intermediate and signed by it.
  const l = leaf.cert;
  if (!sameBytes(l.issuer, i.subject)) {
    throw new ChainInvalid(
      'snp.chain.leaf_issuer',
      `leaf issuer ${formatName(l.issuerName)} is not the intermediate`,
    );
  }
  if (!verifyRsaPss(intermediate.publicKey, l.tbs, l.signatureValue)) {
    throw new SignatureInvalid('snp.chain.leaf_signature', 'the leaf is not signed by the intermediate');
  }

  // KDS 57230: the VCEK hwID is the whole 64-byte CHIP_ID on Milan/Genoa, its first 8 bytes on Turin.
  if (leaf.hwId && leaf.hwId.length !== (product === 'Turin' ? 8 : 64)) {
    throw new ChainInvalid('snp.cert.hwid', `a ${product} VCEK hwID is not ${leaf.hwId.length} bytes`);
  }
}

export type CertRole = 'leaf' | 'intermediate' | 'root';

/** Validity (RFC 5280 §4.1.2.5: notBefore <= now <= notAfter) of one certificate at `now` (ms). */
export function checkValidity(
  role: CertRole,
  c: Pick<X509Cert, 'notBefore' | 'notAfter'>,
  now: number,
): void {
  if (now < c.notBefore.getTime()) {
    throw new ChainInvalid(
      `snp.chain.${role}_not_yet_valid`,
      `${role} is not valid before ${c.notBefore.toISOString()}`,
    );
  }
  if (now > c.notAfter.getTime()) {
    throw new ChainInvalid(`snp.chain.${role}_expired`, `${role} expired at ${c.notAfter.toISOString()}`);
  }
}

/**
 * The clock-independent CRL checks (RFC 5280 §6.3.3; go-sev-guest CheckRevocations): RSASSA-PSS SHA-384
 * algorithm, issuer = the root's subject, root KeyUsage allows cRLSign when present, no unrecognised
 * critical extension, and the root's signature. Throws ChainInvalid (`snp.crl.signature_algorithm`,
 * `snp.crl.issuer`, `snp.crl.key_usage`, `snp.crl.unknown_critical_extension`) or SignatureInvalid
 * (`snp.crl.signature`).
 */
export function verifyCrlSignature(crl: AmdCrl, root: AmdCa): void {
  if (!isRsaPssSha384(crl.signatureAlgorithm) || !isRsaPssSha384(crl.tbsSignatureAlgorithm)) {
    throw new ChainInvalid(
      'snp.crl.signature_algorithm',
      'CRL is not signed with RSASSA-PSS SHA-384 salt 48',
    );
  }
  if (!sameBytes(crl.issuer, root.cert.subject)) {
    throw new ChainInvalid('snp.crl.issuer', `CRL issuer ${formatName(crl.issuerName)} is not the root`);
  }
  if (root.keyUsage && !root.keyUsage.cRLSign) {
    throw new ChainInvalid('snp.crl.key_usage', 'root KeyUsage lacks cRLSign');
  }
  // RFC 5280 §5.2/§5.3: a CRL with an unrecognised critical (entry) extension must not be used.
  checkCriticalExtensions(crl.extensions, CRL_KNOWN, 'snp.crl.unknown_critical_extension', 'CRL');
  const entryExt = crl.criticalEntryExtensions.find((id) => !CRL_ENTRY_KNOWN.includes(id));
  if (entryExt) {
    throw new ChainInvalid(
      'snp.crl.unknown_critical_extension',
      `CRL entry has critical extension ${entryExt}`,
    );
  }
  if (!verifyRsaPss(root.publicKey, crl.tbs, crl.signatureValue)) {
    throw new SignatureInvalid('snp.crl.signature', 'the CRL is not signed by the root');
  }
}
