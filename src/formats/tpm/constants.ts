/**
 * TPM 2.0 constants (TPM 2.0 Library Part 2 "Structures", rev 1.59: §6.3 TPM_ALG_ID, §6.4 TPM_ECC_CURVE,
 * §6.9 TPM_ST, §6.2 TPM_GENERATED, §8.3 TPMA_OBJECT; Part 1 §11.4.2 for digest sizes). Algorithm metadata
 * lives in null-prototype tables keyed by the 16-bit id: a lookup of an unknown id yields `undefined`, never
 * an inherited property, and the callers turn that into a typed error.
 */

export const TPM_ALG = {
  ERROR: 0x0000,
  RSA: 0x0001,
  SHA1: 0x0004,
  HMAC: 0x0005,
  AES: 0x0006,
  MGF1: 0x0007,
  KEYEDHASH: 0x0008,
  XOR: 0x000a,
  SHA256: 0x000b,
  SHA384: 0x000c,
  SHA512: 0x000d,
  NULL: 0x0010,
  SM3_256: 0x0012,
  SM4: 0x0013,
  RSASSA: 0x0014,
  RSAES: 0x0015,
  RSAPSS: 0x0016,
  OAEP: 0x0017,
  ECDSA: 0x0018,
  ECDH: 0x0019,
  ECDAA: 0x001a,
  SM2: 0x001b,
  ECSCHNORR: 0x001c,
  ECMQV: 0x001d,
  KDF1_SP800_56A: 0x0020,
  KDF2: 0x0021,
  KDF1_SP800_108: 0x0022,
  ECC: 0x0023,
  SYMCIPHER: 0x0025,
  CAMELLIA: 0x0026,
  SHA3_256: 0x0027,
  SHA3_384: 0x0028,
  SHA3_512: 0x0029,
  CTR: 0x0040,
  OFB: 0x0041,
  CBC: 0x0042,
  CFB: 0x0043,
  ECB: 0x0044,
} as const;
export type TpmAlgId = number;

/** TPM_ST tags of TPMS_ATTEST (Part 2 §6.9). */
export const TPM_ST = {
  ATTEST_NV: 0x8014,
  ATTEST_COMMAND_AUDIT: 0x8015,
  ATTEST_SESSION_AUDIT: 0x8016,
  ATTEST_CERTIFY: 0x8017,
  ATTEST_QUOTE: 0x8018,
  ATTEST_TIME: 0x8019,
  ATTEST_CREATION: 0x801a,
  ATTEST_NV_DIGEST: 0x801c,
} as const;

/** TPM_GENERATED_VALUE, the magic that starts every TPMS_ATTEST the TPM produced ("\xffTCG"). */
export const TPM_GENERATED_VALUE = 0xff544347;

/** TPM_ECC_CURVE ids (Part 2 §6.4). */
export const TPM_ECC = {
  NIST_P192: 0x0001,
  NIST_P224: 0x0002,
  NIST_P256: 0x0003,
  NIST_P384: 0x0004,
  NIST_P521: 0x0005,
} as const;

/** TPMA_OBJECT bits (Part 2 §8.3.2). */
export const TPMA_OBJECT = {
  fixedTPM: 0x00000002,
  stClear: 0x00000004,
  fixedParent: 0x00000010,
  sensitiveDataOrigin: 0x00000020,
  userWithAuth: 0x00000040,
  adminWithPolicy: 0x00000080,
  noDA: 0x00000400,
  encryptedDuplication: 0x00000800,
  restricted: 0x00010000,
  decrypt: 0x00020000,
  sign: 0x00040000,
  x509sign: 0x00080000,
} as const;
/** Bits Part 2 §8.3.2 reserves (0, 3, 8-9, 12-15, 20-31): they must be clear. */
export const TPMA_OBJECT_RESERVED = 0xfff0f309;

export interface HashInfo {
  readonly id: TpmAlgId;
  /** The tpm2-tools / go-tpm spelling, used in JSON and on the command line. */
  readonly name: string;
  /** The node:crypto algorithm name. */
  readonly node: string;
  readonly size: number;
}

function table<T>(entries: readonly T[], key: (t: T) => number): Readonly<Record<number, T>> {
  const t: Record<number, T> = Object.create(null);
  for (const e of entries) t[key(e)] = e;
  return Object.freeze(t);
}

/** Hash algorithms this implementation computes (SM3 is a valid TPM hash that node lacks: not listed). */
export const HASH_ALGS: Readonly<Record<number, HashInfo>> = table(
  [
    { id: TPM_ALG.SHA1, name: 'sha1', node: 'sha1', size: 20 },
    { id: TPM_ALG.SHA256, name: 'sha256', node: 'sha256', size: 32 },
    { id: TPM_ALG.SHA384, name: 'sha384', node: 'sha384', size: 48 },
    { id: TPM_ALG.SHA512, name: 'sha512', node: 'sha512', size: 64 },
    { id: TPM_ALG.SHA3_256, name: 'sha3_256', node: 'sha3-256', size: 32 },
    { id: TPM_ALG.SHA3_384, name: 'sha3_384', node: 'sha3-384', size: 48 },
    { id: TPM_ALG.SHA3_512, name: 'sha3_512', node: 'sha3-512', size: 64 },
  ],
  (h) => h.id,
);

/** Looks a hash up by its tpm2-tools name (`sha256`), for command-line and JSON input. */
export function hashByName(name: string): HashInfo | undefined {
  const n = name.toLowerCase().replace('-', '_');
  return Object.values(HASH_ALGS).find((h) => h.name === n);
}

export interface CurveInfo {
  readonly id: number;
  readonly name: string;
  /** JWK `crv`. */
  readonly jwk: 'P-256' | 'P-384' | 'P-521';
  /** The OpenSSL name node:crypto's createECDH takes. */
  readonly node: string;
  /** Field size in bytes: the length of a coordinate and of an ECDSA r or s. */
  readonly size: number;
}

export const ECC_CURVES: Readonly<Record<number, CurveInfo>> = table(
  [
    { id: TPM_ECC.NIST_P256, name: 'nistp256', jwk: 'P-256', node: 'prime256v1', size: 32 },
    { id: TPM_ECC.NIST_P384, name: 'nistp384', jwk: 'P-384', node: 'secp384r1', size: 48 },
    { id: TPM_ECC.NIST_P521, name: 'nistp521', jwk: 'P-521', node: 'secp521r1', size: 66 },
  ],
  (c) => c.id,
);

/** Display names of every algorithm id above, for messages and JSON. */
export const ALG_NAMES: Readonly<Record<number, string>> = (() => {
  const t: Record<number, string> = Object.create(null);
  for (const [name, id] of Object.entries(TPM_ALG)) t[id] = name.toLowerCase();
  return Object.freeze(t);
})();

/** `0x000b (sha256)`-style label for messages. */
export function algLabel(id: number): string {
  const name = ALG_NAMES[id];
  return `0x${id.toString(16).padStart(4, '0')}${name === undefined ? '' : ` (${name})`}`;
}
