/**
 * A key-encryption key: authenticated encryption with associated data, wherever the key lives. The broker's
 * KekSource (src/broker/kek.ts) is this contract; the file KEK (AES-256-GCM in memory) and the PKCS#11 KEK
 * (CKM_AES_GCM in the token) implement it.
 */
export interface WrappingKey {
  /** A stable, non-secret identifier, stored beside each wrapped value. */
  readonly id: string;
  encrypt(plaintext: Uint8Array, aad: Uint8Array): Promise<Uint8Array>;
  /** Throws InvalidArgument `broker.kek.unwrap_failed` on any mismatch; never returns unauthenticated bytes. */
  decrypt(wrapped: Uint8Array, aad: Uint8Array): Promise<Uint8Array>;
}
