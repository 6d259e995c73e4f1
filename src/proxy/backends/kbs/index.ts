/**
 * The host proxy's KBS backend: serves COCONUT-SVSM guests (aproxy protocol 0.1.0) from any Trustee-style
 * KBS, Vouchsafe's included, exactly as COCONUT's aproxy `--protocol kbs` does. docs/kbs.md "Proxy backend".
 */
export * from './backend.js';
export * from './cookie-jar.js';
export * from './forwarder.js';
