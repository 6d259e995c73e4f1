import { InvalidArgument } from '../../errors.js';
import type { RevokeResult } from '../../store/ca-types.js';
import { type CaContext, caNow, logDraft } from '../context.js';
import { isCrlReason } from '../crl.js';

/**
 * Revokes a certificate by serial (hex, optional `0x` and leading zero bytes) with an RFC 5280 §5.3.1
 * CRLReason. Idempotent: revoking twice returns 'already_revoked' and logs nothing new. Throws
 * InvalidArgument `ca.serial_unknown`, `ca.crl_reason`.
 */
export async function revoke(ctx: CaContext, serial: string, reason = 0): Promise<RevokeResult> {
  const s =
    typeof serial === 'string'
      ? serial
          .toLowerCase()
          .replace(/^0x/, '')
          .replace(/^(00)+(?=..)/, '')
      : '';
  if (!/^[0-9a-f]{1,40}$/.test(s))
    throw new InvalidArgument('ca.serial_unknown', 'a serial is 1-40 hex digits');
  if (!Number.isInteger(reason) || !isCrlReason(reason)) {
    throw new InvalidArgument('ca.crl_reason', `${reason} is not an RFC 5280 CRLReason`);
  }
  const rec = await ctx.repository.getCertificate(s);
  const result = await ctx.repository.revoke(
    s,
    caNow(ctx).getTime(),
    reason,
    logDraft(ctx, 'ca.revoke', rec?.instanceId ?? null, 'accept', ['ca.revoked'], { serial: s, reason }),
  );
  if (result === 'unknown') throw new InvalidArgument('ca.serial_unknown', `no certificate with serial ${s}`);
  return result;
}
