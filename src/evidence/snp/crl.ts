import { MalformedEvidence } from '../../errors.js';
import { type CertificateList, parseCertificateList } from '../../formats/x509/crl.js';
import { parseName, type X509Name } from '../../formats/x509/name.js';
import { toHex } from '../../util/bytes.js';
import { loadDer, sha256Hex } from './x509.js';

/**
 * An AMD certificate revocation list as KDS serves it at /vcek/v1/{P}/crl and /vlek/v1/{P}/crl
 * (KDS 57230; RFC 5280 §5): issued and signed by the ARK, listing revoked ASK/ASVK serials (AMD does not
 * revoke VCEKs). Structural parse only (src/formats/x509/crl.ts); the SNP verifier checks issuer,
 * signature, dates and entries. Throws MalformedEvidence `snp.crl.der`, `snp.crl.size`, `snp.crl.pem`,
 * `snp.crl.extension_duplicate` (`tdx.crl.*` when parsed for TDX).
 */
export interface AmdCrl extends CertificateList {
  readonly sha256: string;
  readonly issuerName: X509Name;
  /** Revoked serial numbers as hex of their minimal INTEGER contents (the form Certificate.serialNumber has). */
  readonly revokedSerials: ReadonlySet<string>;
  /** Critical CRL entry extensions seen on any entry (RFC 5280 §5.3: must be understood to use the CRL). */
  readonly criticalEntryExtensions: readonly string[];
}

/** Far above any KDS CRL (a few KiB); bounds the parse. */
export const MAX_CRL_SIZE = 1 << 20;

/**
 * Parses a CRL. `tee` names the evidence the CRL serves, which prefixes every reason: the same X.509 CRL
 * structure serves AMD's KDS (`snp`, the default) and Intel's PCS (`tdx`: PCK and Root CA CRLs), and a
 * refusal names the TEE whose verification it stopped (`tdx.crl.der`, not `snp.crl.der`).
 */
export function parseCrl(input: Uint8Array | string, tee: 'snp' | 'tdx' = 'snp'): AmdCrl {
  let der: Uint8Array;
  try {
    der = loadDer(input, 'X509 CRL');
  } catch (e) {
    throw new MalformedEvidence(`${tee}.crl.pem`, 'CRL is neither DER nor one PEM X509 CRL block', {
      cause: e,
    });
  }
  if (der.length > MAX_CRL_SIZE)
    throw new MalformedEvidence(`${tee}.crl.size`, `CRL over ${MAX_CRL_SIZE} bytes`);
  const r = `${tee}.crl.der`;
  const crl = parseCertificateList(der, {
    der: r,
    extensions: r,
    duplicateExtension: `${tee}.crl.extension_duplicate`,
  });
  return Object.assign(crl, {
    sha256: sha256Hex(der),
    issuerName: parseName(crl.issuer, r),
    revokedSerials: new Set(crl.revoked.map((e) => toHex(e.serialNumber))),
    criticalEntryExtensions: crl.revoked.flatMap((e) =>
      e.extensions.filter((x) => x.critical).map((x) => x.oid),
    ),
  });
}
