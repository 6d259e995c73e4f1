import { newSerialNumber, signCertificate } from '../certificate.js';
import { type CaContext, logDraft, validity } from '../context.js';
import type { IssuedCertificate } from '../options.js';
import { caExtensions } from '../profiles.js';
import { recordIssued } from './record-issued.js';

/**
 * Issues an intermediate CA certificate (basicConstraints cA, pathLen 0) for `subject` (DER Name) and
 * `spki` (DER); `ca init --issuer-dir` uses it. Logged as `ca.issue_intermediate`.
 */
export async function issueCaCertificate(
  ctx: CaContext,
  subject: Uint8Array,
  spki: Uint8Array,
): Promise<IssuedCertificate> {
  const { notBefore, notAfter } = validity(ctx, ctx.config.lifetimes.caDays);
  const der = await signCertificate(
    {
      serialNumber: newSerialNumber(),
      signatureAlgorithm: ctx.config.signatureAlgorithm,
      issuer: ctx.subject,
      notBefore,
      notAfter,
      subject,
      subjectPublicKeyInfo: spki,
      extensions: caExtensions(spki, ctx.keyId, 0),
    },
    ctx.keyStore,
  );
  return recordIssued(
    ctx,
    'intermediate',
    der,
    'x509',
    { instanceId: null, identity: null, spki, ekPublic: null },
    logDraft(ctx, 'ca.issue_intermediate', null, 'accept', ['ca.issued']),
  );
}
