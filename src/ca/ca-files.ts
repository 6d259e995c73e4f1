import { MalformedEvidence } from '../errors.js';
import { decodePem, encodePem } from '../formats/pem.js';

/** The files of a CA directory and their PEM forms (docs/ca.md "Files of a CA directory"). */

export const CA_FILES = {
  config: 'ca.json',
  key: 'ca-key.pem',
  certificate: 'ca-cert.pem',
  chain: 'ca-chain.pem',
  database: 'ca.db',
} as const;

/**
 * Instead of `ca-key.pem`, in a CA whose key is in a PKCS#11 token: the key's `pkcs11:` URI (not secret: module
 * path and PIN file path, never the PIN; docs/keys.md).
 */
export const CA_KEY_URI_FILE = 'ca-key.uri';

/**
 * DER certificates from a PEM bundle such as `ca-chain.pem`, in order, through the strict PEM reader
 * (src/formats/pem.ts). Text around the blocks, bad base64 and a block that is not a CERTIFICATE are all
 * MalformedEvidence `ca.chain.pem`: a chain file holds nothing else, and a key pasted into it must not be
 * skipped silently.
 */
export function pemCertificates(text: string): Uint8Array[] {
  return decodePem(text, 'ca.chain').map((block, i) => {
    if (block.label !== 'CERTIFICATE') {
      throw new MalformedEvidence('ca.chain.pem', `PEM block ${i + 1} is ${block.label}, not CERTIFICATE`);
    }
    return block.der;
  });
}

/** A certificate as PEM (RFC 7468 §5). */
export function certificatePem(der: Uint8Array): string {
  return encodePem('CERTIFICATE', der);
}

/** A CRL as PEM (RFC 7468 §6). */
export function crlPem(der: Uint8Array): string {
  return encodePem('X509 CRL', der);
}
