export * from './cert-path.js';
export * from './claims.js';
export * from './verify-quote.js';
