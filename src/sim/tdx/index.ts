export {
  intelName,
  newP256,
  type SimKeyPair,
  sgxExtension,
  simIntelCertificate,
  simIntelCrl,
} from './certs.js';
export {
  SIM_FMSPC,
  SIM_QE_MRSIGNER,
  SIM_TD_ATTRIBUTES,
  SIM_XFAM,
  SimTdxPlatform,
  type SimTdxQuoteOptions,
} from './platform.js';
export {
  encodeQeReport,
  encodeTdBody,
  encodeTdxQuote,
  INTEL_QE_VENDOR_ID,
  rawP256,
  type SimTdBody,
} from './quote.js';
