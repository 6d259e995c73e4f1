import { InvalidArgument } from '../errors.js';

/**
 * Intel PCS URLs for TDX collateral (Intel "Provisioning Certification Service for ECDSA Attestation" API v4;
 * the same as google/go-tdx-guest's verify package requests):
 *
 *   {pcs}/tdx/certification/v4/tcb?fmspc={hex}              TCB Info (JSON), TCB-Info-Issuer-Chain header
 *   {pcs}/tdx/certification/v4/qe/identity                  TD QE Identity (JSON), SGX-Enclave-Identity-Issuer-Chain
 *   {pcs}/sgx/certification/v4/pckcrl?ca={platform|processor}&encoding=der   PCK CRL (DER), SGX-PCK-CRL-Issuer-Chain
 *   {certificates}/IntelSGXRootCA.der                       Root CA CRL (DER; the PCK CAs' CRL distribution point)
 *
 * FMSPC is lower-case hex (6 bytes), so each item has one URL, one cache file and one throttle slot.
 */
export const PCS_DEFAULT_BASE_URL = 'https://api.trustedservices.intel.com';
export const INTEL_CERTIFICATES_BASE_URL = 'https://certificates.trustedservices.intel.com';

/** One thing PCS serves for TDX. */
export type PcsItem =
  | { readonly kind: 'tcb_info'; readonly fmspc: string }
  | { readonly kind: 'qe_identity' }
  | { readonly kind: 'pck_crl'; readonly ca: 'platform' | 'processor' }
  | { readonly kind: 'root_ca_crl' };

/** Checks and lower-cases an FMSPC (12 hex digits). Throws InvalidArgument `pcs.fmspc`. */
export function normalizeFmspc(fmspc: string): string {
  if (typeof fmspc !== 'string' || !/^[0-9a-fA-F]{12}$/.test(fmspc))
    throw new InvalidArgument('pcs.fmspc', 'FMSPC must be 12 hex digits');
  return fmspc.toLowerCase();
}

/** Checks a base URL (http(s), no query, fragment or credentials) and drops a trailing slash. */
export function normalizePcsBaseUrl(url: string, what: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new InvalidArgument('pcs.base_url', `${what} is not a URL`);
  }
  if (!/^https?:$/.test(u.protocol) || u.search || u.hash || u.username || u.password)
    throw new InvalidArgument(
      'pcs.base_url',
      `${what} must be http(s) with no query, fragment or credentials`,
    );
  return u.toString().replace(/\/+$/, '');
}

/** The path (and query) of an item under its base URL. */
export function pcsPath(item: PcsItem): string {
  switch (item.kind) {
    case 'tcb_info':
      return `/tdx/certification/v4/tcb?fmspc=${normalizeFmspc(item.fmspc)}`;
    case 'qe_identity':
      return '/tdx/certification/v4/qe/identity';
    case 'pck_crl':
      return `/sgx/certification/v4/pckcrl?ca=${item.ca}&encoding=der`;
    case 'root_ca_crl':
      return '/IntelSGXRootCA.der';
  }
}

/** The response header holding an item's issuer chain; the Root CA CRL has none (the root signs it). */
export function issuerChainHeader(item: PcsItem): string | undefined {
  switch (item.kind) {
    case 'tcb_info':
      return 'TCB-Info-Issuer-Chain';
    case 'qe_identity':
      return 'SGX-Enclave-Identity-Issuer-Chain';
    case 'pck_crl':
      return 'SGX-PCK-CRL-Issuer-Chain';
    case 'root_ca_crl':
      return undefined;
  }
}

/**
 * Where an item lives in a collateral directory, built only from validated values:
 *
 *   pcs/tdx/tcb-{fmspc}.json            the PCS response as served ({"tcbInfo":…,"signature":…})
 *   pcs/tdx/qe-identity.json            ({"enclaveIdentity":…,"signature":…})
 *   pcs/sgx/pckcrl-{platform|processor}.der
 *   pcs/sgx/root-ca-crl.der
 *
 * each (but the Root CA CRL) with its issuer chain as PEM beside it in `{name}.issuer-chain.pem`.
 */
export function pcsCachePath(item: PcsItem): string {
  switch (item.kind) {
    case 'tcb_info':
      return `pcs/tdx/tcb-${normalizeFmspc(item.fmspc)}.json`;
    case 'qe_identity':
      return 'pcs/tdx/qe-identity.json';
    case 'pck_crl':
      return `pcs/sgx/pckcrl-${item.ca}.der`;
    case 'root_ca_crl':
      return 'pcs/sgx/root-ca-crl.der';
  }
}

/** A short description for messages. */
export function describePcsItem(item: PcsItem): string {
  switch (item.kind) {
    case 'tcb_info':
      return `TDX TCB Info for FMSPC ${item.fmspc}`;
    case 'qe_identity':
      return 'TD QE Identity';
    case 'pck_crl':
      return `PCK ${item.ca} CA CRL`;
    case 'root_ca_crl':
      return 'SGX Root CA CRL';
  }
}
