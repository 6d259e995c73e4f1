/**
 * Attestation-result tokens: EAR (draft-ietf-rats-ear) JWTs signed by the broker (ES256/ES384), the key ring
 * with rotation, and the JWKS that publishes the verification keys. docs/kbs.md "Tokens".
 */
export * from './ear.js';
export * from './ear-tokens.js';
export * from './jwt.js';
export * from './key-ring.js';
