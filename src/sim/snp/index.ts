/**
 * Simulated AMD SEV-SNP hardware for tests, demos and benchmarks: an AMD-shaped key hierarchy, report
 * signing, CRLs, certificate tables and a per-guest firmware. Its roots are not AMD's: only a verifier told
 * to trust `chain.rootSha256` accepts what it produces.
 */
export { AmdOid, amdProductName, hwIdOf } from './amd-extensions.js';
export { certTableFor } from './cert-table.js';
export {
  createSimChain,
  DEFAULT_CSP_ID,
  DEFAULT_SIM_TCB,
  generateSimKeys,
  type SimCert,
  type SimChain,
  type SimChainOptions,
  type SimKeyPair,
  type SimKeys,
  sharedSimChain,
} from './chain.js';
export { createCrl, type SimCrlOptions } from './crl.js';
export { type SimLaunchParams, type SimReportResponse, SimSnpFirmware } from './firmware.js';
export { loadSimChain, saveSimChain } from './persist.js';
export {
  defaultReportFields,
  SIM_CPUID,
  SIM_DEFAULT_MEASUREMENT,
  SIM_DEFAULT_POLICY,
  type SignReportOptions,
  type SimSigner,
  signReport,
} from './report.js';
