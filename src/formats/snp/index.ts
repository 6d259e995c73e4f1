export * from './amd-cert-extensions.js';
export * from './bits.js';
export * from './cert-table.js';
export * from './product.js';
export * from './report.js';
export * from './tcb.js';
