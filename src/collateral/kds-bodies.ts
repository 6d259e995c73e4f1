import 'reflect-metadata';
import { X509Certificate, X509Crl } from '@peculiar/x509';
import * as asn1js from 'asn1js';
import { MalformedEvidence } from '../errors.js';
import { productFromName, type SnpProduct } from '../formats/snp/product.js';
import type { KdsSigner, VcekTcb } from './kds-url.js';
import { decodePem } from './pem.js';

/**
 * Shape checks for what AMD KDS serves (VCEK Certificate and KDS Interface Specification 57230): a cert_chain
 * PEM, a VCEK DER, a CRL DER. These checks only make sure the bytes are the item that was asked for, so that
 * a wrong or garbage body is never cached; they verify no signature. Chains, signatures, validity and
 * revocation are checked by the SNP evidence verifier against pinned ARKs.
 */

/** Largest body accepted for any KDS item (AMD's are 1.3-4.7 KiB). */
export const MAX_KDS_BODY = 64 * 1024;

/** AMD's VCEK/VLEK extension arc 1.3.6.1.4.1.3704.1 (snp-tdx.md A4). */
const AMD_OID = '1.3.6.1.4.1.3704.1';
const OID_PRODUCT_NAME = `${AMD_OID}.2`;
const OID_BL_SPL = `${AMD_OID}.3.1`;
const OID_TEE_SPL = `${AMD_OID}.3.2`;
const OID_SNP_SPL = `${AMD_OID}.3.3`;
const OID_UCODE_SPL = `${AMD_OID}.3.8`;
const OID_FMC_SPL = `${AMD_OID}.3.9`;
const OID_HWID = `${AMD_OID}.4`;

/** Checks that `der` is exactly one DER SEQUENCE with nothing after it. */
function assertSingleSequence(der: Uint8Array, reason: string, what: string): void {
  if (der.length === 0 || der.length > MAX_KDS_BODY || der[0] !== 0x30) {
    throw new MalformedEvidence(reason, `${what} is not a DER SEQUENCE`);
  }
  const parsed = asn1js.fromBER(der, { maxDepth: 32, maxNodes: 4096 });
  if (parsed.offset !== der.length) {
    throw new MalformedEvidence(reason, `${what} is not a single DER object (bad length or trailing bytes)`);
  }
}

/** Parses one X.509 certificate from strict DER. Throws MalformedEvidence `reason`. */
export function parseCertificateDer(der: Uint8Array, reason: string, what: string): X509Certificate {
  assertSingleSequence(der, reason, what);
  try {
    return new X509Certificate(der);
  } catch (e) {
    throw new MalformedEvidence(reason, `${what} is not an X.509 certificate`, { cause: e });
  }
}

function commonName(cert: X509Certificate | X509Crl, which: 'subject' | 'issuer'): string | undefined {
  const names = (which === 'subject' ? (cert as X509Certificate).subjectName : cert.issuerName).getField(
    'CN',
  );
  return names.length === 1 ? names[0] : undefined;
}

/** The intermediate (ASK for VCEK, ASVK for VLEK) and the ARK, as DER. */
export interface CertChain {
  readonly intermediate: Uint8Array;
  readonly ark: Uint8Array;
}

/** Subject CN of the intermediate KDS serves in a cert_chain: `SEV-Milan` (ASK) or `SEV-VLEK-Milan` (ASVK). */
export function intermediateCn(product: SnpProduct, signer: KdsSigner): string {
  return signer === 'vcek' ? `SEV-${product}` : `SEV-VLEK-${product}`;
}

/**
 * Parses a KDS cert_chain body: exactly two PEM CERTIFICATE blocks, the intermediate (CN `SEV-{P}` or
 * `SEV-VLEK-{P}`) then the ARK (CN `ARK-{P}`). Throws MalformedEvidence `kds.cert_chain`.
 */
export function parseCertChain(body: Uint8Array, product: SnpProduct, signer: KdsSigner): CertChain {
  return guardParse('kds.cert_chain', () => parseCertChainUnguarded(body, product, signer));
}

function parseCertChainUnguarded(body: Uint8Array, product: SnpProduct, signer: KdsSigner): CertChain {
  const reason = 'kds.cert_chain';
  if (body.length > MAX_KDS_BODY) throw new MalformedEvidence(reason, 'cert_chain body is too large');
  const text = decodeAscii(body, reason);
  const blocks = decodePem(text, reason);
  if (blocks.length !== 2 || blocks.some((b) => b.label !== 'CERTIFICATE')) {
    throw new MalformedEvidence(
      reason,
      `cert_chain must hold exactly 2 CERTIFICATE blocks, got ${blocks.length}`,
    );
  }
  const [first, second] = blocks as [(typeof blocks)[0], (typeof blocks)[0]];
  const inter = parseCertificateDer(first.der, reason, 'cert_chain intermediate');
  const ark = parseCertificateDer(second.der, reason, 'cert_chain ARK');
  const wantInter = intermediateCn(product, signer);
  if (commonName(inter, 'subject') !== wantInter) {
    throw new MalformedEvidence(
      reason,
      `cert_chain intermediate must be CN=${wantInter}, got ${inter.subject}`,
    );
  }
  if (commonName(ark, 'subject') !== `ARK-${product}`) {
    throw new MalformedEvidence(
      reason,
      `cert_chain second certificate must be CN=ARK-${product}, got ${ark.subject}`,
    );
  }
  return { intermediate: first.der, ark: second.der };
}

/** What a certificate is, by subject CN: used to file imported certificates. */
export type AmdCertRole =
  | { readonly role: 'ark'; readonly product: SnpProduct }
  | { readonly role: 'intermediate'; readonly product: SnpProduct; readonly signer: KdsSigner }
  | { readonly role: 'vcek' }
  | { readonly role: 'vlek' }
  | { readonly role: 'unknown'; readonly subject: string };

/** Classifies an AMD certificate by its subject CN (ARK-P, SEV-P, SEV-VLEK-P, SEV-VCEK, SEV-VLEK). */
export function classifyAmdCert(cert: X509Certificate): AmdCertRole {
  const cn = commonName(cert, 'subject') ?? '';
  if (cn === 'SEV-VCEK') return { role: 'vcek' };
  if (cn === 'SEV-VLEK') return { role: 'vlek' };
  const m = /^(ARK|SEV|SEV-VLEK)-([A-Za-z]+)$/.exec(cn);
  const named = m ? productFromName(m[2]!) : undefined;
  if (!m || !named || named.stepping) return { role: 'unknown', subject: cert.subject };
  if (m[1] === 'ARK') return { role: 'ark', product: named.product };
  return { role: 'intermediate', product: named.product, signer: m[1] === 'SEV' ? 'vcek' : 'vlek' };
}

/** The identity a VCEK carries in its AMD extensions: product, hardware id and the TCB it was issued for. */
export interface VcekIdentity {
  readonly product: SnpProduct;
  /** 64 bytes (Milan, Genoa) or 8 (Turin): the id KDS indexes VCEKs by. */
  readonly hwid: Uint8Array;
  readonly tcb: VcekTcb;
}

function extensionValue(cert: X509Certificate, oid: string): Uint8Array | undefined {
  const exts = cert.extensions.filter((e) => e.type === oid);
  if (exts.length > 1) throw new MalformedEvidence('kds.vcek', `VCEK repeats extension ${oid}`);
  return exts[0] ? new Uint8Array(exts[0].value) : undefined;
}

function splExtension(cert: X509Certificate, oid: string): number {
  const v = extensionValue(cert, oid);
  // A DER INTEGER 0..255: 02 01 xx, or 02 02 00 xx when the high bit is set.
  if (v && v.length === 3 && v[0] === 0x02 && v[1] === 0x01 && v[2]! < 0x80) return v[2]!;
  if (v && v.length === 4 && v[0] === 0x02 && v[1] === 0x02 && v[2] === 0x00 && v[3]! >= 0x80) return v[3]!;
  throw new MalformedEvidence('kds.vcek', `VCEK SPL extension ${oid} is missing or not an INTEGER 0-255`);
}

/**
 * Reads a VCEK's identity from its AMD extensions (snp-tdx.md A4): productName (IA5String, e.g.
 * `Milan-B0`), hwID (raw bytes, no DER tag), blSPL/teeSPL/snpSPL/ucodeSPL and, for Turin, fmcSPL.
 * Throws MalformedEvidence `kds.vcek` (not a VCEK, missing or malformed extensions).
 */
export function readVcekIdentity(der: Uint8Array): VcekIdentity {
  return guardParse('kds.vcek', () => readVcekIdentityUnguarded(der));
}

/**
 * Runs a parse step and turns any non-Attestation exception (a lazy getter in @peculiar/x509 throwing on
 * hostile input) into MalformedEvidence, so callers only ever see typed errors.
 */
function guardParse<T>(reason: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof MalformedEvidence) throw e;
    throw new MalformedEvidence(reason, 'cannot parse the ASN.1 structure', { cause: e });
  }
}

function readVcekIdentityUnguarded(der: Uint8Array): VcekIdentity {
  const cert = parseCertificateDer(der, 'kds.vcek', 'VCEK');
  const role = classifyAmdCert(cert);
  if (role.role !== 'vcek') throw new MalformedEvidence('kds.vcek', `not a VCEK: subject ${cert.subject}`);
  const nameExt = extensionValue(cert, OID_PRODUCT_NAME);
  let name: string | undefined;
  if (nameExt && nameExt[0] === 0x16) {
    const parsed = asn1js.fromBER(nameExt, { maxDepth: 2 });
    if (parsed.offset === nameExt.length && parsed.result instanceof asn1js.IA5String) {
      name = parsed.result.getValue();
    }
  }
  const named = name === undefined ? undefined : productFromName(name);
  if (!named)
    throw new MalformedEvidence(
      'kds.vcek',
      `VCEK productName ${JSON.stringify(name)} is not a known product`,
    );
  const product = named.product;
  const hwid = extensionValue(cert, OID_HWID);
  const want = product === 'Turin' ? 8 : 64;
  if (!hwid || hwid.length !== want) {
    throw new MalformedEvidence(
      'kds.vcek',
      `VCEK hwID must be ${want} bytes for ${product}, got ${hwid?.length}`,
    );
  }
  const common = {
    bootloader: splExtension(cert, OID_BL_SPL),
    tee: splExtension(cert, OID_TEE_SPL),
    snp: splExtension(cert, OID_SNP_SPL),
    microcode: splExtension(cert, OID_UCODE_SPL),
  };
  const tcb: VcekTcb = product === 'Turin' ? { fmc: splExtension(cert, OID_FMC_SPL), ...common } : common;
  return { product, hwid, tcb };
}

/** A CRL as KDS serves it, with the times the cache needs. */
export interface ParsedCrl {
  readonly der: Uint8Array;
  readonly product: SnpProduct;
  readonly thisUpdate: Date;
  /** Absent only in a non-conforming CRL (RFC 5280 5.1.2.5 requires it); such a CRL is always stale. */
  readonly nextUpdate?: Date;
}

/**
 * Parses a KDS CRL (DER CertificateList issued by CN=ARK-{P}). `product`, when given, must match the issuer.
 * The signature is NOT verified here (the evidence verifier checks it against the pinned ARK).
 * Throws MalformedEvidence `kds.crl`.
 */
export function parseKdsCrl(der: Uint8Array, product?: SnpProduct): ParsedCrl {
  return guardParse('kds.crl', () => parseKdsCrlUnguarded(der, product));
}

function parseKdsCrlUnguarded(der: Uint8Array, product?: SnpProduct): ParsedCrl {
  const reason = 'kds.crl';
  assertSingleSequence(der, reason, 'CRL');
  let crl: X509Crl;
  let thisUpdate: Date;
  let nextUpdate: Date | undefined;
  try {
    crl = new X509Crl(der);
    thisUpdate = crl.thisUpdate;
    nextUpdate = crl.nextUpdate;
  } catch (e) {
    throw new MalformedEvidence(reason, 'not an X.509 CRL', { cause: e });
  }
  const cn = commonName(crl, 'issuer') ?? '';
  const m = /^ARK-([A-Za-z]+)$/.exec(cn);
  const named = m ? productFromName(m[1]!) : undefined;
  if (!named || named.stepping)
    throw new MalformedEvidence(reason, `CRL issuer must be CN=ARK-{product}, got ${crl.issuer}`);
  if (product && named.product !== product) {
    throw new MalformedEvidence(reason, `CRL issuer is ARK-${named.product}, expected ARK-${product}`);
  }
  if (Number.isNaN(thisUpdate.getTime()) || (nextUpdate && Number.isNaN(nextUpdate.getTime()))) {
    throw new MalformedEvidence(reason, 'CRL has an invalid thisUpdate/nextUpdate');
  }
  return nextUpdate
    ? { der, product: named.product, thisUpdate, nextUpdate }
    : { der, product: named.product, thisUpdate };
}

/** Decodes printable ASCII text (PEM); anything else is rejected rather than replaced. */
export function decodeAscii(body: Uint8Array, reason: string): string {
  for (const b of body) {
    if (b > 0x7e || (b < 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09)) {
      throw new MalformedEvidence(reason, 'body is not ASCII text');
    }
  }
  return Buffer.from(body).toString('latin1');
}
