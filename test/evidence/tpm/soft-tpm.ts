import {
  createDecipheriv,
  createECDH,
  createHmac,
  createPrivateKey,
  type KeyObject,
  privateDecrypt,
} from 'node:crypto';
import { Reader } from '../../../src/formats/reader.js';
import {
  curveOf,
  type EccPublic,
  hashInfo,
  kdfa,
  kdfe,
  padTo,
  type RsaPublic,
  readTpm2b,
  rsaExponent,
  rsaOaepHash,
  TPM_ALG,
  type TpmtPublic,
} from '../../../src/formats/tpm/index.js';

/**
 * Test-only software stand-ins for what a TPM does with its private keys: TPMT_SENSITIVE decoding,
 * decapsulation of a seed, and ActivateCredential. They use node's own RSA-OAEP and ECDH (not the
 * project's encoder), so a round trip checks the encoder against an independent decoder.
 */

export type Sensitive = { type: number; authValue: Uint8Array; seedValue: Uint8Array; sensitive: Uint8Array };

/** TPMT_SENSITIVE (Part 2 §12.3.2.4): RSA carries one prime, ECC the private scalar. */
export function parseSensitive(bytes: Uint8Array): Sensitive {
  const r = new Reader(bytes, 'test.sensitive');
  const type = r.u16be();
  const authValue = readTpm2b(r, 64, 'test.sensitive');
  const seedValue = readTpm2b(r, 64, 'test.sensitive');
  const sensitive = readTpm2b(r, 1024, 'test.sensitive');
  r.end();
  return { type, authValue, seedValue, sensitive };
}

const big = (b: Uint8Array) => BigInt(`0x${Buffer.from(b).toString('hex') || '0'}`);
function bytesOf(v: bigint, len?: number): Buffer {
  let h = v.toString(16);
  if (h.length % 2) h = `0${h}`;
  const b = Buffer.from(h, 'hex');
  return len && b.length < len ? Buffer.concat([Buffer.alloc(len - b.length), b]) : b;
}
function modInv(a: bigint, m: bigint): bigint {
  let [r0, r1, s0, s1] = [a % m, m, 1n, 0n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  return ((s0 % m) + m) % m;
}

/** An RSA private KeyObject from the public modulus and one prime. */
export function rsaPrivateKey(pub: RsaPublic, prime: Uint8Array): KeyObject {
  const n = big(pub.unique.n);
  const e = BigInt(rsaExponent(pub.parameters));
  const p = big(prime);
  const q = n / p;
  if (p * q !== n) throw new Error('prime does not divide the modulus');
  const d = modInv(e, (p - 1n) * (q - 1n));
  const b = (v: bigint) => bytesOf(v).toString('base64url');
  return createPrivateKey({
    key: {
      kty: 'RSA',
      n: b(n),
      e: b(e),
      d: b(d),
      p: b(p),
      q: b(q),
      dp: b(d % (p - 1n)),
      dq: b(d % (q - 1n)),
      qi: b(modInv(q, p)),
    },
    format: 'jwk',
  });
}

/** Recovers the seed from an encrypted secret with the private part (node's OAEP / ECDH). */
export function decapsulate(
  pub: TpmtPublic,
  sensitive: Uint8Array,
  label: string,
  encryptedSecret: Uint8Array,
): Uint8Array {
  if (pub.type === TPM_ALG.RSA) {
    const h = rsaOaepHash(pub);
    return new Uint8Array(
      privateDecrypt(
        {
          key: rsaPrivateKey(pub, sensitive),
          oaepHash: h.node,
          oaepLabel: Buffer.from(`${label}\0`, 'latin1'),
        },
        encryptedSecret,
      ),
    );
  }
  const ecc = pub as EccPublic;
  const c = curveOf(ecc.parameters);
  const r = new Reader(encryptedSecret, 'test.point');
  const ex = padTo(readTpm2b(r, 66, 'test.point'), c.size, 'test.point');
  const ey = padTo(readTpm2b(r, 66, 'test.point'), c.size, 'test.point');
  r.end();
  const ecdh = createECDH(c.node);
  ecdh.setPrivateKey(padTo(sensitive, c.size, 'test.scalar'));
  const z = ecdh.computeSecret(Buffer.concat([Uint8Array.of(4), ex, ey]));
  const h = hashInfo(ecc.nameAlg, 'test.hash');
  return kdfe(h.id, z, label, ex, padTo(ecc.unique.x, c.size, 'test.point'), h.size * 8);
}

/**
 * TPM2_ActivateCredential in software (Part 3 §12.5): check the integrity HMAC, then decrypt. Returns the
 * credential, or throws when the HMAC does not match (as the TPM returns TPM_RC_INTEGRITY).
 */
export function activateCredentialSoft(
  ek: TpmtPublic,
  ekSensitive: Uint8Array,
  akName: Uint8Array,
  idObject: Uint8Array,
  encryptedSecret: Uint8Array,
): Uint8Array {
  const es = new Reader(encryptedSecret, 'test.secret');
  const secret = readTpm2b(es, 1024, 'test.secret');
  es.end();
  const seed = decapsulate(ek, ekSensitive, 'IDENTITY', secret);
  const h = hashInfo(ek.nameAlg, 'test.hash');
  const r = new Reader(idObject, 'test.id_object');
  const inner = readTpm2b(r, 1024, 'test.id_object');
  r.end();
  const ir = new Reader(inner, 'test.id_object');
  const integrity = readTpm2b(ir, 64, 'test.id_object');
  const encIdentity = inner.subarray(ir.offset);
  const hmacKey = kdfa(h.id, seed, 'INTEGRITY', new Uint8Array(), new Uint8Array(), h.size * 8);
  const want = createHmac(h.node, hmacKey).update(encIdentity).update(akName).digest();
  if (!want.equals(integrity)) throw new Error('TPM_RC_INTEGRITY');
  const bits = ek.parameters.symmetric.keyBits;
  const symKey = kdfa(h.id, seed, 'STORAGE', akName, new Uint8Array(), bits);
  const d = createDecipheriv(`aes-${bits}-cfb`, symKey, new Uint8Array(16));
  const plain = Buffer.concat([d.update(encIdentity), d.final()]);
  const pr = new Reader(new Uint8Array(plain), 'test.credential');
  const cred = readTpm2b(pr, 64, 'test.credential');
  pr.end();
  return cred;
}
