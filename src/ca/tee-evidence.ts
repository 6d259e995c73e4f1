import { guidToEfiBytes } from '../formats/svsm/guid.js';
import { findService, parseServicesManifest, SERVICES_MANIFEST_GUID } from '../formats/svsm/manifest.js';
import { parseVtpmManifest, VTPM_SERVICE_GUID, type VtpmManifest } from '../formats/svsm/vtpm.js';
import { CaRefused } from './errors.js';

/**
 * Route (a)'s manifest helper. The report's certificates are gathered by the one SEV-SNP pipeline
 * (src/evidence/snp verifySnpAttestation), not here.
 */

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
