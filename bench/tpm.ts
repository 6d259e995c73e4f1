import { constants, verify as cryptoVerify, type KeyObject, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createTrustStore, type PcrBank, verifyQuote } from '../src/evidence/tpm/index.js';
import { parseSignature, TPM_ALG } from '../src/formats/tpm/index.js';
import { compare, type Figure } from './harness.js';
import {
  CHECKQUOTE,
  checkquoteArgs,
  removeCheckquoteFiles,
  runCheckquote,
  writeCheckquoteFiles,
} from './tpm-checkquote.js';

const NONCE_HEX = '9009';
/** Inside every certificate's validity (AK certificate: 2021-08-31 .. 2051-08-24). */
const NOW = new Date('2024-06-01T00:00:00Z');

/**
 * TPM quote verification of the real GCE SHA-256-bank quote (go-tpm-tools cos85, nonce 9009):
 * `tpm.quote.verify` against raw node:crypto RSASSA-SHA256 over the same bytes, and
 * `tpm.quote.vs_tpm2_checkquote` against tpm2-tools' `tpm2_checkquote` run as a process per quote.
 *
 * No cold figure: verify-quote.ts keeps two module-level caches (AK public area → KeyObject, and parsed
 * instance identities) that are neither exported nor clearable, so a fresh-cache run cannot be expressed
 * from here (a fresh TrustStore `seen` cache would make only the certificate part cold).
 *
 * Throws an Error naming the Debian package tpm2-tools when `tpm2_checkquote` is missing, and an Error
 * when tpm2_checkquote does not accept the quote or does not reject a wrong nonce / tampered PCR value.
 */
export async function benchTpm(vectors: string): Promise<Figure[]> {
  const g = join(vectors, 'tpm', 'gce-go-tpm-tools');
  const q = (f: string) => new Uint8Array(readFileSync(join(g, 'extracted-cos85-nonce9009', f)));
  const ca = (f: string) => new Uint8Array(readFileSync(join(g, 'ca-certs', f)));
  const json = JSON.parse(
    readFileSync(join(g, 'extracted-cos85-nonce9009', 'quote_sha256.pcrs.json'), 'utf8'),
  ) as Record<string, string>;
  const bank: PcrBank = {
    hashAlg: TPM_ALG.SHA256,
    values: new Map(Object.entries(json).map(([k, v]) => [Number(k), new Uint8Array(Buffer.from(v, 'hex'))])),
  };
  const input = {
    quote: q('quote_sha256.attest.bin'),
    signature: q('quote_sha256.sig.tpmt_signature.bin'),
    pcrs: [bank],
    akCert: q('ak_cert.der'),
    akPublic: q('ak_pub.tpmt_public.bin'),
  };
  const roots = createTrustStore(
    [ca('tpm_ek_root_1.cer'), ca('gcp_ek_ak_ca_root.crt')],
    [
      ca('tpm_ek_intermediate_2.crt'),
      ca('tpm_ek_intermediate_3.crt'),
      ca('gcp_ek_ak_ca_intermediate_v3.crt'),
    ],
  );
  const opts = { now: NOW, roots, nonce: new Uint8Array(Buffer.from(NONCE_HEX, 'hex')) };
  const ours = () => verifyQuote(input, opts);
  ours();

  // Floor: the one RSA verify a quote check cannot avoid, key already imported.
  const akKey: KeyObject = new X509Certificate(input.akCert).publicKey;
  const parsed = parseSignature(input.signature);
  if (!('signature' in parsed) || parsed.sigAlg !== TPM_ALG.RSASSA)
    throw new Error('expected an RSASSA quote');
  const rawSig = parsed.signature;
  const rawRsa = () => {
    if (!cryptoVerify('sha256', input.quote, { key: akKey, padding: constants.RSA_PKCS1_PADDING }, rawSig))
      throw new Error('floor');
  };
  rawRsa();

  const verify = await compare({
    name: 'tpm.quote.verify',
    subject: ours,
    floorName: 'node:crypto RSA-2048 PKCS#1 v1.5 SHA-256 verify of the same quote bytes (cached KeyObject)',
    floor: rawRsa,
  });
  verify.extra = {
    quote: 'GCE go-tpm-tools cos85, SHA-256 bank, 24 PCRs, RSASSA-SHA256 AK, nonce 9009',
    subject_caches: 'warm: trust store (AK cert parse + chain signatures), AK key, instance identity',
    cold: 'not measured: verify-quote.ts module caches (AK key, identity) cannot be cleared from outside',
  };

  // tpm2_checkquote on the same quote, only after checking it accepts it and rejects what it should.
  const files = writeCheckquoteFiles(input.akCert, input.quote, input.signature, bank);
  try {
    const args = checkquoteArgs(files, 'sha256', NONCE_HEX);
    if (!runCheckquote(args)) throw new Error(`${CHECKQUOTE} rejected the GCE quote: ${args.join(' ')}`);
    if (runCheckquote(checkquoteArgs(files, 'sha256', '900a')))
      throw new Error(`${CHECKQUOTE} accepted a wrong nonce`);
    if (runCheckquote(checkquoteArgs(files, 'sha256', NONCE_HEX, files.badPcrs)))
      throw new Error(`${CHECKQUOTE} accepted a tampered PCR value`);
    const checkquote = () => {
      if (!runCheckquote(args)) throw new Error(`${CHECKQUOTE} rejected the quote`);
    };
    const vs = await compare({
      name: 'tpm.quote.vs_tpm2_checkquote',
      subject: ours,
      floorName: 'tpm2_checkquote (tpm2-tools 5.4), one process per quote',
      floor: checkquote,
    });
    vs.extra = {
      floor_includes: 'process start-up (fork/exec, dynamic linking, OpenSSL init) and file reads per quote',
      floor_checks: 'signature with a PEM key, nonce, PCR digest; no AK certificate chain, no AK public area',
      subject_checks:
        'all tpm.quote.verify checks (warm): AK cert chain, AK public area binding, PCR selection',
      command: `${CHECKQUOTE} ${args.map((a) => (a.startsWith(files.dir) ? a.replace(files.dir, '$TMP') : a)).join(' ')}`,
      pcr_file: 'tpm2-tools serialized: TPML_PCR_SELECTION(132) + u32 3 + 3 x TPML_DIGEST(532) = 1732 bytes',
    };
    return [verify, vs];
  } finally {
    removeCheckquoteFiles(files);
  }
}
