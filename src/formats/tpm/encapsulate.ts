import { constants, createECDH, createHash, publicEncrypt, randomBytes } from 'node:crypto';
import { InvalidArgument, MalformedEvidence, NotSupported } from '../../errors.js';
import { algLabel, type HashInfo, TPM_ALG } from './constants.js';
import { kdfe } from './kdf.js';
import { padTo, publicToKeyObject } from './key.js';
import { hashInfo, TpmWriter } from './marshal.js';
import { curveOf, type EccPublic, type RsaPublic, type TpmtPublic } from './public.js';

/**
 * Labeled encapsulation of a seed to a TPM key ("secret sharing", TPM 2.0 Library Part 1 rev 1.59 §24 and
 * Annex B.10.3 / C.6.1): what MakeCredential, Import and salted sessions use.
 * - RSA: seed = random(|H|) where H is the key's OAEP scheme hash, or its nameAlg when the scheme is NULL;
 *   encrypted = RSA-OAEP(H, MGF1-H, label ‖ 00, seed).
 * - ECC: one-pass Diffie-Hellman with an ephemeral key on the key's curve; Z = x(d_e·Q);
 *   seed = KDFe(nameAlg, Z, label, x(Q_e), x(Q), |nameAlg|·8); encrypted = TPMS_ECC_POINT(Q_e).
 * The RSA padding is computed here (RFC 8017 §7.1.1) and the modular exponentiation done by node without
 * padding, so the same code runs for random and for known-answer seeds.
 */

export interface Encapsulated {
  /** The shared seed. A secret: never log it. */
  readonly seed: Uint8Array;
  /** The TPMU_ENCRYPTED_SECRET body (no size prefix): an RSA ciphertext or a marshalled TPMS_ECC_POINT. */
  readonly encryptedSecret: Uint8Array;
}

/**
 * Fixed randomness for known-answer tests (go-tpm's labeled-encapsulation vectors). Production callers pass
 * nothing and get fresh randomness from node:crypto.
 */
export interface EncapsulationRandomness {
  /** RSA: the seed to share (|H| bytes). */
  readonly seed?: Uint8Array;
  /** RSA: the OAEP seed (|H| bytes). */
  readonly oaepSeed?: Uint8Array;
  /** ECC: the ephemeral private scalar (field size bytes). */
  readonly ephemeralPrivate?: Uint8Array;
}

/** The hash RSA-OAEP uses for a key: its OAEP scheme hash if set, else its nameAlg (Part 1 §B.10.3). */
export function rsaOaepHash(pub: RsaPublic): HashInfo {
  const { scheme } = pub.parameters;
  if (scheme.scheme !== TPM_ALG.NULL && scheme.scheme !== TPM_ALG.OAEP) {
    throw new NotSupported(
      'tpm.encapsulate.rsa_scheme',
      `RSA scheme ${algLabel(scheme.scheme)} cannot encapsulate (NULL or OAEP only)`,
    );
  }
  const id = scheme.scheme === TPM_ALG.OAEP && scheme.hashAlg !== TPM_ALG.NULL ? scheme.hashAlg : pub.nameAlg;
  return hashInfo(id, 'tpm.encapsulate.hash');
}

function xor(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

/** MGF1 (RFC 8017 §B.2.1). */
export function mgf1(h: HashInfo, seed: Uint8Array, len: number): Uint8Array {
  const out = new Uint8Array(len);
  const c = new Uint8Array(4);
  for (let i = 0, off = 0; off < len; i++, off += h.size) {
    new DataView(c.buffer).setUint32(0, i);
    const block = createHash(h.node).update(seed).update(c).digest();
    out.set(block.subarray(0, Math.min(h.size, len - off)), off);
  }
  return out;
}

/** EME-OAEP encoding (RFC 8017 §7.1.1 step 2) of `message` for a k-byte modulus. */
export function oaepEncode(
  h: HashInfo,
  k: number,
  message: Uint8Array,
  label: Uint8Array,
  seed: Uint8Array,
): Uint8Array {
  if (message.length > k - 2 * h.size - 2) {
    throw new InvalidArgument(
      'tpm.encapsulate.message_size',
      `OAEP message of ${message.length} bytes is too long`,
    );
  }
  if (seed.length !== h.size)
    throw new InvalidArgument('tpm.encapsulate.seed_size', 'OAEP seed must be |H| bytes');
  const db = new Uint8Array(k - h.size - 1);
  db.set(createHash(h.node).update(label).digest(), 0);
  db[db.length - message.length - 1] = 0x01;
  db.set(message, db.length - message.length);
  const maskedDb = xor(db, mgf1(h, seed, db.length));
  const maskedSeed = xor(seed, mgf1(h, maskedDb, h.size));
  const em = new Uint8Array(k);
  em.set(maskedSeed, 1);
  em.set(maskedDb, 1 + h.size);
  return em;
}

function labelZ(label: string): Uint8Array {
  const b = Buffer.from(label.endsWith('\0') ? label : `${label}\0`, 'latin1');
  return new Uint8Array(b);
}

function encapsulateRsa(pub: RsaPublic, label: string, rnd: EncapsulationRandomness): Encapsulated {
  const h = rsaOaepHash(pub);
  const key = publicToKeyObject(pub);
  const k = pub.unique.n.length;
  const seed = rnd.seed ?? new Uint8Array(randomBytes(h.size));
  if (seed.length !== h.size)
    throw new InvalidArgument('tpm.encapsulate.seed_size', `seed must be ${h.size} bytes`);
  const em = oaepEncode(h, k, seed, labelZ(label), rnd.oaepSeed ?? new Uint8Array(randomBytes(h.size)));
  const encryptedSecret = new Uint8Array(publicEncrypt({ key, padding: constants.RSA_NO_PADDING }, em));
  return { seed, encryptedSecret };
}

function encapsulateEcc(pub: EccPublic, label: string, rnd: EncapsulationRandomness): Encapsulated {
  const h = hashInfo(pub.nameAlg, 'tpm.encapsulate.hash');
  const c = curveOf(pub.parameters);
  const qx = padTo(pub.unique.x, c.size, 'tpm.public.ecc_point');
  const qy = padTo(pub.unique.y, c.size, 'tpm.public.ecc_point');
  const ecdh = createECDH(c.node);
  if (rnd.ephemeralPrivate) ecdh.setPrivateKey(rnd.ephemeralPrivate);
  else ecdh.generateKeys();
  const ephemeral = ecdh.getPublicKey();
  const ex = new Uint8Array(ephemeral.subarray(1, 1 + c.size));
  const ey = new Uint8Array(ephemeral.subarray(1 + c.size));
  let z: Uint8Array;
  try {
    z = new Uint8Array(ecdh.computeSecret(Buffer.concat([Uint8Array.of(4), qx, qy])));
  } catch (cause) {
    throw new MalformedEvidence('tpm.public.key', 'the ECC public point is not on its curve', { cause });
  }
  const seed = kdfe(h.id, z, label, ex, qx, h.size * 8);
  return { seed, encryptedSecret: new TpmWriter().tpm2b(ex).tpm2b(ey).finish() };
}

/**
 * Encapsulates a fresh seed to `pub` under `label` (without the terminating zero, e.g. "IDENTITY").
 * Throws NotSupported `tpm.encapsulate.rsa_scheme`, `.hash`, `tpm.public.curve`; MalformedEvidence
 * `tpm.public.key`, `tpm.public.rsa_modulus`, `tpm.public.ecc_point` for an unusable key.
 */
export function encapsulate(pub: TpmtPublic, label: string, rnd: EncapsulationRandomness = {}): Encapsulated {
  return pub.type === TPM_ALG.RSA ? encapsulateRsa(pub, label, rnd) : encapsulateEcc(pub, label, rnd);
}
