import { randomBytes } from 'node:crypto';
import { SVSM_NONCE_SIZE } from '../../formats/svsm/manifest.js';
import { type CaContext, sha256 } from '../context.js';
import { instanceKey } from '../instance-record.js';

/**
 * Issues a single-use nonce for AK route (a): 64 random bytes (the SVSM_ATTEST nonce size), stored by its
 * SHA-256 for the instance, valid `nonceTtlSeconds`. Throws InvalidArgument `ca.instance_id`.
 */
export async function createNonce(ctx: CaContext, instanceId: bigint | string): Promise<Uint8Array> {
  const id = instanceKey(instanceId);
  const nonce = new Uint8Array(randomBytes(SVSM_NONCE_SIZE));
  const expiresAt = ctx.clock().getTime() + ctx.config.nonceTtlSeconds * 1000;
  await ctx.repository.insertNonce(sha256(nonce), id, expiresAt);
  return nonce;
}

/** Deletes nonces that expired before now; returns how many. */
export function purgeExpiredNonces(ctx: CaContext): Promise<number> {
  return ctx.repository.purgeNonces(ctx.clock().getTime());
}
