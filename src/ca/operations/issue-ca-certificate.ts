import { type CaContext, logDraft } from '../context.js';
import type { IssuedCertificate } from '../options.js';
import { caExtensions } from '../profiles.js';
import { recordIssued } from './record-issued.js';
import { signIssued } from './sign-issued.js';

/**
 * Issues an intermediate CA certificate (basicConstraints cA, pathLen 0) for `subject` (DER Name) and
 * `spki` (DER); `ca init --issuer-dir` uses it. Logged as `ca.issue_intermediate`.
 */
export async function issueCaCertificate(
  ctx: CaContext,
  subject: Uint8Array,
  spki: Uint8Array,
): Promise<IssuedCertificate> {
  const der = await signIssued(ctx, {
    lifetimeDays: ctx.config.lifetimes.caDays,
    subject,
    spki,
    extensions: caExtensions(spki, ctx.keyId, 0),
  });
  return recordIssued(
    ctx,
    'intermediate',
    der,
    'x509',
    { instanceId: null, identity: null, spki, ekPublic: null },
    logDraft(ctx, 'ca.issue_intermediate', null, 'accept', ['ca.issued']),
  );
}
