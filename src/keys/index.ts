export { AesGcmKek } from './file-kek.js';
export { generatePkcs11Kek, generatePkcs11Signer, openPkcs11Kek, openPkcs11Signer } from './pkcs11-keys.js';
export { closePkcs11, MODULE_ENV, PIN_ENV } from './pkcs11-module.js';
export { formatPkcs11Uri, keyIdOf, type Pkcs11Uri, parsePkcs11Uri } from './pkcs11-uri.js';
export {
  fileKeys,
  isPkcs11Ref,
  type KeyProvider,
  keyProviderFor,
  pkcs11KeyGenerator,
  pkcs11Keys,
} from './provider.js';
export {
  curveOf,
  EC_CURVES,
  type EcCurve,
  type EcSigner,
  keyObjectSigner,
  publicKeyId,
  type SignHash,
  toSigner,
} from './signer.js';
export type { WrappingKey } from './types.js';
