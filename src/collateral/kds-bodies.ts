import { MalformedEvidence } from '../errors.js';
import { decodePem } from '../formats/pem.js';
import { hwIdLength, readAmdExtensions } from '../formats/snp/amd-cert-extensions.js';
import { productFromName, type SnpProduct } from '../formats/snp/product.js';
import {
  type Certificate,
  certificateReasons,
  findExtension,
  parseCertificate,
} from '../formats/x509/certificate.js';
import { parseCertificateList } from '../formats/x509/crl.js';
import { commonName, formatName, parseName } from '../formats/x509/name.js';
import type { KdsSigner, VcekTcb } from './kds-url.js';

/**
 * Shape checks for what AMD KDS serves (VCEK Certificate and KDS Interface Specification 57230): a cert_chain
 * PEM, a VCEK DER, a CRL DER. These checks only make sure the bytes are the item that was asked for, so that
 * a wrong or garbage body is never cached; they verify no signature. Chains, signatures, validity and
 * revocation are checked by the SNP evidence verifier against pinned ARKs. Certificates and CRLs are read
 * with the project's strict DER parsers (src/formats/x509) in the structure-only mode the verifier uses.
 */

/** Largest body accepted for any KDS item (AMD's are 1.3-4.7 KiB). */
export const MAX_KDS_BODY = 64 * 1024;

/** Parses one X.509 certificate from strict DER. Throws MalformedEvidence `reason`. */
export function parseCertificateDer(der: Uint8Array, reason: string, what: string): Certificate {
  if (der.length === 0 || der.length > MAX_KDS_BODY || der[0] !== 0x30) {
    throw new MalformedEvidence(reason, `${what} is not a DER SEQUENCE`);
  }
  return parseCertificate(der, { strict: false, reasons: certificateReasons(reason) });
}

/** The subject's CN and its RFC 4514 text; a name that cannot be read has no CN. */
export function subjectOf(cert: Certificate): { cn: string | undefined; text: string } {
  try {
    const name = parseName(cert.subject, 'kds.name');
    return { cn: commonName(name), text: formatName(name) };
  } catch {
    return { cn: undefined, text: `unreadable name ${Buffer.from(cert.subject).toString('hex')}` };
  }
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
  const inter = subjectOf(parseCertificateDer(first.der, reason, 'cert_chain intermediate'));
  const ark = subjectOf(parseCertificateDer(second.der, reason, 'cert_chain ARK'));
  const wantInter = intermediateCn(product, signer);
  if (inter.cn !== wantInter) {
    throw new MalformedEvidence(reason, `cert_chain intermediate must be CN=${wantInter}, got ${inter.text}`);
  }
  if (ark.cn !== `ARK-${product}`) {
    throw new MalformedEvidence(
      reason,
      `cert_chain second certificate must be CN=ARK-${product}, got ${ark.text}`,
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
export function classifyAmdCert(cert: Certificate): AmdCertRole {
  const subject = subjectOf(cert);
  const cn = subject.cn ?? '';
  if (cn === 'SEV-VCEK') return { role: 'vcek' };
  if (cn === 'SEV-VLEK') return { role: 'vlek' };
  const m = /^(ARK|SEV|SEV-VLEK)-([A-Za-z]+)$/.exec(cn);
  const named = m ? productFromName(m[2]!) : undefined;
  if (!m || !named || named.stepping) return { role: 'unknown', subject: subject.text };
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

/**
 * Reads a VCEK's identity from its AMD extensions (snp-tdx.md A4): productName (IA5String, e.g.
 * `Milan-B0`), hwID (raw bytes, no DER tag), blSPL/teeSPL/snpSPL/ucodeSPL and, for Turin, fmcSPL.
 * Throws MalformedEvidence `kds.vcek` (not a VCEK, missing or malformed extensions).
 */
export function readVcekIdentity(der: Uint8Array): VcekIdentity {
  const reason = 'kds.vcek';
  const cert = parseCertificateDer(der, reason, 'VCEK');
  const role = classifyAmdCert(cert);
  if (role.role !== 'vcek') {
    throw new MalformedEvidence(reason, `not a VCEK: subject ${subjectOf(cert).text}`);
  }
  const ext = readAmdExtensions((id) => findExtension(cert, id)?.value, reason);
  const named = ext.productName === undefined ? undefined : productFromName(ext.productName);
  if (!named) {
    throw new MalformedEvidence(
      reason,
      `VCEK productName ${JSON.stringify(ext.productName)} is not a known product`,
    );
  }
  const product = named.product;
  const hwid = ext.hwId;
  const want = hwIdLength(product);
  if (!hwid || hwid.length !== want) {
    throw new MalformedEvidence(
      reason,
      `VCEK hwID must be ${want} bytes for ${product}, got ${hwid?.length}`,
    );
  }
  const spl = (v: number | undefined, name: string): number => {
    if (v === undefined) throw new MalformedEvidence(reason, `VCEK SPL extension ${name} is missing`);
    return v;
  };
  const common = {
    bootloader: spl(ext.spl.bl, 'blSPL'),
    tee: spl(ext.spl.tee, 'teeSPL'),
    snp: spl(ext.spl.snp, 'snpSPL'),
    microcode: spl(ext.spl.ucode, 'ucodeSPL'),
  };
  const tcb: VcekTcb = product === 'Turin' ? { fmc: spl(ext.spl.fmc, 'fmcSPL'), ...common } : common;
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
  const reason = 'kds.crl';
  if (der.length === 0 || der.length > MAX_KDS_BODY || der[0] !== 0x30) {
    throw new MalformedEvidence(reason, 'CRL is not a DER SEQUENCE');
  }
  const crl = parseCertificateList(der, { der: reason, extensions: reason, duplicateExtension: reason });
  const issuer = parseName(crl.issuer, reason);
  const m = /^ARK-([A-Za-z]+)$/.exec(commonName(issuer) ?? '');
  const named = m ? productFromName(m[1]!) : undefined;
  if (!named || named.stepping) {
    throw new MalformedEvidence(reason, `CRL issuer must be CN=ARK-{product}, got ${formatName(issuer)}`);
  }
  if (product && named.product !== product) {
    throw new MalformedEvidence(reason, `CRL issuer is ARK-${named.product}, expected ARK-${product}`);
  }
  const { thisUpdate, nextUpdate } = crl;
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
