import { ctx, cursor, integerBytes, parseOne, smallUint, Tag, time } from '../der/reader.js';
import { readAlgorithm } from './algorithm.js';
import { type Extension, type ExtensionReasons, readExtensions } from './extensions.js';
import { readSigned, type SignedStructure } from './signed.js';

/**
 * X.509 v2 certificate revocation lists (RFC 5280 §5.1), on the strict DER reader: a structural parse
 * only (the verifier checks issuer, signature, dates and entries). Extensions are read like a
 * certificate's in structure-only mode (no DEFAULT-rule check), as the SNP verifier always has.
 */

export interface RevokedCertificate {
  /** userCertificate contents (minimal two's complement), as Certificate.serialNumber. */
  readonly serialNumber: Uint8Array;
  readonly revocationDate: Date;
  readonly extensions: readonly Extension[];
}

export interface CertificateList extends SignedStructure {
  /** 1 or 2. */
  readonly version: number;
  /** The issuer Name's DER. */
  readonly issuer: Uint8Array;
  readonly thisUpdate: Date;
  readonly nextUpdate?: Date;
  readonly revoked: readonly RevokedCertificate[];
  readonly extensions: readonly Extension[];
}

/** MalformedEvidence reasons of a CRL parse: structure/DER, and a repeated extension. */
export interface CrlReasons extends ExtensionReasons {
  readonly der: string;
}

/** Decodes a DER CertificateList. Throws MalformedEvidence with the reasons given. */
export function parseCertificateList(der: Uint8Array, reasons: CrlReasons): CertificateList {
  const r = reasons.der;
  const { tbs: tbsTlv, signatureAlgorithm: sigAlgTlv, signatureValue } = readSigned(der, r);
  const signatureAlgorithm = readAlgorithm(sigAlgTlv, r);

  const tbs = cursor(tbsTlv, r);
  const v = tbs.optional(Tag.Integer);
  const version = v ? smallUint(v, r, 1) + 1 : 1; // v2 is encoded as 1 (RFC 5280 §5.1.2.1)
  const tbsSignatureAlgorithm = readAlgorithm(tbs.next(Tag.Sequence, 'signature'), r);
  const issuer = tbs.next(Tag.Sequence, 'issuer').raw;
  const thisUpdate = time(tbs.any('thisUpdate'), r);
  const nt = tbs.peek();
  const nextUpdate = nt === Tag.UtcTime || nt === Tag.GeneralizedTime ? time(tbs.any(), r) : undefined;
  const revoked: RevokedCertificate[] = [];
  const revokedTlv = tbs.optional(Tag.Sequence);
  if (revokedTlv) {
    const entries = cursor(revokedTlv, r);
    while (!entries.done) {
      const e = cursor(entries.next(Tag.Sequence, 'revokedCertificate'), r);
      const serialNumber = integerBytes(e.next(Tag.Integer, 'userCertificate'), r);
      const revocationDate = time(e.any('revocationDate'), r);
      const ext = e.optional(Tag.Sequence);
      e.end();
      // crlEntryExtensions is a bare Extensions SEQUENCE (no context tag).
      revoked.push({
        serialNumber,
        revocationDate,
        extensions: ext ? readExtensions(ext, reasons, false) : [],
      });
    }
  }
  const extTlv = tbs.optional(ctx(0));
  tbs.end();
  const extensions = extTlv ? readExtensions(parseOne(extTlv.value, r, Tag.Sequence), reasons, false) : [];
  return {
    der,
    tbs: tbsTlv.raw,
    signatureAlgorithm,
    tbsSignatureAlgorithm,
    signatureValue,
    version,
    issuer,
    thisUpdate,
    ...(nextUpdate ? { nextUpdate } : {}),
    revoked,
    extensions,
  };
}
