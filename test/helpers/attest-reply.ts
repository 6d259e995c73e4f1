import type { KeyObject } from 'node:crypto';
import { unwrapSecret } from '../../src/native/jwe-ecdh-es.js';

const unb64 = (s: string) => new Uint8Array(Buffer.from(s, 'base64'));

/**
 * The plaintext of a POST /v1/attest reply body (its `decryption` and `ciphertext`, base64 in JSON), opened
 * with the guest's P-521 private key, as a client reading the JSON API directly does.
 */
export function openAttestReply(
  privateKey: KeyObject,
  // biome-ignore lint/suspicious/noExplicitAny: the reply as parsed JSON
  body: any,
): Uint8Array {
  const d = body.decryption;
  return unwrapSecret(privateKey, {
    decryption: {
      epk: { x: unb64(d.epk.x), y: unb64(d.epk.y) },
      wrappedCek: unb64(d.wrappedCek),
      aad: unb64(d.aad),
      iv: unb64(d.iv),
      tag: unb64(d.tag),
    },
    ciphertext: unb64(body.ciphertext),
  });
}
