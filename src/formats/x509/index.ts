export * from './algorithm.js';
export * from './certificate.js';
export * from './crl.js';
export * from './extension-builders.js';
export * from './instance-identity.js';
export * from './key-identifier.js';
export * from './name.js';
export * from './signed.js';
