export * from './broker-signature.js';
export * from './jwe-ecdh-es.js';
export * from './p521.js';
export * from './zeroize.js';
