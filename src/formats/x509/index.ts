export * from './certificate.js';
export * from './instance-identity.js';
