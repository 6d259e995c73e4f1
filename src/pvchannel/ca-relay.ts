import type { PlatformCa } from '../ca/platform-ca.js';
import type { RegistryLookup } from '../ca/registry.js';
import type { RelayedCertificate } from '../ca/relayed.js';
import type { PlatformIdentity } from '../formats/platform-identity.js';
import type { CertifyRelay, RelayedAnswer } from './certify-handlers.js';

/**
 * A {@link CertifyRelay} to a CA in the same process (tests and `vouchsafe demo --platform`): what the CA
 * service's routes do, without HTTP. `caller` names the relay (its nonce scope); `claimedIdentity` is what
 * this VMM believes the instance is, checked by the CA and never used by it.
 */
export function inProcessRelay(
  ca: PlatformCa,
  registry: RegistryLookup,
  caller: string,
  claimedIdentity?: () => PlatformIdentity | undefined,
): CertifyRelay {
  const answer = (c: RelayedCertificate): RelayedAnswer => ({
    certificate: c.c509 ?? c.der,
    chain: ca.chain,
  });
  const claim = () => {
    const id = claimedIdentity?.();
    return id ? { claimedIdentity: id } : {};
  };
  return {
    async nonce() {
      return (await ca.createRelayNonce(caller)).nonce;
    },
    async certifyEk(b) {
      const format = b.format === 'c509' ? 'c509-type2' : 'x509';
      return answer(await ca.certifyEkFromTee({ caller, ...b, format, ...claim() }, registry));
    },
    async certifyAk(b) {
      const format = b.format === 'c509' ? 'c509-type2' : 'x509';
      return answer(await ca.certifyAkFromTee({ caller, ...b, format, ...claim() }, registry));
    },
  };
}
