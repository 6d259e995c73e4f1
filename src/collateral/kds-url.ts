import { CollateralUnavailable, InvalidArgument } from '../errors.js';
import type { SnpProduct } from '../formats/snp/product.js';
import type { SnpReport } from '../formats/snp/report.js';
import { decodeTcb, type Tcb } from '../formats/snp/tcb.js';
import { isAllZero, toHex } from '../util/bytes.js';

/**
 * AMD Key Distribution Service URLs (AMD "VCEK Certificate and KDS Interface Specification" 57230, and the
 * shapes google/go-sev-guest verify/trust and virtee/snpguest request):
 *
 *   /vcek/v1/{Milan|Genoa}/{hex CHIP_ID, 64 B}?blSPL=&teeSPL=&snpSPL=&ucodeSPL=
 *   /vcek/v1/Turin/{hex CHIP_ID[0:8]}?fmcSPL=&blSPL=&teeSPL=&snpSPL=&ucodeSPL=
 *   /{vcek|vlek}/v1/{P}/cert_chain   PEM: ASK (or ASVK) then ARK
 *   /{vcek|vlek}/v1/{P}/crl          DER CRL issued by the ARK
 *
 * Hex is lower case; SPLs are plain decimal (go-sev-guest `%d`; virtee's `{:02}` zero-padding is accepted by
 * KDS too, but one canonical spelling keeps one cache entry and one throttle slot per item).
 */
export const KDS_DEFAULT_BASE_URL = 'https://kdsintf.amd.com';

/** Which endorsement key family an item belongs to: VCEK (per chip) or VLEK (per cloud provider). */
export type KdsSigner = 'vcek' | 'vlek';

/** The TCB components that name a VCEK; `fmc` is present for Turin only. */
export interface VcekTcb {
  readonly fmc?: number;
  readonly bootloader: number;
  readonly tee: number;
  readonly snp: number;
  readonly microcode: number;
}

/** One thing KDS serves. `hwid` is the full 64-byte CHIP_ID (Milan, Genoa) or its first 8 bytes (Turin). */
export type KdsItem = VcekItem | CertChainItem | CrlItem;
export interface VcekItem {
  readonly kind: 'vcek';
  readonly product: SnpProduct;
  readonly hwid: Uint8Array;
  readonly tcb: VcekTcb;
}
export interface CertChainItem {
  readonly kind: 'cert_chain';
  readonly product: SnpProduct;
  readonly signer: KdsSigner;
}
export interface CrlItem {
  readonly kind: 'crl';
  readonly product: SnpProduct;
  readonly signer: KdsSigner;
}

/** Length of the hardware id KDS expects in a VCEK URL for each product. */
export function hwidLength(product: SnpProduct): number {
  return product === 'Turin' ? 8 : 64;
}

/**
 * The VCEK item for a CHIP_ID and a REPORTED_TCB. The TCB is decoded with the product's layout (Turin moves
 * every component). `chipId` is the report's 64-byte CHIP_ID; for Turin an 8-byte hardware id (as a Turin
 * VCEK's hwID extension holds) is accepted too.
 *
 * Throws InvalidArgument `kds.chip_id_length`; CollateralUnavailable `kds.chip_id_masked` when the id KDS
 * needs is all zeros (MASK_CHIP_ID set by the host, or a VLEK-signed report): no VCEK can be fetched for it.
 */
export function vcekItem(product: SnpProduct, chipId: Uint8Array, reportedTcb: bigint): VcekItem {
  const need = hwidLength(product);
  if (chipId.length !== 64 && chipId.length !== need) {
    throw new InvalidArgument(
      'kds.chip_id_length',
      `CHIP_ID must be 64 bytes${need === 64 ? '' : ` (or ${need})`}, got ${chipId.length}`,
    );
  }
  const hwid = Uint8Array.from(chipId.subarray(0, need));
  if (isAllZero(hwid)) {
    throw new CollateralUnavailable(
      'kds.chip_id_masked',
      'CHIP_ID is all zeros (masked by the host or absent): KDS cannot serve a VCEK for it; the VCEK must come from the host certificate table',
    );
  }
  const t: Tcb = decodeTcb(reportedTcb, product);
  const tcb: VcekTcb =
    product === 'Turin'
      ? { fmc: t.fmc ?? 0, bootloader: t.bootloader, tee: t.tee, snp: t.snp, microcode: t.microcode }
      : { bootloader: t.bootloader, tee: t.tee, snp: t.snp, microcode: t.microcode };
  return { kind: 'vcek', product, hwid, tcb };
}

/** The VCEK item for a parsed report: CHIP_ID and REPORTED_TCB (the TCB the VCEK is derived from). */
export function vcekItemForReport(report: SnpReport, product: SnpProduct): VcekItem {
  return vcekItem(product, report.chipId, report.reportedTcb);
}

/** The query string of a VCEK URL, parameters in the order AMD documents. */
export function vcekQuery(product: SnpProduct, tcb: VcekTcb): string {
  const common = `blSPL=${tcb.bootloader}&teeSPL=${tcb.tee}&snpSPL=${tcb.snp}&ucodeSPL=${tcb.microcode}`;
  return product === 'Turin' ? `fmcSPL=${tcb.fmc ?? 0}&${common}` : common;
}

/** The path (and query) of an item on KDS, e.g. `/vcek/v1/Milan/cert_chain`. */
export function kdsPath(item: KdsItem): string {
  switch (item.kind) {
    case 'vcek':
      return `/vcek/v1/${item.product}/${toHex(item.hwid)}?${vcekQuery(item.product, item.tcb)}`;
    case 'cert_chain':
      return `/${item.signer}/v1/${item.product}/cert_chain`;
    case 'crl':
      return `/${item.signer}/v1/${item.product}/crl`;
  }
}

/**
 * Checks and normalizes a KDS base URL: http(s), no query or fragment, no trailing slash. A path prefix is
 * kept (a mirror may serve KDS under `/amd`). Throws InvalidArgument `kds.base_url`.
 */
export function normalizeBaseUrl(base: string): string {
  let u: URL;
  try {
    u = new URL(base);
  } catch {
    throw new InvalidArgument('kds.base_url', `KDS base URL is not a URL: ${JSON.stringify(base)}`);
  }
  if ((u.protocol !== 'https:' && u.protocol !== 'http:') || u.search || u.hash || u.username || u.password) {
    throw new InvalidArgument(
      'kds.base_url',
      'KDS base URL must be http(s) without credentials, query or fragment',
    );
  }
  return `${u.origin}${u.pathname.replace(/\/+$/, '')}`;
}

/** The full URL of an item under a (normalized) base URL. */
export function kdsUrl(baseUrl: string, item: KdsItem): string {
  return `${normalizeBaseUrl(baseUrl)}${kdsPath(item)}`;
}

/** A short human label for messages: `VCEK Milan 0a1b2c3d…`, `vlek cert_chain Genoa`. */
export function describeItem(item: KdsItem): string {
  if (item.kind === 'vcek')
    return `VCEK ${item.product} ${toHex(item.hwid).slice(0, 16)} ${vcekQuery(item.product, item.tcb)}`;
  return `${item.signer} ${item.kind} ${item.product}`;
}
