import { InvalidArgument } from '../errors.js';
import type { SnpCerts } from '../evidence/snp/verify.js';
import { decodeSignerInfo, SigningKey } from '../formats/snp/bits.js';
import { CertGuid, findCert, parseCertTable } from '../formats/snp/cert-table.js';
import type { SnpReport } from '../formats/snp/report.js';
import { guidToEfiBytes } from '../formats/svsm/guid.js';
import { findService, parseServicesManifest, SERVICES_MANIFEST_GUID } from '../formats/svsm/manifest.js';
import { parseVtpmManifest, VTPM_SERVICE_GUID, type VtpmManifest } from '../formats/svsm/vtpm.js';
import { CaRefused } from './errors.js';

/**
 * Helpers for route (a): the SNP report's certificates, and the vTPM entry of the manifest it covers.
 */

/**
 * The (leaf, intermediate, root) certificates of an extended report's certificate table: the VCEK or VLEK
 * the report's SIGNING_KEY names, the ASK/ASVK and the ARK (GHCB 56421 §4.1.8.1). Throws InvalidArgument
 * `ca.snp.certs` when one is missing; the table parser's MalformedEvidence `snp.cert_table.*`.
 */
export function certsFromTable(report: SnpReport, table: Uint8Array): SnpCerts {
  const entries = parseCertTable(table);
  const vlek = decodeSignerInfo(report.signerInfo).signingKey === SigningKey.VLEK;
  const leaf = findCert(entries, vlek ? CertGuid.VLEK : CertGuid.VCEK);
  const intermediate = findCert(entries, CertGuid.ASK);
  const root = findCert(entries, CertGuid.ARK);
  if (!leaf || !intermediate || !root) {
    throw new InvalidArgument(
      'ca.snp.certs',
      `the certificate table lacks the ${vlek ? 'VLEK' : 'VCEK'}, ASK or ARK`,
    );
  }
  return { leaf, intermediate, root };
}

const MANIFEST_MAGIC = guidToEfiBytes(SERVICES_MANIFEST_GUID);

/**
 * The vTPM manifest inside what REPORT_DATA covers: a full services manifest (SVSM_ATTEST_SERVICES; it
 * starts with the manifest GUID) or the single vTPM service's payload (SVSM_ATTEST_SINGLE_SERVICE).
 * Throws CaRefused `ca.manifest_no_vtpm`; MalformedEvidence `svsm.manifest.*`, `svsm.vtpm.*`, `tpm.public.*`.
 */
export function vtpmManifestOf(manifest: Uint8Array): VtpmManifest {
  const isServices = manifest.length >= 16 && MANIFEST_MAGIC.every((b, i) => manifest[i] === b);
  if (!isServices) return parseVtpmManifest(manifest);
  const entry = findService(parseServicesManifest(manifest), VTPM_SERVICE_GUID);
  if (!entry) throw new CaRefused('ca.manifest_no_vtpm', 'the services manifest lists no vTPM service');
  return parseVtpmManifest(entry.payload);
}
