import {
  constants,
  createPublicKey,
  verify as cryptoVerify,
  type KeyObject,
  X509Certificate,
} from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadDer, SnpVerifier, verifySnp } from '../src/evidence/snp/index.js';
import { parseReport, SIGNED_LENGTH } from '../src/formats/snp/index.js';
import { reversed } from '../src/util/bytes.js';
import { compare, type Figure } from './harness.js';

/** The report's signature as the 96-byte big-endian r||s node:crypto takes (what the floor verifies). */
function p1363(report: Uint8Array): Uint8Array {
  const r = reversed(report.subarray(0x2a0, 0x2a0 + 48));
  const s = reversed(report.subarray(0x2e8, 0x2e8 + 48));
  return Buffer.concat([r, s]);
}

const pss = { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 48 };

/** SEV-SNP verification of a real Milan report (microsoft-tav-milan), warm and cold, against raw node:crypto. */
export async function benchSnp(vectors: string): Promise<Figure[]> {
  const dir = join(vectors, 'snp', 'microsoft-tav-milan');
  const bytes = new Uint8Array(readFileSync(join(dir, 'report.bin')));
  const certs = {
    leaf: loadDer(readFileSync(join(dir, 'vcek.pem'), 'utf8')),
    intermediate: loadDer(readFileSync(join(dir, 'ask.pem'), 'utf8')),
    root: loadDer(readFileSync(join(dir, 'ark.pem'), 'utf8')),
  };
  const now = new Date('2026-11-28T00:00:00Z');
  const signed = bytes.subarray(0, SIGNED_LENGTH);
  const sig = p1363(bytes);
  const vcek = new X509Certificate(certs.leaf);
  const ask = new X509Certificate(certs.intermediate);
  const ark = new X509Certificate(certs.root);
  const vcekKey: KeyObject = vcek.publicKey;
  const rawEcdsa = () => {
    if (!cryptoVerify('sha384', signed, { key: vcekKey, dsaEncoding: 'ieee-p1363' }, sig))
      throw new Error('floor');
  };
  const verifier = new SnpVerifier();
  const opts = { now, certs };
  verifier.verify(parseReport(bytes), opts);

  const warm = await compare({
    name: 'snp.verify.warm',
    subject: () => verifier.verify(parseReport(bytes), opts),
    floorName: 'node:crypto ECDSA-P384 verify of the same report',
    floor: rawEcdsa,
    target: 0.9,
  });

  // Cold: nothing cached but the pinned roots. Its floor is the raw crypto a cold verification cannot avoid:
  // importing the ASK and VCEK keys, two RSA-4096 PSS verifies (ASK by ARK, VCEK by ASK) and the ECDSA verify.
  const askTbs = tbsOf(certs.intermediate);
  const vcekTbs = tbsOf(certs.leaf);
  const rawCold = () => {
    const askKey = createPublicKey({
      key: Buffer.from(ask.publicKey.export({ format: 'der', type: 'spki' })),
      format: 'der',
      type: 'spki',
    });
    const leafKey = createPublicKey({
      key: Buffer.from(vcekKey.export({ format: 'der', type: 'spki' })),
      format: 'der',
      type: 'spki',
    });
    const ok =
      cryptoVerify('sha384', askTbs.tbs, { key: ark.publicKey, ...pss }, askTbs.sig) &&
      cryptoVerify('sha384', vcekTbs.tbs, { key: askKey, ...pss }, vcekTbs.sig) &&
      cryptoVerify('sha384', signed, { key: leafKey, dsaEncoding: 'ieee-p1363' }, sig);
    if (!ok) throw new Error('floor');
  };
  const cold = await compare({
    name: 'snp.verify.cold',
    subject: () => verifySnp(parseReport(bytes), opts),
    floorName: 'node:crypto: import 2 keys + 2 RSA-4096-PSS verifies + ECDSA-P384 verify',
    floor: rawCold,
  });
  return [warm, cold];
}

/** Minimal DER split of a certificate into its TBS and signature (bench-only; the verifier has its own). */
function tbsOf(der: Uint8Array): { tbs: Uint8Array; sig: Uint8Array } {
  const len = (o: number): [number, number] => {
    const b = der[o + 1]!;
    if (b < 0x80) return [b, 2];
    const n = b & 0x7f;
    let v = 0;
    for (let i = 0; i < n; i++) v = (v << 8) | der[o + 2 + i]!;
    return [v, 2 + n];
  };
  const [, h0] = len(0);
  const [tl, th] = len(h0);
  const tbs = der.subarray(h0, h0 + th + tl);
  let o = h0 + th + tl;
  const [al, ah] = len(o);
  o += ah + al;
  const [bl, bh] = len(o);
  return { tbs, sig: der.subarray(o + bh + 1, o + bh + bl) };
}
