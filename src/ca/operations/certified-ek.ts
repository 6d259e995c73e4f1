import type { CertificateRecord } from '../../store/ca-types.js';
import { ctEqual } from '../../util/bytes.js';
import { type CaContext, caNow } from '../context.js';
import { CaRefused } from '../errors.js';
import { spkiSha256 } from '../key-input.js';

/** Valid (unrevoked, in their validity period) EK certificates of an instance, newest first. */
export async function certifiedEks(ctx: CaContext, instanceId: string): Promise<CertificateRecord[]> {
  const now = caNow(ctx).getTime();
  const all = await ctx.repository.listCertificates({ kind: 'ek', instanceId });
  return all.filter((r) => r.revokedAt === null && r.notAfter > now && r.notBefore <= now).reverse();
}

/**
 * The step "the EK is the instance's certified EK" of both AK routes: the newest valid EK record of the
 * instance whose key is `spki`. Throws CaRefused `ca.instance_unknown`, `ca.ek_mismatch`.
 */
export async function matchEk(
  ctx: CaContext,
  instanceId: string,
  spki: Uint8Array,
): Promise<CertificateRecord> {
  const eks = await certifiedEks(ctx, instanceId);
  if (eks.length === 0) {
    throw new CaRefused('ca.instance_unknown', `instance ${instanceId} has no valid EK certificate`);
  }
  const digest = Buffer.from(spkiSha256(spki), 'hex');
  const rec = eks.find((r) => ctEqual(Buffer.from(r.spkiSha256, 'hex'), digest));
  if (!rec) {
    throw new CaRefused('ca.ek_mismatch', `the EK is not one this CA certified for instance ${instanceId}`);
  }
  return rec;
}
