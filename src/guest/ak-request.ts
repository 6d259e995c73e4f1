import type { KeyObject } from 'node:crypto';
import { InvalidArgument } from '../errors.js';
import { type CborValue, encodeCbor, encodeCborSequence } from '../formats/c509/cbor.js';
import { parseC509Csr } from '../formats/c509/csr.js';
import { c509PublicKeyFromKeyObject } from '../formats/c509/keys.js';
import { specialTextFromString } from '../formats/c509/name.js';
import { defaultSignatureAlgorithm } from '../formats/c509/sign.js';
import { parseOne, sequence, unsignedBytes } from '../formats/der/reader.js';

/**
 * A natively signed C509 certification request (draft-ietf-cose-cbor-encoded-cert-20 §4, type 2) for a
 * vTPM AK, for CERTIFY_AK (docs/pvchannel.md §7.2). The AK is a restricted key inside the TPM, so the
 * request's TBS is handed to `sign` (in the SVSM: TPM2_Hash then TPM2_Sign with the hash ticket, what
 * `tpm2_sign -g sha256 -f plain` does), which returns an ECDSA signature as DER ECDSA-Sig-Value; C509 carries
 * it as r ‖ s of the curve's size (§3.1.12). EC AKs only (the TCG AK templates the demo uses: P-256).
 */
export async function c509AkRequest(
  akPublic: KeyObject,
  subject: string,
  sign: (tbs: Uint8Array) => Promise<Uint8Array> | Uint8Array,
): Promise<Uint8Array> {
  if (akPublic.asymmetricKeyType !== 'ec') {
    throw new InvalidArgument('guest.ak_request.key', 'only EC AKs are supported here');
  }
  const alg = defaultSignatureAlgorithm(akPublic);
  const pk = c509PublicKeyFromKeyObject(akPublic);
  const elements: CborValue[] = [2, alg, specialTextFromString(subject), pk.algorithm, pk.value, []];
  const der = await sign(encodeCborSequence(elements));
  const half = { prime256v1: 32, secp384r1: 48, secp521r1: 66 }[
    akPublic.asymmetricKeyDetails?.namedCurve ?? ''
  ];
  if (half === undefined) throw new InvalidArgument('guest.ak_request.key', 'unsupported curve');
  const request = encodeCbor([...elements, p1363(der, half)]);
  parseC509Csr(request); // structural check of what is sent
  return request;
}

/** DER ECDSA-Sig-Value → r ‖ s, each left-padded to `half` bytes. Throws the DER reader's errors and InvalidArgument `guest.ak_request.sig`. */
function p1363(der: Uint8Array, half: number): Uint8Array {
  const what = 'guest.ak_request.sig';
  const [r, s] = sequence(parseOne(der, what), what).map((t) => unsignedBytes(t, what));
  const out = new Uint8Array(2 * half);
  for (const [i, v] of [r!, s!].entries()) {
    if (v.length > half) throw new InvalidArgument(what, 'an ECDSA integer is longer than the curve');
    out.set(v, (i + 1) * half - v.length);
  }
  return out;
}
