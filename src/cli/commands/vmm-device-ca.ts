import { readFileSync } from 'node:fs';
import { httpCaClient, httpCertifyRelay } from '../../admin/ca-client.js';
import { readTokenFile } from '../../admin/token-file.js';
import { InvalidArgument } from '../../errors.js';
import type { PlatformIdentity } from '../../formats/platform-identity.js';
import { PvCall, PvFeature } from '../../formats/pvchannel/constants.js';
import { certifyAkHandler, certifyEkHandler } from '../../pvchannel/certify-handlers.js';
import type { CallHandler } from '../../pvchannel/device.js';

/** The vmm-device options of the CERTIFY calls. */
export interface CertifyOptions {
  caUrl?: string;
  caTokenFile?: string;
  caCert?: string;
}

/**
 * CERTIFY_EK / CERTIFY_AK handlers (docs/pvchannel.md §7.2) relaying to the CA service at `--ca-url`
 * (`serve --ca-dir`) with this host's credential (`--ca-token-file`). `identity` is what the control plane
 * told this VMM (`--identity`): sent as a claim the CA checks, never as the certificate's identity.
 * Throws InvalidArgument `cli.options` when a CERTIFY feature is offered without a CA.
 */
export function certifyHandlers(
  features: bigint,
  o: CertifyOptions,
  identity: PlatformIdentity | undefined,
): Record<number, CallHandler> {
  if ((features & (PvFeature.CertifyEk | PvFeature.CertifyAk)) === 0n) return {};
  if (o.caUrl === undefined || o.caTokenFile === undefined) {
    throw new InvalidArgument(
      'cli.options',
      '--features certify-ek/certify-ak need --ca-url and --ca-token-file',
    );
  }
  const client = httpCaClient({
    url: o.caUrl,
    token: readTokenFile(o.caTokenFile),
    ...(o.caCert !== undefined ? { ca: readFileSync(o.caCert) } : {}),
  });
  const relay = httpCertifyRelay(client, () => identity);
  const h: Record<number, CallHandler> = {};
  if (features & PvFeature.CertifyEk) h[PvCall.CertifyEk] = certifyEkHandler(relay);
  if (features & PvFeature.CertifyAk) h[PvCall.CertifyAk] = certifyAkHandler(relay);
  return h;
}
