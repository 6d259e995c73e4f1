export * from './guid.js';
export * from './manifest.js';
export * from './vtpm.js';
