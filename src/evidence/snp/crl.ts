import { MalformedEvidence } from '../../errors.js';
import { toHex } from '../../util/bytes.js';
import { ctx, integerBytes, parseOne, seq, smallUint, Tag, time } from './der.js';
import { loadDer, parseExtensions, parseName, sha256Hex, type X509Extension, type X509Name } from './x509.js';

/**
 * An AMD certificate revocation list as KDS serves it at /vcek/v1/{P}/crl and /vlek/v1/{P}/crl
 * (KDS 57230; RFC 5280 §5): issued and signed by the ARK, listing revoked ASK/ASVK serials (AMD does not
 * revoke VCEKs). Structural parse only; the SNP verifier checks issuer, signature, dates and entries.
 * Throws MalformedEvidence `snp.crl.der`, `snp.crl.size`, `snp.crl.pem`, `snp.crl.extension_duplicate`.
 */
export interface AmdCrl {
  readonly der: Uint8Array;
  readonly sha256: string;
  readonly tbs: Uint8Array;
  readonly tbsSignatureAlgorithm: Uint8Array;
  readonly signatureAlgorithm: Uint8Array;
  readonly issuer: X509Name;
  readonly thisUpdate: Date;
  readonly nextUpdate?: Date;
  /** Revoked serial numbers as hex of their minimal INTEGER contents (the form X509Cert.serial has). */
  readonly revokedSerials: ReadonlySet<string>;
  readonly extensions: ReadonlyMap<string, X509Extension>;
  /** Critical CRL entry extensions seen on any entry (RFC 5280 §5.3: must be understood to use the CRL). */
  readonly criticalEntryExtensions: readonly string[];
  readonly signature: Uint8Array;
}

/** Far above any KDS CRL (a few KiB); bounds the parse. */
export const MAX_CRL_SIZE = 1 << 20;

export function parseCrl(input: Uint8Array | string): AmdCrl {
  let der: Uint8Array;
  try {
    der = loadDer(input, 'X509 CRL');
  } catch (e) {
    throw new MalformedEvidence('snp.crl.pem', 'CRL is neither DER nor one PEM X509 CRL block', { cause: e });
  }
  const what = 'snp.crl';
  if (der.length > MAX_CRL_SIZE)
    throw new MalformedEvidence('snp.crl.size', `CRL over ${MAX_CRL_SIZE} bytes`);
  const list = seq(parseOne(der, Tag.Sequence, what), what);
  const tbsTlv = list.next(Tag.Sequence, 'tbsCertList');
  const signatureAlgorithm = list.next(Tag.Sequence, 'signatureAlgorithm').raw;
  const sigTlv = list.next(Tag.BitString, 'signatureValue');
  list.end();
  if (sigTlv.value.length === 0 || sigTlv.value[0] !== 0) {
    throw new MalformedEvidence('snp.crl.der', 'CRL signature has unused bits');
  }

  const tbs = seq(tbsTlv, what);
  const v = tbs.optional(Tag.Integer);
  if (v) smallUint(v, what, 1); // v2 = 1 (RFC 5280 §5.1.2.1)
  const tbsSignatureAlgorithm = tbs.next(Tag.Sequence, 'signature').raw;
  const issuer = parseName(tbs.next(Tag.Sequence, 'issuer'), what);
  const thisUpdate = time(tbs.any('thisUpdate'), what);
  const nt = tbs.peek();
  const nextUpdate = nt === Tag.UtcTime || nt === Tag.GeneralizedTime ? time(tbs.any(), what) : undefined;
  const revokedSerials = new Set<string>();
  const criticalEntryExtensions: string[] = [];
  const revoked = tbs.optional(Tag.Sequence);
  if (revoked) {
    const entries = seq(revoked, what);
    while (!entries.done) {
      const e = seq(entries.next(Tag.Sequence, 'revokedCertificate'), what);
      revokedSerials.add(toHex(integerBytes(e.next(Tag.Integer, 'userCertificate'), what)));
      time(e.any('revocationDate'), what);
      const ext = e.optional(Tag.Sequence);
      e.end();
      if (ext) {
        // crlEntryExtensions is a bare Extensions SEQUENCE; wrap it the way parseExtensions expects.
        for (const [id, x] of parseExtensions({ tag: ctx(0), raw: ext.raw, value: ext.raw }, what)) {
          if (x.critical) criticalEntryExtensions.push(id);
        }
      }
    }
  }
  const extTlv = tbs.optional(ctx(0));
  tbs.end();
  const extensions = extTlv ? parseExtensions(extTlv, what) : new Map<string, X509Extension>();

  return {
    der,
    sha256: sha256Hex(der),
    tbs: tbsTlv.raw,
    tbsSignatureAlgorithm,
    signatureAlgorithm,
    issuer,
    thisUpdate,
    ...(nextUpdate ? { nextUpdate } : {}),
    revokedSerials,
    extensions,
    criticalEntryExtensions,
    signature: sigTlv.value.subarray(1),
  };
}
