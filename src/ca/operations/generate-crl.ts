import type { CrlRecord } from '../../store/ca-types.js';
import { signTbs } from '../certificate.js';
import { type CaContext, caNow, DAY_MS, logDraft } from '../context.js';
import { encodeTbsCertList } from '../crl.js';

/**
 * Signs a new X.509 v2 CRL (RFC 5280 §5) listing every revocation: the next CRL number, thisUpdate now,
 * nextUpdate now + `crlDays`. Stored with its `ca.crl` log entry.
 */
export async function generateCrl(ctx: CaContext): Promise<CrlRecord> {
  const revoked = await ctx.repository.listRevoked();
  const number = await ctx.repository.nextCrlNumber();
  const thisUpdate = caNow(ctx);
  const nextUpdate = new Date(thisUpdate.getTime() + ctx.config.lifetimes.crlDays * DAY_MS);
  const tbs = encodeTbsCertList({
    signatureAlgorithm: ctx.config.signatureAlgorithm,
    issuer: ctx.subject,
    thisUpdate,
    nextUpdate,
    revoked: revoked.map((r) => ({
      serialNumber: new Uint8Array(Buffer.from(r.serial.length % 2 ? `0${r.serial}` : r.serial, 'hex')),
      revocationDate: new Date(r.revokedAt!),
      reason: r.revocationReason ?? 0,
    })),
    crlNumber: number,
    issuerKeyId: ctx.keyId,
  });
  const der = await signTbs(tbs, ctx.config.signatureAlgorithm, ctx.keyStore);
  const rec: CrlRecord = { number, thisUpdate: thisUpdate.getTime(), nextUpdate: nextUpdate.getTime(), der };
  await ctx.repository.insertCrl(
    rec,
    logDraft(ctx, 'ca.crl', null, 'accept', ['ca.crl_issued'], {
      crlNumber: number,
      revoked: revoked.length,
    }),
  );
  return rec;
}
