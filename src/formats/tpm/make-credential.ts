import { createCipheriv, createHmac } from 'node:crypto';
import { InvalidArgument, MalformedEvidence, NotSupported } from '../../errors.js';
import { Reader } from '../reader.js';
import { algLabel, HASH_ALGS, TPM_ALG, TPMA_OBJECT } from './constants.js';
import { type EncapsulationRandomness, encapsulate } from './encapsulate.js';
import { kdfa } from './kdf.js';
import { concat, hashInfo, readTpm2b, TPM2B_MAX, TpmWriter } from './marshal.js';
import type { TpmtPublic } from './public.js';

/**
 * TPM2_MakeCredential in software (TPM 2.0 Library Part 3 rev 1.59 §12.6; Part 1 §24.4-§24.5 credential
 * protection). Everything is keyed to the **EK**: the seed is encapsulated to the EK with label "IDENTITY",
 * the hashes use the EK's nameAlg and the symmetric cipher is the EK's (go-tpm's legacy
 * `credactivation.Generate` hashes with the AK's algorithm, which is only right when both are SHA-256).
 *
 * 1. seed ← encapsulate(EK, "IDENTITY")
 * 2. symKey = KDFa(nameAlg_EK, seed, "STORAGE", akName, ∅, sym.keyBits);
 *    encIdentity = AES-CFB(symKey, IV = 0, TPM2B(credential))
 * 3. hmacKey = KDFa(nameAlg_EK, seed, "INTEGRITY", ∅, ∅, |nameAlg_EK|·8);
 *    integrity = HMAC_nameAlg_EK(hmacKey, encIdentity ‖ akName)
 * 4. TPM2B_ID_OBJECT = TPM2B(TPM2B(integrity) ‖ encIdentity); TPM2B_ENCRYPTED_SECRET = TPM2B(encrypted seed)
 */

export interface MakeCredentialInput {
  /** The EK public area: a restricted decryption key with an AES-CFB symmetric definition. */
  readonly ekPublic: TpmtPublic;
  /** The Name of the key to bind to (the AK): u16 nameAlg ‖ digest. */
  readonly akName: Uint8Array;
  /** The secret to deliver, 1..|nameAlg_EK| bytes (a TPM2B_DIGEST). */
  readonly credential: Uint8Array;
}

export interface CredentialBlob {
  /** TPM2B_ID_OBJECT, size prefix included (ActivateCredential's credentialBlob). */
  readonly idObject: Uint8Array;
  /** TPM2B_ENCRYPTED_SECRET, size prefix included (ActivateCredential's secret). */
  readonly encryptedSecret: Uint8Array;
}

/** The magic and version tpm2-tools writes before a credential (`tpm2_makecredential -o`). */
export const CREDENTIAL_FILE_MAGIC = 0xbadcc0de;
export const CREDENTIAL_FILE_VERSION = 1;

function checkName(name: Uint8Array): void {
  const r = new Reader(name, 'tpm.make_credential.name');
  const alg = name.length >= 2 ? r.u16be() : -1;
  const h = HASH_ALGS[alg];
  if (h === undefined || name.length !== 2 + h.size) {
    throw new InvalidArgument(
      'tpm.make_credential.name',
      'akName must be u16 nameAlg ‖ digest of that algorithm',
    );
  }
}

/** The node cipher for the EK's symmetric definition: AES-{128,192,256}-CFB only. */
function ekCipher(ek: TpmtPublic): { name: string; keyBits: number } {
  const { algorithm, keyBits, mode } = ek.parameters.symmetric;
  if (algorithm !== TPM_ALG.AES || mode !== TPM_ALG.CFB || ![128, 192, 256].includes(keyBits)) {
    throw new NotSupported(
      'tpm.make_credential.symmetric',
      `EK symmetric ${algLabel(algorithm)}-${keyBits}-${algLabel(mode)} is not supported (AES-CFB)`,
    );
  }
  return { name: `aes-${keyBits}-cfb`, keyBits };
}

/**
 * Produces the credential blob and encrypted seed that `TPM2_ActivateCredential(AK, EK)` opens to return
 * `credential`, on the TPM that holds the EK and only for the key named `akName`. Throws InvalidArgument
 * `tpm.make_credential.ek_attributes` (EK is not a restricted decryption key), `.name`, `.credential_size`;
 * NotSupported `tpm.make_credential.symmetric` and the encapsulation errors.
 * `rnd` fixes the randomness for known-answer tests only.
 */
export function makeCredential(input: MakeCredentialInput, rnd?: EncapsulationRandomness): CredentialBlob {
  const { ekPublic: ek, akName, credential } = input;
  const need = TPMA_OBJECT.restricted | TPMA_OBJECT.decrypt;
  if ((ek.objectAttributes & need) !== need || (ek.objectAttributes & TPMA_OBJECT.sign) !== 0) {
    throw new InvalidArgument(
      'tpm.make_credential.ek_attributes',
      `EK attributes 0x${ek.objectAttributes.toString(16)} are not those of a restricted decryption key`,
    );
  }
  checkName(akName);
  const h = hashInfo(ek.nameAlg, 'tpm.make_credential.hash');
  if (credential.length === 0 || credential.length > h.size) {
    throw new InvalidArgument(
      'tpm.make_credential.credential_size',
      `credential must be 1..${h.size} bytes (the EK nameAlg digest size), got ${credential.length}`,
    );
  }
  const cipher = ekCipher(ek);
  const { seed, encryptedSecret } = encapsulate(ek, 'IDENTITY', rnd);

  const symKey = kdfa(h.id, seed, 'STORAGE', akName, new Uint8Array(), cipher.keyBits);
  const plain = new TpmWriter().tpm2b(credential).finish();
  const c = createCipheriv(cipher.name, symKey, new Uint8Array(16));
  const encIdentity = new Uint8Array(Buffer.concat([c.update(plain), c.final()]));

  const hmacKey = kdfa(h.id, seed, 'INTEGRITY', new Uint8Array(), new Uint8Array(), h.size * 8);
  const integrity = createHmac(h.node, hmacKey).update(encIdentity).update(akName).digest();

  const idObject = new TpmWriter()
    .tpm2b(concat(new TpmWriter().tpm2b(integrity).finish(), encIdentity))
    .finish();
  return { idObject, encryptedSecret: new TpmWriter().tpm2b(encryptedSecret).finish() };
}

/** The tpm2-tools credential file: u32 0xBADCC0DE ‖ u32 1 ‖ TPM2B_ID_OBJECT ‖ TPM2B_ENCRYPTED_SECRET. */
export function encodeCredentialFile(blob: CredentialBlob): Uint8Array {
  return new TpmWriter()
    .u32(CREDENTIAL_FILE_MAGIC)
    .u32(CREDENTIAL_FILE_VERSION)
    .bytes(blob.idObject)
    .bytes(blob.encryptedSecret)
    .finish();
}

/**
 * Parses a tpm2-tools credential file. Throws MalformedEvidence `tpm.credential_file.magic`, `.version`,
 * `.truncated`, `.trailing_bytes`, `.id_object`, `.encrypted_secret`.
 */
export function parseCredentialFile(bytes: Uint8Array): CredentialBlob {
  const r = new Reader(bytes, 'tpm.credential_file');
  if (r.u32be() !== CREDENTIAL_FILE_MAGIC) {
    throw new MalformedEvidence('tpm.credential_file.magic', 'not a tpm2-tools credential file');
  }
  const version = r.u32be();
  if (version !== CREDENTIAL_FILE_VERSION) {
    throw new MalformedEvidence('tpm.credential_file.version', `credential file version ${version}`);
  }
  const a = r.offset;
  readTpm2b(r, 2 + TPM2B_MAX.digest + 2 + TPM2B_MAX.digest, 'tpm.credential_file.id_object');
  const b = r.offset;
  readTpm2b(r, TPM2B_MAX.encryptedSecret, 'tpm.credential_file.encrypted_secret');
  r.end();
  return { idObject: bytes.slice(a, b), encryptedSecret: bytes.slice(b) };
}
