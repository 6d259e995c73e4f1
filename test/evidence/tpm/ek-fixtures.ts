import type { KeyObject } from 'node:crypto';
import { publicFromKeyObject, TPM_ALG, type TpmtPublic } from '../../../src/formats/tpm/index.js';
import { fromHex } from '../../../src/util/bytes.js';
import { newKeyPairSync } from '../../../src/util/key-pair.js';

/**
 * Software EKs shaped like the TCG EK credential profile templates (go-tpm `tpm2/templates.go`, profile
 * v2.6 §B.3/B.4): low-range RSA-2048 and P-256 (SHA-256, AES-128-CFB, attributes 0x000300B2, PolicySecret
 * (endorsement) policy) and a high-range P-384 (SHA-384, AES-256-CFB, attributes 0x000300F2).
 */

export const LOW_RANGE_POLICY = fromHex('837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa')!;

export interface SoftEk {
  readonly name: string;
  readonly pub: TpmtPublic;
  /** TPMU_SENSITIVE_COMPOSITE: RSA prime p or the ECC scalar. */
  readonly sensitive: Uint8Array;
  readonly privateKey: KeyObject;
}

function ek(
  name: string,
  kp: { publicKey: KeyObject; privateKey: KeyObject },
  t: Parameters<typeof publicFromKeyObject>[1],
): SoftEk {
  const jwk = kp.privateKey.export({ format: 'jwk' });
  const secret = (jwk.p ?? jwk.d)!;
  return {
    name,
    pub: publicFromKeyObject(kp.publicKey, t),
    sensitive: new Uint8Array(Buffer.from(secret, 'base64url')),
    privateKey: kp.privateKey,
  };
}

export function softEks(): SoftEk[] {
  const aes = (bits: number) => ({ algorithm: TPM_ALG.AES, keyBits: bits, mode: TPM_ALG.CFB });
  return [
    ek('RSA-2048 low range', newKeyPairSync('rsa', { modulusLength: 2048 }), {
      nameAlg: TPM_ALG.SHA256,
      objectAttributes: 0x000300b2,
      authPolicy: LOW_RANGE_POLICY,
      symmetric: aes(128),
    }),
    ek('P-256 low range', newKeyPairSync('ec', { namedCurve: 'P-256' }), {
      nameAlg: TPM_ALG.SHA256,
      objectAttributes: 0x000300b2,
      authPolicy: LOW_RANGE_POLICY,
      symmetric: aes(128),
    }),
    ek('P-384 high range', newKeyPairSync('ec', { namedCurve: 'P-384' }), {
      nameAlg: TPM_ALG.SHA384,
      objectAttributes: 0x000300f2,
      symmetric: aes(256),
    }),
  ];
}
