/**
 * The COCONUT-SVSM attestation proxy protocol ("aproxy", libaproxy) 0.1.0 and the Vouchsafe 0.2.0
 * extensions, and the two open proposals' messages (svsm PR #1122, PR #1203): framing, strict message codecs, REPORT_DATA, the 0.2.0 secret payload and signed content.
 * Wire reference: docs/protocol.md.
 */
export * from './attestation.js';
export * from './commit.js';
export * from './dialect.js';
export * from './dialect-binding.js';
export * from './error-reply.js';
export { LIMITS } from './fields.js';
export * from './frame.js';
export * from './identity.js';
export * from './json.js';
export * from './kbs-jwe.js';
export * from './lease.js';
export * from './negotiation.js';
export * from './pr1122.js';
export * from './pr1203.js';
export * from './report-data.js';
export * from './secret-payload.js';
export * from './signed-content.js';
export * from './types.js';
