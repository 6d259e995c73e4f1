import assert from 'node:assert/strict';
import { constants, type KeyObject, sign } from 'node:crypto';
import { before, describe, it } from 'node:test';
import fc from 'fast-check';
import { AttestationError } from '../../../src/errors.js';
import {
  createTrustStore,
  type PcrBank,
  type TrustStore,
  verifyQuote,
} from '../../../src/evidence/tpm/index.js';
import { decodePem } from '../../../src/formats/pem.js';
import {
  computeName,
  encodePublic,
  encodeSignature,
  parseSignature,
  publicFromKeyObject,
  TPM_ALG,
  TPM_ST,
} from '../../../src/formats/tpm/index.js';
import { fromHex, toHex } from '../../../src/util/bytes.js';
import { newKeyPairSync } from '../../../src/util/key-pair.js';
import { throwsCode } from '../../helpers/assert-error.js';
import { needsVectors, readVector, readVectorJson, readVectorText } from '../../helpers/vectors.js';
import { makeQuote, randomPcrs } from './quote-fixtures.js';
import { issueCa, issueLeaf, makeRoot, T0, type TestCa } from './test-ca.js';

const G = ['tpm', 'gce-go-tpm-tools'];
const Q = [...G, 'extracted-cos85-nonce9009'];
const BANK_IDS = { sha1: TPM_ALG.SHA1, sha256: TPM_ALG.SHA256, sha384: TPM_ALG.SHA384 } as const;
const NONCE = Uint8Array.of(0x90, 0x09);
/** Inside every certificate's validity (AK cert: 2021-08-31 .. 2051-08-24). */
const AT = new Date('2024-06-01T00:00:00Z');

function gcePcrs(bank: keyof typeof BANK_IDS): PcrBank {
  const json = readVectorJson<Record<string, string>>(...Q, `quote_${bank}.pcrs.json`);
  return {
    hashAlg: BANK_IDS[bank],
    values: new Map(Object.entries(json).map(([k, v]) => [Number(k), fromHex(v)!])),
  };
}

function gceInput(bank: keyof typeof BANK_IDS) {
  return {
    quote: readVector(...Q, `quote_${bank}.attest.bin`),
    signature: readVector(...Q, `quote_${bank}.sig.tpmt_signature.bin`),
    pcrs: [gcePcrs(bank)],
    akCert: readVector(...Q, 'ak_cert.der'),
    akPublic: readVector(...Q, 'ak_pub.tpmt_public.bin'),
  };
}

describe('verifyQuote: the real GCE attestation (nonce 9009)', needsVectors, () => {
  let trust: TrustStore;
  before(() => {
    const ca = (f: string) => readVector(...G, 'ca-certs', f);
    trust = createTrustStore(
      [ca('tpm_ek_root_1.cer'), ca('gcp_ek_ak_ca_root.crt')],
      [
        ca('tpm_ek_intermediate_2.crt'),
        ca('tpm_ek_intermediate_3.crt'),
        ca('gcp_ek_ak_ca_intermediate_v3.crt'),
      ],
    );
  });
  const opts = () => ({ now: AT, roots: trust, nonce: NONCE });
  const verified = () =>
    readVectorJson(...Q, 'verified.json').quotes as { pcr_bank: string; pcrDigest: string }[];

  for (const bank of ['sha1', 'sha256', 'sha384'] as const) {
    it(`${bank} bank: verifies, pcrDigest is SHA-256 (the signing hash), identity from the AK certificate`, () => {
      const c = verifyQuote(gceInput(bank), opts());
      assert.equal(toHex(c.nonce), '9009');
      assert.equal(toHex(c.pcrDigest), verified().find((q) => q.pcr_bank === bank)!.pcrDigest);
      assert.equal(c.pcrs.length, 1);
      assert.equal(c.pcrs[0]!.hashAlg, BANK_IDS[bank]);
      assert.deepEqual([...c.pcrs[0]!.values.keys()], [...Array(24).keys()]);
      assert.deepEqual(c.signature, { sigAlg: TPM_ALG.RSASSA, hashAlg: TPM_ALG.SHA256 });
      // Name = 000b ‖ sha256(ak_pub) (openssl dgst -sha256)
      assert.equal(toHex(c.akName!), '000bf175bdb57297b2b289973f819863d6c9d09c236725676914f4248c9a2404c2a4');
      assert.equal(c.chain.length, 3);
      // Values from `openssl asn1parse` of the AK certificate's 1.3.6.1.4.1.11129.2.1.21 extension.
      assert.equal(c.identity?.zone, 'us-central1-a');
      assert.equal(c.identity?.projectNumber, 0x1b5a475c69n);
      assert.equal(c.identity?.projectId, 'google.com:wuale-gcp-testing');
      assert.equal(c.identity?.instanceId, 0x5e53e3fbbf8306c5n);
      assert.equal(c.identity?.instanceName, 'cos-test');
      assert.equal(c.identity?.securityProperties?.isProduction, true);
      assert.equal(
        toHex(c.qualifiedSigner),
        '000bde01fe4b4ade2f8b7ae19b8a8897e0cb77ae417731d8ce38697ec4f6c095030a',
      );
      assert.equal(typeof c.obfuscated.resetCount, 'number');
    });
  }

  it('without the AK public area it still verifies, and reports no Name', () => {
    const { akPublic: _, ...input } = gceInput('sha256');
    assert.equal(verifyQuote(input, opts()).akName, null);
  });

  it('wrong nonce, or no nonce expected', () => {
    throwsCode(
      () => verifyQuote(gceInput('sha256'), { ...opts(), nonce: Uint8Array.of(0x90, 0x0a) }),
      'ERR_BINDING_MISMATCH',
      'tpm.quote.nonce',
    );
    throwsCode(
      () => verifyQuote(gceInput('sha256'), { ...opts(), nonce: new Uint8Array() }),
      'ERR_BINDING_MISMATCH',
      'tpm.quote.nonce',
    );
  });

  it('one PCR value changed (every bank)', () => {
    for (const bank of ['sha1', 'sha256', 'sha384'] as const) {
      const input = gceInput(bank);
      const values = new Map(input.pcrs[0]!.values);
      const v = Uint8Array.from(values.get(7)!);
      v[0]! ^= 1;
      values.set(7, v);
      throwsCode(
        () => verifyQuote({ ...input, pcrs: [{ hashAlg: BANK_IDS[bank], values }] }, opts()),
        'ERR_BINDING_MISMATCH',
        'tpm.quote.pcr_digest',
      );
    }
  });

  it('PCR set differs from the selection: one missing, one extra, another bank, an extra bank', () => {
    const input = gceInput('sha256');
    const values = input.pcrs[0]!.values;
    const missing = new Map(values);
    missing.delete(23);
    throwsCode(
      () => verifyQuote({ ...input, pcrs: [{ hashAlg: TPM_ALG.SHA256, values: missing }] }, opts()),
      'ERR_BINDING_MISMATCH',
      'tpm.quote.pcr_selection',
    );
    const extra = new Map(values).set(24, new Uint8Array(32));
    throwsCode(
      () => verifyQuote({ ...input, pcrs: [{ hashAlg: TPM_ALG.SHA256, values: extra }] }, opts()),
      'ERR_BINDING_MISMATCH',
      'tpm.quote.pcr_selection',
    );
    const sha1 = gcePcrs('sha1');
    throwsCode(
      () => verifyQuote({ ...input, pcrs: [sha1] }, opts()),
      'ERR_BINDING_MISMATCH',
      'tpm.quote.pcr_selection',
    );
    throwsCode(
      () => verifyQuote({ ...input, pcrs: [input.pcrs[0]!, sha1] }, opts()),
      'ERR_BINDING_MISMATCH',
      'tpm.quote.pcr_selection',
    );
    throwsCode(
      () => verifyQuote({ ...input, pcrs: [] }, opts()),
      'ERR_BINDING_MISMATCH',
      'tpm.quote.pcr_selection',
    );
  });

  it('PCR values of the wrong size for their bank are malformed', () => {
    const input = gceInput('sha256');
    const values = new Map(input.pcrs[0]!.values).set(3, new Uint8Array(20));
    throwsCode(
      () => verifyQuote({ ...input, pcrs: [{ hashAlg: TPM_ALG.SHA256, values }] }, opts()),
      'ERR_MALFORMED',
      'tpm.pcrs.value_size',
    );
  });

  it('a flipped signature byte, or a flipped quote byte, breaks the signature', () => {
    const input = gceInput('sha384');
    for (const off of [6, 100, 261]) {
      const sig = Uint8Array.from(input.signature);
      sig[off]! ^= 0x01;
      throwsCode(
        () => verifyQuote({ ...input, signature: sig }, opts()),
        'ERR_SIGNATURE_INVALID',
        'tpm.quote.signature',
      );
    }
    const quote = Uint8Array.from(input.quote);
    quote[50]! ^= 0x01; // inside the clock
    throwsCode(
      () => verifyQuote({ ...input, quote }, opts()),
      'ERR_SIGNATURE_INVALID',
      'tpm.quote.signature',
    );
    // The signature of another quote does not transfer.
    throwsCode(
      () => verifyQuote({ ...input, signature: gceInput('sha1').signature }, opts()),
      'ERR_SIGNATURE_INVALID',
      'tpm.quote.signature',
    );
  });

  it('an AK certificate that does not chain to the roots, or outside its validity', () => {
    const ca = (f: string) => readVector(...G, 'ca-certs', f);
    const otherPki = createTrustStore(
      [ca('gcp_ek_ak_ca_root.crt')],
      [ca('gcp_ek_ak_ca_intermediate_v3.crt')],
    );
    throwsCode(
      () => verifyQuote(gceInput('sha256'), { ...opts(), roots: otherPki }),
      'ERR_CHAIN_INVALID',
      'x509.chain.no_path',
    );
    throwsCode(
      () => verifyQuote(gceInput('sha256'), { ...opts(), now: new Date('2060-01-01') }),
      'ERR_CHAIN_INVALID',
      'x509.chain.expired',
    );
    throwsCode(
      () => verifyQuote(gceInput('sha256'), { ...opts(), now: new Date('2021-01-01') }),
      'ERR_CHAIN_INVALID',
      'x509.chain.not_yet_valid',
    );
  });

  it('a valid certificate from the same PKI but for another key does not verify the signature', () => {
    // uca_tpm_rsa_sign_cert chains to tpm_ek_root_1 (via intermediate 3) and allows digitalSignature.
    const other = decodePem(readVectorText(...G, 'certificates', 'uca_tpm_rsa_sign_cert.pem'), 'test')[0]!
      .der;
    const { akPublic: _, ...input } = gceInput('sha256');
    throwsCode(
      () => verifyQuote({ ...input, akCert: other }, opts()),
      'ERR_SIGNATURE_INVALID',
      'tpm.quote.signature',
    );
  });

  it('an AK public area that is not the certificate key', () => {
    const other = publicFromKeyObject(newKeyPairSync('rsa', { modulusLength: 2048 }).publicKey, {
      nameAlg: TPM_ALG.SHA256,
      objectAttributes: 0x00050072,
      scheme: { scheme: TPM_ALG.RSASSA, hashAlg: TPM_ALG.SHA256 },
    });
    throwsCode(
      () => verifyQuote({ ...gceInput('sha256'), akPublic: encodePublic(other) }, opts()),
      'ERR_BINDING_MISMATCH',
      'tpm.quote.ak_public',
    );
  });

  it('malformed structures: truncated quote, lying size, unknown signature algorithm', () => {
    const input = gceInput('sha256');
    throwsCode(
      () => verifyQuote({ ...input, quote: input.quote.subarray(0, 60) }, opts()),
      'ERR_MALFORMED',
      'tpm.attest.truncated',
    );
    const lying = Uint8Array.from(input.quote);
    lying[43] = 0x40; // extraData size 0x0040: runs over everything after it
    throwsCode(
      () => verifyQuote({ ...input, quote: lying }, opts()),
      'ERR_MALFORMED',
      'tpm.attest.truncated',
    );
    const sig = Uint8Array.from(input.signature);
    sig[1] = 0x99;
    throwsCode(
      () => verifyQuote({ ...input, signature: sig }, opts()),
      'ERR_NOT_SUPPORTED',
      'tpm.signature.sig_alg',
    );
    throwsCode(
      () => verifyQuote({ ...input, akCert: input.akCert.subarray(0, 100) }, opts()),
      'ERR_MALFORMED',
      'x509.certificate',
    );
  });

  it('mutated quotes, signatures and PCR lists only ever produce typed errors (property test)', () => {
    const input = gceInput('sha256');
    fc.assert(
      fc.property(
        fc.nat(input.quote.length - 1),
        fc.nat(255),
        fc.nat(input.signature.length - 1),
        fc.nat(255),
        (qi, qv, si, sv) => {
          const quote = Uint8Array.from(input.quote);
          quote[qi] = qv;
          const signature = Uint8Array.from(input.signature);
          signature[si] = sv;
          try {
            verifyQuote({ ...input, quote, signature }, opts());
          } catch (e) {
            if (!(e instanceof AttestationError)) throw e;
          }
        },
      ),
      { numRuns: 400 },
    );
  });
});

describe('verifyQuote: generated AKs and quotes (RSASSA, RSAPSS, ECDSA; multi-bank)', () => {
  let root: TestCa;
  let inter: TestCa;
  let trust: TrustStore;
  const keys: Record<string, { privateKey: KeyObject; publicKey: KeyObject }> = {
    rsa: newKeyPairSync('rsa', { modulusLength: 2048 }),
    p256: newKeyPairSync('ec', { namedCurve: 'P-256' }),
    p384: newKeyPairSync('ec', { namedCurve: 'P-384' }),
  };
  const certs: Record<string, Uint8Array> = {};
  const nonce = new Uint8Array(32).fill(0x5a);
  const banks = [
    randomPcrs(TPM_ALG.SHA1, [0, 1, 2, 7]),
    randomPcrs(TPM_ALG.SHA256, [0, 4, 7, 9, 14]),
    randomPcrs(TPM_ALG.SHA384, [23]),
  ];

  before(async () => {
    root = await makeRoot();
    inter = await issueCa(root, { subject: 'CN=AK CA', ca: { pathLength: 0 } });
    trust = createTrustStore([root.der]);
    for (const [k, kp] of Object.entries(keys))
      certs[k] = await issueLeaf(inter, { subject: `CN=ak-${k}` }, kp.publicKey);
  });

  const input = (k: string, q: { quote: Uint8Array; signature: Uint8Array }, akPublic?: Uint8Array) => ({
    ...q,
    pcrs: banks,
    akCert: certs[k]!,
    intermediates: [inter.der],
    ...(akPublic ? { akPublic } : {}),
  });
  const opts = () => ({ now: T0, roots: trust, nonce });

  const variants: [string, string, number, number][] = [
    ['RSASSA-SHA256', 'rsa', TPM_ALG.RSASSA, TPM_ALG.SHA256],
    ['RSASSA-SHA384', 'rsa', TPM_ALG.RSASSA, TPM_ALG.SHA384],
    ['RSAPSS-SHA256 (salt = 32)', 'rsa', TPM_ALG.RSAPSS, TPM_ALG.SHA256],
    ['RSAPSS-SHA512 (salt = 64)', 'rsa', TPM_ALG.RSAPSS, TPM_ALG.SHA512],
    ['ECDSA P-256 SHA256', 'p256', TPM_ALG.ECDSA, TPM_ALG.SHA256],
    ['ECDSA P-384 SHA384', 'p384', TPM_ALG.ECDSA, TPM_ALG.SHA384],
  ];
  for (const [name, k, sigAlg, hashAlg] of variants) {
    it(`${name}: verifies over three banks; a digest over the bank hashes instead is refused`, () => {
      const kp = keys[k]!;
      const q = makeQuote({ key: kp.privateKey, sigAlg, hashAlg, banks, nonce });
      const ak = publicFromKeyObject(kp.publicKey, {
        nameAlg: TPM_ALG.SHA256,
        objectAttributes: 0x00050072,
        scheme: { scheme: sigAlg, hashAlg },
      });
      const c = verifyQuote(input(k, q, encodePublic(ak)), opts());
      assert.deepEqual(
        c.pcrs.map((b) => b.hashAlg),
        [TPM_ALG.SHA1, TPM_ALG.SHA256, TPM_ALG.SHA384],
      );
      assert.equal(toHex(c.akName!), toHex(computeName(ak)));
      assert.equal(c.identity, null);
      assert.equal(c.chain.length, 3);
      // With SHA-1 digests the pcrDigest would be 20 bytes; a TPM always uses the signing hash.
      const wrong = makeQuote({
        key: kp.privateKey,
        sigAlg,
        hashAlg,
        banks,
        nonce,
        digestHashAlg: TPM_ALG.SHA1,
      });
      throwsCode(() => verifyQuote(input(k, wrong), opts()), 'ERR_BINDING_MISMATCH', 'tpm.quote.pcr_digest');
    });
  }

  it('PSS with a salt other than the digest size is refused', () => {
    const q = makeQuote({
      key: keys.rsa!.privateKey,
      sigAlg: TPM_ALG.RSAPSS,
      hashAlg: TPM_ALG.SHA256,
      banks,
      nonce,
    });
    // Re-sign with salt length 20.
    const s = sign('sha256', q.quote, {
      key: keys.rsa!.privateKey,
      padding: constants.RSA_PKCS1_PSS_PADDING,
      saltLength: 20,
    });
    const signature = encodeSignature({
      sigAlg: TPM_ALG.RSAPSS,
      hashAlg: TPM_ALG.SHA256,
      signature: new Uint8Array(s),
    });
    throwsCode(
      () => verifyQuote(input('rsa', { quote: q.quote, signature }), opts()),
      'ERR_SIGNATURE_INVALID',
      'tpm.quote.signature',
    );
  });

  it('signature scheme vs key type, SHA-1 signatures, HMAC signatures, certify instead of quote', () => {
    const ecdsaByRsaCert = makeQuote({
      key: keys.p256!.privateKey,
      sigAlg: TPM_ALG.ECDSA,
      hashAlg: TPM_ALG.SHA256,
      banks,
      nonce,
    });
    throwsCode(
      () => verifyQuote(input('rsa', ecdsaByRsaCert), opts()),
      'ERR_SIGNATURE_INVALID',
      'tpm.quote.sig_key_mismatch',
    );
    const sha1 = makeQuote({
      key: keys.rsa!.privateKey,
      sigAlg: TPM_ALG.RSASSA,
      hashAlg: TPM_ALG.SHA1,
      banks,
      nonce,
    });
    throwsCode(() => verifyQuote(input('rsa', sha1), opts()), 'ERR_NOT_SUPPORTED', 'tpm.quote.sig_hash');
    const good = makeQuote({
      key: keys.rsa!.privateKey,
      sigAlg: TPM_ALG.RSASSA,
      hashAlg: TPM_ALG.SHA256,
      banks,
      nonce,
    });
    const hmac = encodeSignature({
      sigAlg: TPM_ALG.HMAC,
      hashAlg: TPM_ALG.SHA256,
      digest: new Uint8Array(32),
    });
    throwsCode(
      () => verifyQuote(input('rsa', { quote: good.quote, signature: hmac }), opts()),
      'ERR_NOT_SUPPORTED',
      'tpm.quote.sig_alg',
    );
    const certify = makeQuote({
      key: keys.rsa!.privateKey,
      sigAlg: TPM_ALG.RSASSA,
      hashAlg: TPM_ALG.SHA256,
      banks,
      nonce,
      type: TPM_ST.ATTEST_CERTIFY,
    });
    throwsCode(() => verifyQuote(input('rsa', certify), opts()), 'ERR_MALFORMED', 'tpm.quote.not_quote');
  });

  it('the AK public area must be a restricted fixedTPM signing key whose scheme matches the signature', () => {
    const q = makeQuote({
      key: keys.rsa!.privateKey,
      sigAlg: TPM_ALG.RSASSA,
      hashAlg: TPM_ALG.SHA256,
      banks,
      nonce,
    });
    const base = { nameAlg: TPM_ALG.SHA256, scheme: { scheme: TPM_ALG.RSASSA, hashAlg: TPM_ALG.SHA256 } };
    const unrestricted = publicFromKeyObject(keys.rsa!.publicKey, { ...base, objectAttributes: 0x00040072 });
    throwsCode(
      () => verifyQuote(input('rsa', q, encodePublic(unrestricted)), opts()),
      'ERR_BINDING_MISMATCH',
      'tpm.quote.ak_attributes',
    );
    const pss = publicFromKeyObject(keys.rsa!.publicKey, {
      ...base,
      objectAttributes: 0x00050072,
      scheme: { scheme: TPM_ALG.RSAPSS, hashAlg: TPM_ALG.SHA256 },
    });
    throwsCode(
      () => verifyQuote(input('rsa', q, encodePublic(pss)), opts()),
      'ERR_BINDING_MISMATCH',
      'tpm.quote.ak_scheme',
    );
  });

  it('a bank selected twice, or a selection naming PCRs that were not supplied, is refused', () => {
    const dup = makeQuote({
      key: keys.p256!.privateKey,
      sigAlg: TPM_ALG.ECDSA,
      hashAlg: TPM_ALG.SHA256,
      banks,
      nonce,
      selection: [
        { hashAlg: TPM_ALG.SHA1, pcrs: [0, 1, 2, 7] },
        { hashAlg: TPM_ALG.SHA1, pcrs: [0, 1, 2, 7] },
        { hashAlg: TPM_ALG.SHA384, pcrs: [23] },
      ],
    });
    throwsCode(
      () => verifyQuote(input('p256', dup), opts()),
      'ERR_BINDING_MISMATCH',
      'tpm.quote.pcr_selection',
    );
  });

  it('ECDSA r/s shorter than the field (leading zeros stripped by the TPM) still verify', () => {
    // Search for a signature whose r starts with a zero byte, then strip it as some TPMs do.
    for (let i = 0; i < 2000; i++) {
      const n = Uint8Array.from([...nonce.subarray(0, 30), i >> 8, i & 0xff]);
      const q = makeQuote({
        key: keys.p256!.privateKey,
        sigAlg: TPM_ALG.ECDSA,
        hashAlg: TPM_ALG.SHA256,
        banks,
        nonce: n,
      });
      const sig = parseSignature(q.signature);
      if (!('r' in sig) || sig.r[0] !== 0) continue;
      const stripped = encodeSignature({ ...sig, r: sig.r.subarray(1) });
      verifyQuote(input('p256', { quote: q.quote, signature: stripped }), { ...opts(), nonce: n });
      return;
    }
    assert.fail('no signature with a leading zero in 2000 tries');
  });
});
