import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { MalformedEvidence } from '../errors.js';
import { decodePemBlock, looksLikePem, pemText } from '../formats/pem.js';
import { TPMA_OBJECT } from '../formats/tpm/constants.js';
import { publicToKeyObject } from '../formats/tpm/key.js';
import { type ParsedPublic, parsePublic, parseTpm2bPublic } from '../formats/tpm/public.js';

/**
 * Public keys as callers hand them to the CA: a TPM public area (TPM2B_PUBLIC as tpm2-tools writes it, or a
 * bare TPMT_PUBLIC as go-tpm-tools and the SVSM manifest carry it), or a SubjectPublicKeyInfo (DER or PEM).
 */

export interface PublicKeyInput {
  readonly key: KeyObject;
  /** DER SubjectPublicKeyInfo. */
  readonly spki: Uint8Array;
  /** Present when the input was a TPM public area (its attributes and Name are then known). */
  readonly tpmPublic?: ParsedPublic;
}

export function spkiSha256(spki: Uint8Array): string {
  return createHash('sha256').update(spki).digest('hex');
}

/** Wraps a parsed TPM public area. Throws the TPM key errors (`tpm.public.*`). */
export function fromTpmPublic(p: ParsedPublic): PublicKeyInput {
  const key = publicToKeyObject(p);
  return { key, spki: new Uint8Array(key.export({ type: 'spki', format: 'der' })), tpmPublic: p };
}

/** A DER SubjectPublicKeyInfo as a key (MalformedEvidence `ca.public_key` when node cannot read it). */
function fromSpki(der: Uint8Array): PublicKeyInput {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(der), format: 'der', type: 'spki' });
  } catch (cause) {
    throw new MalformedEvidence('ca.public_key', 'not a SubjectPublicKeyInfo', { cause });
  }
  return { key, spki: new Uint8Array(key.export({ type: 'spki', format: 'der' })) };
}

/**
 * Reads a public key: PEM (exactly one `PUBLIC KEY` block, RFC 7468 §13, read by src/formats/pem.ts), DER
 * SPKI (first byte 0x30), TPM2B_PUBLIC (the u16 size equals the rest of the input) or TPMT_PUBLIC. A
 * TPMT_PUBLIC starts with its type (0x0001 or 0x0023), which can never equal the remaining length of a real
 * public area, so the forms do not collide. PEM goes through the project's strict reader, not OpenSSL's,
 * which would skip text around the block and take the key out of a CERTIFICATE: the CA certifies a key
 * it was handed as a key, not one lifted from someone else's certificate.
 * Throws MalformedEvidence `ca.public_key.pem` (PEM), `ca.public_key` and the TPM parser's `tpm.public.*`.
 */
export function readPublicKeyInput(bytes: Uint8Array): PublicKeyInput {
  if (looksLikePem(bytes)) {
    return fromSpki(decodePemBlock(pemText(bytes), 'ca.public_key', ['PUBLIC KEY']).der);
  }
  if (bytes[0] === 0x30) return fromSpki(bytes);
  if (bytes.length >= 2 && ((bytes[0]! << 8) | bytes[1]!) === bytes.length - 2)
    return fromTpmPublic(parseTpm2bPublic(bytes));
  return fromTpmPublic(parsePublic(bytes));
}

/** What an EK must be (TCG EK profile templates): a restricted decryption key fixed to its TPM. */
export function isEkShaped(p: ParsedPublic): boolean {
  const a = p.objectAttributes;
  const need = TPMA_OBJECT.restricted | TPMA_OBJECT.decrypt | TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent;
  return (a & need) === need && (a & TPMA_OBJECT.sign) === 0;
}

/**
 * What an AK must be: a restricted signing key (it signs only TPM-generated structures such as quotes and
 * certify info, or digests the TPM hashed itself), fixedTPM and fixedParent (cannot leave this TPM), generated
 * inside the TPM (sensitiveDataOrigin), and not also a decryption key.
 */
export function isAkShaped(p: ParsedPublic): boolean {
  const a = p.objectAttributes;
  const need =
    TPMA_OBJECT.restricted |
    TPMA_OBJECT.sign |
    TPMA_OBJECT.fixedTPM |
    TPMA_OBJECT.fixedParent |
    TPMA_OBJECT.sensitiveDataOrigin;
  return (a & need) === need && (a & TPMA_OBJECT.decrypt) === 0;
}
