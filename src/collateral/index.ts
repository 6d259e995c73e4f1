export * from './cache.js';
export * from './import.js';
export * from './kds-bodies.js';
export * from './kds-budget.js';
export * from './kds-client.js';
export * from './kds-url.js';
