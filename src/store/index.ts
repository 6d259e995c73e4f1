export * from './audit-hash.js';
export * from './audit-verify.js';
export * from './open.js';
export * from './postgres.js';
export * from './sqlite.js';
export type * from './types.js';
