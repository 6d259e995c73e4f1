import { createPublicKey, type KeyObject, verify } from 'node:crypto';
import { InvalidArgument, SignatureInvalid } from '../errors.js';
import {
  encodeCommitSignedContent,
  encodeResponseSignedContent,
  type ResponseSignedFields,
} from '../formats/aproxy/signed-content.js';
import { P384_SIGNATURE_SIZE } from '../formats/aproxy/types.js';
import { type EcSigner, toSigner } from '../keys/signer.js';

/**
 * The broker's signature over 0.2.0 responses (docs/protocol.md "Broker signature"): ECDSA P-384 with
 * SHA-384, IEEE P1363 encoding (r || s, 48 bytes each), over the canonical bytes from
 * src/formats/aproxy/signed-content.ts. A guest that pins the broker's public key rejects a secret that the
 * proxy or anyone else produced (COCONUT's open "authenticate the provided secret" problem).
 */

/** Accepts a KeyObject, PEM text or SPKI DER; checks that it is a P-384 public key. */
export function importBrokerPublicKey(key: KeyObject | string | Uint8Array): KeyObject {
  let k: KeyObject;
  try {
    k =
      typeof key === 'string'
        ? createPublicKey(key)
        : key instanceof Uint8Array
          ? createPublicKey({ key: Buffer.from(key), format: 'der', type: 'spki' })
          : key.type === 'private'
            ? createPublicKey(key)
            : key;
  } catch (cause) {
    throw new InvalidArgument('aproxy.signature.key', `broker public key does not parse: ${String(cause)}`);
  }
  checkP384(k);
  return k;
}

function checkP384(k: KeyObject): void {
  if (k.asymmetricKeyType !== 'ec' || k.asymmetricKeyDetails?.namedCurve !== 'secp384r1') {
    throw new InvalidArgument('aproxy.signature.key', 'the broker key must be ECDSA P-384');
  }
}

/**
 * The broker's signing key: a P-384 private KeyObject (the PEM file) or a signer whose key stays elsewhere
 * (a PKCS#11 token, src/keys). Throws InvalidArgument `aproxy.signature.key` for any other curve.
 */
export function brokerSigner(key: KeyObject | EcSigner): EcSigner {
  const signer = toSigner(key);
  if (signer.curve !== 'P-384') {
    throw new InvalidArgument('aproxy.signature.key', 'the broker key must be ECDSA P-384');
  }
  return signer;
}

/** SHA-384 ECDSA, IEEE P1363 (r || s): what CKM_ECDSA returns and what the guest verifies. */
export function signBytes(key: KeyObject | EcSigner, data: Uint8Array): Uint8Array {
  return brokerSigner(key).sign('sha384', data);
}

/** {@link signBytes} off the event loop when the signer can (EcSigner.signAsync), else on it. */
export async function signBytesAsync(signer: EcSigner, data: Uint8Array): Promise<Uint8Array> {
  return signer.signAsync ? signer.signAsync('sha384', data) : signer.sign('sha384', data);
}

function verifyBytes(publicKey: KeyObject, data: Uint8Array, signature: Uint8Array, reason: string): void {
  if (signature.length !== P384_SIGNATURE_SIZE) {
    throw new SignatureInvalid(reason, 'broker signature must be 96 bytes');
  }
  const ok = verify('sha384', data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature);
  if (!ok) throw new SignatureInvalid(reason, 'broker signature does not verify with the pinned key');
}

/** Broker side: signs an AttestationResponse's fields. */
export function signAttestationResponse(
  privateKey: KeyObject | EcSigner,
  fields: ResponseSignedFields,
): Uint8Array {
  return signBytes(privateKey, encodeResponseSignedContent(fields));
}

/** Guest side: throws SignatureInvalid `aproxy.signature` unless `signature` verifies. */
export function verifyAttestationResponse(
  publicKey: KeyObject,
  fields: ResponseSignedFields,
  signature: Uint8Array,
): void {
  verifyBytes(publicKey, encodeResponseSignedContent(fields), signature, 'aproxy.signature');
}

export interface CommitSignedFields {
  readonly challenge: Uint8Array;
  readonly bootId: string;
  readonly counter: bigint;
  /** SHA-256 of the sealed state file committed with `counter`. */
  readonly stateDigest: Uint8Array;
}

/** Broker side: signs a commit acknowledgement. */
export function signCommit(privateKey: KeyObject | EcSigner, fields: CommitSignedFields): Uint8Array {
  return signBytes(privateKey, encodeCommitSignedContent(fields));
}

/** Guest side: throws SignatureInvalid `aproxy.commit_signature` unless `signature` verifies. */
export function verifyCommit(publicKey: KeyObject, fields: CommitSignedFields, signature: Uint8Array): void {
  verifyBytes(publicKey, encodeCommitSignedContent(fields), signature, 'aproxy.commit_signature');
}
