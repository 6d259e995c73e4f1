import { buildCertTable, CertGuid } from '../../formats/snp/cert-table.js';
import type { SimChain } from './chain.js';
import type { SimSigner } from './report.js';

/**
 * The certificate table a host returns with an extended report (GHCB spec 56421, SNP Extended Guest
 * Request): the leaf (VCEK or VLEK GUID), its issuer under the ASK GUID (the ASVK for a VLEK), then the ARK.
 */
export function certTableFor(chain: SimChain, signer: SimSigner = 'VCEK'): Uint8Array {
  return buildCertTable(
    signer === 'VLEK'
      ? [
          { guid: CertGuid.VLEK, data: chain.vlek.der },
          { guid: CertGuid.ASK, data: chain.asvk.der },
          { guid: CertGuid.ARK, data: chain.ark.der },
        ]
      : [
          { guid: CertGuid.VCEK, data: chain.vcek.der },
          { guid: CertGuid.ASK, data: chain.ask.der },
          { guid: CertGuid.ARK, data: chain.ark.der },
        ],
  );
}
