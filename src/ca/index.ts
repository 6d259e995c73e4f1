/**
 * The platform CA (docs/ca.md): EK and AK certificates for COCONUT-SVSM vTPMs, X.509 and C509, PKCS#10
 * and C509 requests, revocation and CRLs, and a hash-chained issuance log.
 */

export { openCaRepository } from '../store/ca-open.js';
// The CA's storage lives on the broker's engines (src/store); its types are part of the CA's API.
export type * from '../store/ca-types.js';
export * from './algorithms.js';
export * from './c509-output.js';
export * from './ca-files.js';
export * from './certificate.js';
export * from './config.js';
export * from './crl.js';
export * from './csr.js';
export * from './errors.js';
export * from './extensions.js';
export * from './issuance-log.js';
export * from './key-input.js';
export * from './key-store.js';
export * from './names.js';
export * from './options.js';
export * from './platform-ca.js';
export * from './profiles.js';
export * from './registry.js';
export type * from './relayed.js';
export * from './tee-evidence.js';
