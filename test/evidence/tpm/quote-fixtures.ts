import { constants, createHash, type KeyObject, sign } from 'node:crypto';
import type { PcrBank } from '../../../src/evidence/tpm/claims.js';
import {
  encodeAttest,
  encodeSignature,
  HASH_ALGS,
  TPM_ALG,
  TPM_ST,
  type TpmsAttest,
  type TpmtSignature,
} from '../../../src/formats/tpm/index.js';

/**
 * A test-only software TPM2_Quote: builds a TPMS_ATTEST over given PCR banks and signs it with node:crypto,
 * so negative tests can change one thing at a time and still carry a valid signature.
 */

export interface QuoteSpec {
  readonly key: KeyObject;
  readonly sigAlg: number;
  readonly hashAlg: number;
  readonly banks: readonly PcrBank[];
  readonly nonce: Uint8Array;
  /** Hash for pcrDigest; the TPM uses the signing hash (the default). */
  readonly digestHashAlg?: number;
  /** Selection to put in the quote instead of the banks' own. */
  readonly selection?: readonly { hashAlg: number; pcrs: number[] }[];
  readonly type?: number;
}

export function randomPcrs(hashAlg: number, indexes: readonly number[], fill = 0): PcrBank {
  const size = HASH_ALGS[hashAlg]!.size;
  return { hashAlg, values: new Map(indexes.map((i) => [i, new Uint8Array(size).fill(fill + i)])) };
}

export function signQuote(key: KeyObject, sigAlg: number, hashAlg: number, body: Uint8Array): Uint8Array {
  const h = HASH_ALGS[hashAlg]!.node;
  let sig: TpmtSignature;
  if (sigAlg === TPM_ALG.ECDSA) {
    const rs = sign(h, body, { key, dsaEncoding: 'ieee-p1363' });
    sig = {
      sigAlg,
      hashAlg,
      r: new Uint8Array(rs.subarray(0, rs.length / 2)),
      s: new Uint8Array(rs.subarray(rs.length / 2)),
    };
  } else if (sigAlg === TPM_ALG.RSAPSS) {
    const s = sign(h, body, {
      key,
      padding: constants.RSA_PKCS1_PSS_PADDING,
      saltLength: HASH_ALGS[hashAlg]!.size,
    });
    sig = { sigAlg, hashAlg, signature: new Uint8Array(s) };
  } else {
    sig = { sigAlg: TPM_ALG.RSASSA, hashAlg, signature: new Uint8Array(sign(h, body, key)) };
  }
  return encodeSignature(sig);
}

export function makeQuote(q: QuoteSpec): { quote: Uint8Array; signature: Uint8Array } {
  const digest = createHash(HASH_ALGS[q.digestHashAlg ?? q.hashAlg]!.node);
  for (const b of q.banks)
    for (const i of [...b.values.keys()].sort((x, y) => x - y)) digest.update(b.values.get(i)!);
  const selection =
    q.selection ??
    q.banks.map((b) => ({ hashAlg: b.hashAlg, pcrs: [...b.values.keys()].sort((x, y) => x - y) }));
  const common = {
    qualifiedSigner: Uint8Array.from([0, 0x0b, ...new Uint8Array(32).fill(0xab)]),
    extraData: q.nonce,
    clockInfo: { clock: 1234n, resetCount: 5, restartCount: 6, safe: true },
    firmwareVersion: 0x2016051100162800n,
  };
  const attest: TpmsAttest =
    (q.type ?? TPM_ST.ATTEST_QUOTE) === TPM_ST.ATTEST_QUOTE
      ? {
          ...common,
          type: TPM_ST.ATTEST_QUOTE,
          attested: {
            pcrSelect: selection.map((s) => ({ ...s, sizeofSelect: 3 })),
            pcrDigest: new Uint8Array(digest.digest()),
          },
        }
      : {
          ...common,
          type: TPM_ST.ATTEST_CERTIFY,
          attested: { name: new Uint8Array(34), qualifiedName: new Uint8Array(34) },
        };
  const quote = encodeAttest(attest);
  return { quote, signature: signQuote(q.key, q.sigAlg, q.hashAlg, quote) };
}
