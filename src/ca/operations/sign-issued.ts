import type { Extension } from '../../formats/x509/extensions.js';
import { newSerialNumber, signCertificate } from '../certificate.js';
import { type CaContext, validity } from '../context.js';

/** What one certificate this CA issues has of its own; the rest of its TBSCertificate is the CA's. */
export interface IssuedTbs {
  /** The configured lifetime (ca.json `lifetimes`), cut to the CA certificate's notAfter. */
  readonly lifetimeDays: number;
  /** DER Name (`30 00` for a TCG EK certificate). */
  readonly subject: Uint8Array;
  /** DER SubjectPublicKeyInfo of the certified key. */
  readonly spki: Uint8Array;
  readonly extensions: readonly Extension[];
}

/**
 * Signs a certificate issued under this CA (RFC 5280 §4.1): a fresh serial, the configured signature
 * algorithm, the CA certificate's subject as issuer, validity from now for `lifetimeDays` ({@link validity}).
 */
export function signIssued(ctx: CaContext, t: IssuedTbs): Promise<Uint8Array> {
  const { notBefore, notAfter } = validity(ctx, t.lifetimeDays);
  return signCertificate(
    {
      serialNumber: newSerialNumber(),
      signatureAlgorithm: ctx.config.signatureAlgorithm,
      issuer: ctx.subject,
      notBefore,
      notAfter,
      subject: t.subject,
      subjectPublicKeyInfo: t.spki,
      extensions: t.extensions,
    },
    ctx.keyStore,
  );
}
