import type { KdsClient } from '../../collateral/index.js';
import { CollateralUnavailable, InvalidArgument } from '../../errors.js';
import {
  CertGuid,
  decodeSignerInfo,
  findCert,
  parseCertTable,
  productFromCpuid,
  SigningKey,
  type SnpProduct,
  type SnpReport,
} from '../../formats/snp/index.js';
import { parseAmdLeaf } from './amd-cert.js';
import type { SnpCerts } from './verify.js';
import { loadDer } from './x509.js';

/** Where each certificate came from, so a verdict can say so. */
export type CertSource = 'given' | 'cert-table' | 'kds';

export interface CertInputs {
  /** VCEK or VLEK, DER or PEM. */
  readonly leaf?: Uint8Array;
  /** ASK or ASVK, DER or PEM. */
  readonly intermediate?: Uint8Array;
  readonly root?: Uint8Array;
  /** The extended report's certificate table (GHCB), as the host returned it. */
  readonly certTable?: Uint8Array;
  /** AMD KDS, for whatever is still missing (VCEK and the cert chain; never a VLEK). */
  readonly kds?: Pick<KdsClient, 'getVcekForReport' | 'getCertChain'>;
  /** For a v2 report, whose product the report does not say. */
  readonly product?: SnpProduct;
}

export interface ResolvedCerts {
  readonly certs: SnpCerts;
  readonly product: SnpProduct | undefined;
  readonly sources: {
    readonly leaf: CertSource;
    readonly intermediate: CertSource;
    readonly root: CertSource;
  };
}

/**
 * Gathers the VCEK/VLEK, ASK/ASVK and ARK for a report: certificates given explicitly win, then the
 * certificate table, then AMD KDS (cache first; reference snp-tdx.md A4). Nothing here is trusted: the
 * verifier checks every certificate against the pinned roots. Throws CollateralUnavailable when a
 * certificate cannot be found (a VLEK only ever comes from the host), InvalidArgument when the product
 * of a v2 report is needed for KDS and unknown.
 */
export async function resolveSnpCerts(report: SnpReport, inputs: CertInputs): Promise<ResolvedCerts> {
  const signer = decodeSignerInfo(report.signerInfo).signingKey === SigningKey.VLEK ? 'vlek' : 'vcek';
  const table = inputs.certTable ? parseCertTable(inputs.certTable) : [];
  const fromTable = (guid: string) => findCert(table, guid);

  let leaf: [Uint8Array, CertSource] | undefined = inputs.leaf ? [loadDer(inputs.leaf), 'given'] : undefined;
  const tableLeaf = fromTable(signer === 'vlek' ? CertGuid.VLEK : CertGuid.VCEK);
  if (!leaf && tableLeaf) leaf = [loadDer(tableLeaf), 'cert-table'];
  let intermediate: [Uint8Array, CertSource] | undefined = inputs.intermediate
    ? [loadDer(inputs.intermediate), 'given']
    : undefined;
  const tableAsk = fromTable(CertGuid.ASK);
  if (!intermediate && tableAsk) intermediate = [loadDer(tableAsk), 'cert-table'];
  let root: [Uint8Array, CertSource] | undefined = inputs.root ? [loadDer(inputs.root), 'given'] : undefined;
  const tableArk = fromTable(CertGuid.ARK);
  if (!root && tableArk) root = [loadDer(tableArk), 'cert-table'];

  let product = inputs.product ?? (report.cpuid && productFromCpuid(report.cpuid.family, report.cpuid.model));
  if (!product && leaf?.[0]) {
    const name = parseAmdLeaf(leaf[0]).product;
    if (name) product = name;
  }

  if (!leaf || !intermediate || !root) {
    const kds = inputs.kds;
    if (!kds) {
      throw new CollateralUnavailable(
        'snp.certs_missing',
        `the ${signer.toUpperCase()} chain is incomplete and fetching from AMD KDS is disabled`,
      );
    }
    if (!product) {
      throw new InvalidArgument(
        'snp.product_unknown',
        'a v2 report does not name its product: give --product',
      );
    }
    if (!leaf) {
      if (signer === 'vlek') {
        throw new CollateralUnavailable(
          'snp.vlek_missing',
          'a VLEK comes only from the host: give --vlek or --cert-table',
        );
      }
      leaf = [await kds.getVcekForReport(report, product), 'kds'];
    }
    if (!intermediate || !root) {
      const chain = await kds.getCertChain(product, signer);
      intermediate ??= [chain.intermediate, 'kds'];
      root ??= [chain.ark, 'kds'];
    }
  }
  return {
    certs: { leaf: leaf[0], intermediate: intermediate[0], root: root[0] },
    product,
    sources: { leaf: leaf[1], intermediate: intermediate[1], root: root[1] },
  };
}
