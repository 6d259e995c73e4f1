export * from './cert-path.js';
export * from './claims.js';
export * from './evidence.js';
export * from './verify-quote.js';
