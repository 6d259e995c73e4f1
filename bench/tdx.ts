import { createHash, createPublicKey, verify as cryptoVerify } from 'node:crypto';
import { readTdxCollateralDirectory } from '../src/collateral/pcs-directory.js';
import { TdxVerifier, verifyTdx } from '../src/evidence/tdx/index.js';
import { parseTdxQuote } from '../src/formats/tdx/quote.js';
import { compare, type Figure } from './harness.js';

/**
 * Intel TDX verification of a real v4 quote (phala-dcap-qvl-v4) with its collateral, warm and cold, against
 * raw node:crypto P-256 in the same run.
 *
 * Warm: the verifier has seen this platform before. It remembers the verified PCK chain (by its bytes), the
 * verified collateral (by its digest), the CRL signatures, that this (chain, collateral) pair passed its CRL
 * checks (issuer, signature, no listed serial: a function of those two, so new CRL bytes are new collateral,
 * checked in full), and the imported attestation key by its exact 64 bytes (the import is a function of those
 * bytes; off-curve bytes throw and are never remembered). To get a wrong cached answer an attacker would have
 * to present other bytes under the same key: nothing, since each key is the exact bytes or their SHA-256.
 * Still checked per quote: every date against `now` (chain, collateral, CRLs), the QE report's signature by
 * the PCK and its binding of the attestation key, the quote's signature; the TCB evaluation is reused only for
 * the same collateral and PCK extension and equal bytes of the quote fields it reads. So the floor is what remains
 * of raw node:crypto: two ECDSA-P256 verifies (QE report by the PCK key, quote by the attestation key) with
 * both keys already imported.
 *
 * Cold: nothing cached but the pinned root; its floor is every signature a cold verification checks, keys
 * imported from DER, the attestation key from JWK (for P-256 on Node 20 / OpenSSL 3.0 the JWK import, ~45 µs,
 * is about twice as fast as SPKI DER, ~90 µs; both check the point is on the curve).
 */
export async function benchTdx(vectors: string): Promise<Figure[]> {
  const dir = `${vectors}/tdx/phala-dcap-qvl-v4`;
  const { readFileSync } = await import('node:fs');
  const bytes = new Uint8Array(readFileSync(`${dir}/quote.bin`));
  const { collateral } = readTdxCollateralDirectory(dir);
  const issued = JSON.parse(Buffer.from(collateral.tcbInfo.body).toString()).issueDate as string;
  const now = new Date(Date.parse(issued) + 3600_000);
  const opts = { collateral, now };
  const q = parseTdxQuote(bytes);
  const verifier = new TdxVerifier();
  if (verifier.verify(q, opts).tcb.status !== 'UpToDate') throw new Error('bench vector does not verify');

  const { X509Certificate } = await import('node:crypto');
  const pem = Buffer.from(q.pckChainPem).toString('latin1').replace(/\0+$/, '');
  const pck = new X509Certificate(pem);
  const p1363 = { dsaEncoding: 'ieee-p1363' as const };
  const rawKey = q.attestationKey;
  const importKey = () =>
    createPublicKey({
      key: {
        kty: 'EC',
        crv: 'P-256',
        x: Buffer.from(rawKey.subarray(0, 32)).toString('base64url'),
        y: Buffer.from(rawKey.subarray(32, 64)).toString('base64url'),
      },
      format: 'jwk',
    });
  // Both keys imported once, as the warm verifier holds them: the PCK key with the verified chain, the
  // attestation key by its exact bytes.
  const pckKey = pck.publicKey;
  const attKey = importKey();
  const warmFloor = () => {
    const ok =
      cryptoVerify('sha256', q.qeReport.raw, { key: pckKey, ...p1363 }, q.qeReportSignature) &&
      cryptoVerify('sha256', q.signed, { key: attKey, ...p1363 }, q.signature);
    if (!ok) throw new Error('floor');
  };
  const warm = await compare({
    name: 'tdx.verify.warm',
    subject: () => verifier.verify(parseTdxQuote(bytes), opts),
    floorName: 'node:crypto: 2 ECDSA-P256 verifies (QE report, quote) with imported keys',
    floor: warmFloor,
    target: 0.9,
  });

  // Cold floor: the chain (PCK by CA, CA by root, root self-signed), the TCB Signing chain (signer by root) for
  // each body, both bodies, both CRLs, the QE report and the quote: 10 verifies, keys imported from DER.
  const certs = [...pem.matchAll(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g)].map(
    (m) => new X509Certificate(m[0]),
  );
  const signer = new X509Certificate(Buffer.from(collateral.tcbInfo.issuerChain[0]!));
  const spki = (c: InstanceType<typeof X509Certificate>) =>
    createPublicKey({
      key: c.publicKey.export({ format: 'der', type: 'spki' }),
      format: 'der',
      type: 'spki',
    });
  const coldFloor = () => {
    const keys = certs.map(spki);
    const sk = spki(signer);
    let ok = certs.every((c, i) => c.verify(keys[Math.min(i + 1, keys.length - 1)]!));
    ok &&= signer.verify(keys[keys.length - 1]!) && signer.verify(keys[keys.length - 1]!);
    ok &&= cryptoVerify(
      'sha256',
      collateral.tcbInfo.body,
      { key: sk, ...p1363 },
      collateral.tcbInfo.signature,
    );
    ok &&= cryptoVerify(
      'sha256',
      collateral.qeIdentity.body,
      { key: sk, ...p1363 },
      collateral.qeIdentity.signature,
    );
    // Two more verifies stand in for the CRL signatures (same curve and size).
    ok &&= cryptoVerify(
      'sha256',
      collateral.tcbInfo.body,
      { key: sk, ...p1363 },
      collateral.tcbInfo.signature,
    );
    ok &&= cryptoVerify(
      'sha256',
      collateral.qeIdentity.body,
      { key: sk, ...p1363 },
      collateral.qeIdentity.signature,
    );
    const ak = importKey();
    ok &&= cryptoVerify('sha256', q.qeReport.raw, { key: keys[0]!, ...p1363 }, q.qeReportSignature);
    ok &&= cryptoVerify('sha256', q.signed, { key: ak, ...p1363 }, q.signature);
    createHash('sha256').update(bytes).digest();
    if (!ok) throw new Error('floor');
  };
  const cold = await compare({
    name: 'tdx.verify.cold',
    subject: () => verifyTdx(parseTdxQuote(bytes), { ...opts, verifier: new TdxVerifier() }),
    floorName:
      'node:crypto: import 5 keys + 12 ECDSA-P256 verifies (chains, collateral, CRLs, QE report, quote)',
    floor: coldFloor,
  });
  return [warm, cold];
}
