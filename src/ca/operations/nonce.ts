import { randomBytes } from 'node:crypto';
import { InvalidArgument } from '../../errors.js';
import { SVSM_NONCE_SIZE } from '../../formats/svsm/manifest.js';
import { type CaContext, sha256 } from '../context.js';
import { CaRefused } from '../errors.js';
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

/**
 * The scope a relayed nonce is stored under: `relay:<caller>`. The CERTIFY_EK / CERTIFY_AK calls ask for
 * a nonce before the CA knows the instance (it is found later from the report's HOST_DATA), so the nonce
 * is bound to the authenticated relay that asked for it (the VMM host's credential) and consumed once by
 * that relay's CERTIFY. Never a decimal, so it can never be spent on an instance-bound route (a) request.
 */
export function relayScope(caller: string): string {
  if (typeof caller !== 'string' || !/^[A-Za-z0-9._:@-]{1,128}$/.test(caller)) {
    throw new InvalidArgument('ca.caller', 'a caller name is 1-128 of A-Z a-z 0-9 . _ : @ -');
  }
  return `relay:${caller}`;
}

/** Issues a single-use nonce for a relayed CERTIFY by `caller` (see {@link relayScope}). */
export async function createRelayNonce(
  ctx: CaContext,
  caller: string,
): Promise<{ nonce: Uint8Array; expiresAt: Date }> {
  const scope = relayScope(caller);
  const nonce = new Uint8Array(randomBytes(SVSM_NONCE_SIZE));
  const expiresAt = ctx.clock().getTime() + ctx.config.nonceTtlSeconds * 1000;
  await ctx.repository.insertNonce(sha256(nonce), scope, expiresAt);
  return { nonce, expiresAt: new Date(expiresAt) };
}

/**
 * Consumes a nonce issued under `scope` (an instance key or a relay scope): unused, this scope's, fresh.
 * Consumed whatever happens next. Throws CaRefused `ca.nonce_unknown`, `ca.nonce_expired`.
 */
export async function consumeScopedNonce(ctx: CaContext, nonce: Uint8Array, scope: string): Promise<void> {
  const found =
    nonce.length === SVSM_NONCE_SIZE ? await ctx.repository.consumeNonce(sha256(nonce)) : undefined;
  if (!found || found.instanceId !== scope) throw new CaRefused('ca.nonce_unknown');
  if (found.expiresAt <= ctx.clock().getTime()) throw new CaRefused('ca.nonce_expired');
}
