import type { PlatformIdentity } from '../formats/platform-identity.js';
import type { CertifyRelay, RelayedAnswer, RelayedEvidenceBody } from '../pvchannel/certify-handlers.js';
import { decodeBase64, encodeBase64 } from '../util/base64.js';
import { CaCertifyResponse, type CaCertifyResponseJson, CaNonceResponse } from '../wire/ca.js';
import { adminCaller, type HttpAdminOptions } from './http.js';

/**
 * The platform CA service's client (/v1/ca/*, docs/ca.md "The CA as a service"), over the admin client's
 * one HTTP path (pinned CA, deadlines, bounded replies; replies checked against src/wire/ca.ts, refusals
 * as the CA's typed errors with their code and reason). `token` is the caller's credential: for a VMM's
 * device, this host's.
 */
export interface CaServiceClient {
  nonce(call: 'ek' | 'ak'): Promise<Uint8Array>;
  certifyEk(body: CertifyBody): Promise<CaCertifyResponseJson>;
  certifyAk(body: CertifyBody & { readonly csr: Uint8Array }): Promise<CaCertifyResponseJson>;
  close(): void;
}

export interface CertifyBody extends RelayedEvidenceBody {
  /** What this host believes the instance is: checked by the CA (`ca.identity_mismatch`), never used. */
  readonly claimedIdentity?: PlatformIdentity;
}

function wire(b: CertifyBody): Record<string, unknown> {
  return {
    nonce: encodeBase64(b.nonce),
    report: encodeBase64(b.report),
    certTable: encodeBase64(b.certTable),
    manifest: encodeBase64(b.manifest),
    format: b.format,
    ...(b.claimedIdentity ? { claimedIdentity: b.claimedIdentity } : {}),
  };
}

export function httpCaClient(o: HttpAdminOptions): CaServiceClient {
  const { call, close } = adminCaller(o);
  return {
    async nonce(c) {
      const r = await call('POST', '/v1/ca/nonce', CaNonceResponse, { call: c });
      return decodeBase64(r.nonce, 'admin.bad_response', 'nonce');
    },
    certifyEk: (b) => call('POST', '/v1/ca/certify-ek', CaCertifyResponse, wire(b)),
    certifyAk: (b) =>
      call('POST', '/v1/ca/certify-ak', CaCertifyResponse, { ...wire(b), csr: encodeBase64(b.csr) }),
    close,
  };
}

/**
 * The device's relay over the CA service (src/pvchannel/certify-handlers.ts): what `vouchsafe vmm-device
 * --ca-url` registers for CERTIFY_EK and CERTIFY_AK. `claimedIdentity` is the identity the control plane
 * gave this VMM (the same GET_PLATFORM_IDENTITY serves), sent for the CA to check.
 */
export function httpCertifyRelay(
  client: CaServiceClient,
  claimedIdentity?: () => PlatformIdentity | undefined,
): CertifyRelay {
  const answer = (r: CaCertifyResponseJson): RelayedAnswer => ({
    certificate: decodeBase64(r.certificate, 'admin.bad_response', 'certificate'),
    chain: r.chain.map((c) => decodeBase64(c, 'admin.bad_response', 'chain')),
  });
  const claim = () => {
    const id = claimedIdentity?.();
    return id ? { claimedIdentity: id } : {};
  };
  return {
    nonce: (c) => client.nonce(c),
    certifyEk: async (b) => answer(await client.certifyEk({ ...b, ...claim() })),
    certifyAk: async (b) => answer(await client.certifyAk({ ...b, ...claim() })),
  };
}
