import { NotSupported } from '../../errors.js';
import { Reader } from '../reader.js';
import { algLabel, HASH_ALGS, TPM_ALG } from './constants.js';
import { readHashAlg, readTpm2b, TPM2B_MAX, TpmWriter } from './marshal.js';

/**
 * TPMT_SIGNATURE (TPM 2.0 Library Part 2 rev 1.59 §11.3.4): u16 sigAlg, then per TPMU_SIGNATURE
 * (§11.3.3) RSASSA/RSAPSS {u16 hash, TPM2B sig}, ECDSA (and the other ECC schemes) {u16 hash, TPM2B r,
 * TPM2B s}, HMAC TPMT_HA {u16 hash, digest of the hash's size}. `tpm2_quote -s` writes this structure.
 */

export type TpmtSignature =
  | {
      readonly sigAlg: typeof TPM_ALG.RSASSA | typeof TPM_ALG.RSAPSS;
      readonly hashAlg: number;
      readonly signature: Uint8Array;
    }
  | {
      readonly sigAlg:
        | typeof TPM_ALG.ECDSA
        | typeof TPM_ALG.ECDAA
        | typeof TPM_ALG.SM2
        | typeof TPM_ALG.ECSCHNORR;
      readonly hashAlg: number;
      readonly r: Uint8Array;
      readonly s: Uint8Array;
    }
  | { readonly sigAlg: typeof TPM_ALG.HMAC; readonly hashAlg: number; readonly digest: Uint8Array };

type Layout = 'rsa' | 'ecc' | 'hmac';
const SIG_LAYOUTS: Readonly<Record<number, Layout>> = (() => {
  const t: Record<number, Layout> = Object.create(null);
  t[TPM_ALG.RSASSA] = 'rsa';
  t[TPM_ALG.RSAPSS] = 'rsa';
  t[TPM_ALG.ECDSA] = 'ecc';
  t[TPM_ALG.ECDAA] = 'ecc';
  t[TPM_ALG.SM2] = 'ecc';
  t[TPM_ALG.ECSCHNORR] = 'ecc';
  t[TPM_ALG.HMAC] = 'hmac';
  return Object.freeze(t);
})();

/**
 * Parses a TPMT_SIGNATURE. Throws NotSupported `tpm.signature.sig_alg` (no known layout) and
 * `tpm.signature.hash`; MalformedEvidence `tpm.signature.truncated`, `.trailing_bytes`, `.rsa` / `.ecc`
 * (oversized TPM2B).
 */
export function parseSignature(bytes: Uint8Array): TpmtSignature {
  const r = new Reader(bytes, 'tpm.signature');
  const sig = readSignature(r);
  r.end();
  return sig;
}

/** Reads a TPMT_SIGNATURE at the reader's position. */
export function readSignature(r: Reader): TpmtSignature {
  const sigAlg = r.u16be();
  const layout = SIG_LAYOUTS[sigAlg];
  if (layout === undefined) {
    throw new NotSupported(
      'tpm.signature.sig_alg',
      `signature algorithm ${algLabel(sigAlg)} is not supported`,
    );
  }
  const hash = readHashAlg(r, 'tpm.signature.hash');
  if (layout === 'rsa') {
    const signature = readTpm2b(r, TPM2B_MAX.rsaKey, 'tpm.signature.rsa');
    return { sigAlg: sigAlg as typeof TPM_ALG.RSASSA, hashAlg: hash.id, signature };
  }
  if (layout === 'ecc') {
    const rr = readTpm2b(r, TPM2B_MAX.eccParameter, 'tpm.signature.ecc');
    const s = readTpm2b(r, TPM2B_MAX.eccParameter, 'tpm.signature.ecc');
    return { sigAlg: sigAlg as typeof TPM_ALG.ECDSA, hashAlg: hash.id, r: rr, s };
  }
  return { sigAlg: TPM_ALG.HMAC, hashAlg: hash.id, digest: r.bytes(hash.size) };
}

/** Encodes a TPMT_SIGNATURE. Inverse of {@link parseSignature}. */
export function encodeSignature(sig: TpmtSignature): Uint8Array {
  const w = new TpmWriter().u16(sig.sigAlg).u16(sig.hashAlg);
  if ('signature' in sig) w.tpm2b(sig.signature);
  else if ('r' in sig) w.tpm2b(sig.r).tpm2b(sig.s);
  else {
    const h = HASH_ALGS[sig.hashAlg];
    if (h === undefined || h.size !== sig.digest.length) {
      throw new NotSupported(
        'tpm.signature.hash',
        `HMAC digest does not match hash ${algLabel(sig.hashAlg)}`,
      );
    }
    w.bytes(sig.digest);
  }
  return w.finish();
}
