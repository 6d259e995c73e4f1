export * from './boot-rules.js';
export * from './broker.js';
export * from './errors.js';
export * from './kek.js';
export * from './sealing-key.js';
export type * from './types.js';
