import { identityToWire } from '../formats/aproxy/identity.js';
import type { PlatformIdentity } from '../formats/platform-identity.js';
import type { CallHandler } from './device.js';

/**
 * The GET_PLATFORM_IDENTITY handler (docs/pvchannel.md §7): the identity the control plane gave this VMM,
 * as UTF-8 JSON. Informative only: nothing trusts it (certificates take identity from the broker's registry).
 */
export function platformIdentityHandler(
  identity: () => PlatformIdentity | Promise<PlatformIdentity>,
): CallHandler {
  return async () => new TextEncoder().encode(JSON.stringify(identityToWire(await identity())));
}
