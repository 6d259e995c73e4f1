import assert from 'node:assert/strict';
import { createPublicKey, X509Certificate } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { AttestationError } from '../../../src/errors.js';
import {
  computeName,
  encodeAttest,
  encodePcrSelection,
  encodePublic,
  encodeSignature,
  encodeTpm2bPublic,
  parseAttest,
  parseCredentialFile,
  parsePublic,
  parseSignature,
  parseTpm2bPublic,
  publicFromKeyObject,
  publicToKeyObject,
  TPM_ALG,
  TPM_ST,
  TPMA_OBJECT,
  type TpmsAttest,
} from '../../../src/formats/tpm/index.js';
import { fromHex, toHex } from '../../../src/util/bytes.js';
import { newKeyPairSync } from '../../../src/util/key-pair.js';
import { caughtError, throwsCode } from '../../helpers/assert-error.js';
import { needsVectors, readVector, readVectorJson } from '../../helpers/vectors.js';

const GCE = ['tpm', 'gce-go-tpm-tools', 'extracted-cos85-nonce9009'];
const BANKS = ['sha1', 'sha256', 'sha384'] as const;

describe('TPM structures from a real GCE vTPM', needsVectors, () => {
  it('TPMT_PUBLIC (AK): fields, exact re-encoding, Name = 000b ‖ SHA-256 (openssl dgst), key = certificate key', () => {
    const raw = readVector(...GCE, 'ak_pub.tpmt_public.bin');
    const ak = parsePublic(raw);
    assert.equal(ak.type, TPM_ALG.RSA);
    assert.equal(ak.nameAlg, TPM_ALG.SHA256);
    assert.equal(ak.objectAttributes, 0x00050072);
    assert.ok(ak.objectAttributes & TPMA_OBJECT.restricted && ak.objectAttributes & TPMA_OBJECT.sign);
    if (ak.type !== TPM_ALG.RSA) return;
    assert.deepEqual(ak.parameters.scheme, { scheme: TPM_ALG.RSASSA, hashAlg: TPM_ALG.SHA256 });
    assert.equal(ak.parameters.keyBits, 2048);
    assert.equal(toHex(encodePublic(ak)), toHex(raw));
    // `openssl dgst -sha256 ak_pub.tpmt_public.bin`
    assert.equal(
      toHex(computeName(ak)),
      '000bf175bdb57297b2b289973f819863d6c9d09c236725676914f4248c9a2404c2a4',
    );
    const certKey = new X509Certificate(readVector(...GCE, 'ak_cert.der')).publicKey;
    assert.ok(publicToKeyObject(ak).equals(certKey));
    // TPM2B_PUBLIC framing round-trips too.
    assert.equal(toHex(encodePublic(parseTpm2bPublic(encodeTpm2bPublic(ak)))), toHex(raw));
  });

  for (const bank of BANKS) {
    it(`TPMS_ATTEST + TPMT_SIGNATURE (${bank} bank): fields match verified.json, exact re-encoding`, () => {
      const v = readVectorJson(...GCE, 'verified.json').quotes.find(
        (q: { pcr_bank: string }) => q.pcr_bank === bank,
      );
      const raw = readVector(...GCE, `quote_${bank}.attest.bin`);
      const a = parseAttest(raw);
      assert.equal(a.type, TPM_ST.ATTEST_QUOTE);
      if (a.type !== TPM_ST.ATTEST_QUOTE) return;
      assert.equal(toHex(a.qualifiedSigner), v.qualifiedSigner);
      assert.equal(toHex(a.extraData), v.extraData);
      assert.equal(a.attested.pcrSelect.length, 1);
      assert.equal(a.attested.pcrSelect[0]!.hashAlg, { sha1: 4, sha256: 11, sha384: 12 }[bank]);
      assert.deepEqual(a.attested.pcrSelect[0]!.pcrs, v.pcr_select);
      assert.equal(toHex(a.attested.pcrDigest), v.pcrDigest);
      assert.equal(toHex(encodeAttest(a)), toHex(raw));

      const sraw = readVector(...GCE, `quote_${bank}.sig.tpmt_signature.bin`);
      assert.equal(sraw.length, 262);
      const s = parseSignature(sraw);
      assert.equal(`0x${s.sigAlg.toString(16)}`, v.sig_alg);
      assert.equal(`0x${s.hashAlg.toString(16)}`, v.sig_hash);
      assert.equal(toHex(encodeSignature(s)), toHex(sraw));
    });
  }

  it('every truncation of every real structure is MalformedEvidence <what>.truncated', () => {
    const cases: [Uint8Array, (b: Uint8Array) => unknown, string][] = [
      [readVector(...GCE, 'ak_pub.tpmt_public.bin'), parsePublic, 'tpm.public.truncated'],
      [readVector(...GCE, 'quote_sha256.attest.bin'), parseAttest, 'tpm.attest.truncated'],
      [readVector(...GCE, 'quote_sha256.sig.tpmt_signature.bin'), parseSignature, 'tpm.signature.truncated'],
    ];
    for (const [raw, parse, reason] of cases) {
      for (let n = 0; n < raw.length; n++)
        throwsCode(() => parse(raw.subarray(0, n)), 'ERR_MALFORMED', reason);
      throwsCode(
        () => parse(Uint8Array.from([...raw, 0])),
        'ERR_MALFORMED',
        reason.replace('truncated', 'trailing_bytes'),
      );
    }
  });

  it('lying TPM2B sizes: past the end, over the maximum, or TPM2B_PUBLIC size ≠ content', () => {
    const quote = readVector(...GCE, 'quote_sha256.attest.bin');
    // qualifiedSigner size at offset 6: 0x22 → 0x30 (points into later fields: everything shifts).
    const shifted = Uint8Array.from(quote);
    shifted[7] = 0x30;
    assert.equal(caughtError(() => parseAttest(shifted)).code, 'ERR_MALFORMED');
    const huge = Uint8Array.from(quote);
    huge[6] = 0x01; // 0x0122 > 66
    throwsCode(() => parseAttest(huge), 'ERR_MALFORMED', 'tpm.attest.qualified_signer');
    const pub = encodeTpm2bPublic(parsePublic(readVector(...GCE, 'ak_pub.tpmt_public.bin')));
    const lying = Uint8Array.from(pub);
    lying[1]! -= 1;
    throwsCode(() => parseTpm2bPublic(lying), 'ERR_MALFORMED', 'tpm.public.size');
    const sig = Uint8Array.from(readVector(...GCE, 'quote_sha256.sig.tpmt_signature.bin'));
    sig[4] = 0x03; // 0x0300 > 512
    throwsCode(() => parseSignature(sig), 'ERR_MALFORMED', 'tpm.signature.rsa');
  });

  it('unknown or unsupported algorithm ids are NotSupported with stable reasons', () => {
    const sig = Uint8Array.from(readVector(...GCE, 'quote_sha256.sig.tpmt_signature.bin'));
    const at = (b: Uint8Array, off: number, v: number) => {
      const c = Uint8Array.from(b);
      c[off] = v >> 8;
      c[off + 1] = v & 0xff;
      return c;
    };
    throwsCode(() => parseSignature(at(sig, 0, 0x0099)), 'ERR_NOT_SUPPORTED', 'tpm.signature.sig_alg');
    throwsCode(() => parseSignature(at(sig, 2, TPM_ALG.SM3_256)), 'ERR_NOT_SUPPORTED', 'tpm.signature.hash');
    const pub = readVector(...GCE, 'ak_pub.tpmt_public.bin');
    throwsCode(() => parsePublic(at(pub, 0, TPM_ALG.KEYEDHASH)), 'ERR_NOT_SUPPORTED', 'tpm.public.type');
    throwsCode(() => parsePublic(at(pub, 2, 0x7777)), 'ERR_NOT_SUPPORTED', 'tpm.public.name_alg');
    // authPolicy is empty here: parms start at offset 10 (symmetric), 12 (scheme).
    throwsCode(() => parsePublic(at(pub, 10, TPM_ALG.XOR)), 'ERR_NOT_SUPPORTED', 'tpm.public.symmetric');
    throwsCode(() => parsePublic(at(pub, 12, TPM_ALG.ECDSA)), 'ERR_NOT_SUPPORTED', 'tpm.public.rsa_scheme');
    const reserved = Uint8Array.from(pub);
    reserved[7]! |= 0x01; // bit 0 is reserved
    throwsCode(() => parsePublic(reserved), 'ERR_MALFORMED', 'tpm.public.attributes');

    const quote = readVector(...GCE, 'quote_sha256.attest.bin');
    throwsCode(() => parseAttest(at(quote, 0, 0xff55)), 'ERR_MALFORMED', 'tpm.attest.magic');
    throwsCode(() => parseAttest(at(quote, 4, TPM_ST.ATTEST_NV)), 'ERR_NOT_SUPPORTED', 'tpm.attest.type');
    // magic(4) type(2) signer(2+34) extra(2+2) clock(8) reset(4) restart(4): safe at 62, fw 63-70,
    // selection count 71-74, bank hash 75-76, sizeofSelect 77.
    const unsafe = Uint8Array.from(quote);
    unsafe[62] = 2;
    throwsCode(() => parseAttest(unsafe), 'ERR_MALFORMED', 'tpm.attest.safe');
    const many = Uint8Array.from(quote);
    many[74] = 17;
    throwsCode(() => parseAttest(many), 'ERR_MALFORMED', 'tpm.attest.pcr_selection_count');
    throwsCode(() => parseAttest(at(quote, 75, 0x0012)), 'ERR_NOT_SUPPORTED', 'tpm.attest.pcr_bank');
    const wideSel = Uint8Array.from(quote);
    wideSel[77] = 33;
    throwsCode(() => parseAttest(wideSel), 'ERR_MALFORMED', 'tpm.attest.pcr_select_size');
  });

  it('parsers only throw typed errors on random input and on mutations of real structures (property test)', () => {
    const parsers = [parseAttest, parseSignature, parsePublic, parseTpm2bPublic, parseCredentialFile];
    const reals = [
      readVector(...GCE, 'quote_sha384.attest.bin'),
      readVector(...GCE, 'quote_sha1.sig.tpmt_signature.bin'),
      readVector(...GCE, 'ak_pub.tpmt_public.bin'),
    ];
    const tryAll = (b: Uint8Array) => {
      for (const p of parsers) {
        try {
          p(b);
        } catch (e) {
          if (!(e instanceof AttestationError)) throw e;
        }
      }
    };
    fc.assert(fc.property(fc.uint8Array({ maxLength: 400 }), tryAll), { numRuns: 1500 });
    fc.assert(
      fc.property(
        fc.constantFrom(...reals),
        fc.array(fc.tuple(fc.nat(), fc.nat(255)), { minLength: 1, maxLength: 4 }),
        (real, edits) => {
          const m = Uint8Array.from(real);
          for (const [i, v] of edits) m[i % m.length] = v;
          tryAll(m);
        },
      ),
      { numRuns: 3000 },
    );
  });
});

describe('TPM structure encoders', () => {
  it('TPML_PCR_SELECTION: bit j of byte i selects PCR 8i+j', () => {
    assert.equal(
      toHex(encodePcrSelection([{ hashAlg: TPM_ALG.SHA256, pcrs: [0, 1, 7, 8, 23] }])),
      '00000001' + '000b' + '03' + '83' + '01' + '80',
    );
    assert.equal(
      toHex(
        encodePcrSelection([
          { hashAlg: TPM_ALG.SHA1, pcrs: [] },
          { hashAlg: TPM_ALG.SHA384, pcrs: [16] },
        ]),
      ),
      '00000002' + '0004' + '03' + '000000' + '000c' + '03' + '000001',
    );
    assert.throws(() => encodePcrSelection([{ hashAlg: 11, pcrs: [24], sizeofSelect: 3 } as never]), {
      reason: 'tpm.encode.pcr_index',
    });
  });

  it('a certify TPMS_ATTEST round-trips', () => {
    const a: TpmsAttest = {
      type: TPM_ST.ATTEST_CERTIFY,
      qualifiedSigner: fromHex(`000b${'11'.repeat(32)}`)!,
      extraData: fromHex('c0ffee')!,
      clockInfo: { clock: 123456789n, resetCount: 1, restartCount: 2, safe: false },
      firmwareVersion: 0x2000_0000_1234_5678n,
      attested: {
        name: fromHex(`000b${'22'.repeat(32)}`)!,
        qualifiedName: fromHex(`000b${'33'.repeat(32)}`)!,
      },
    };
    const b = encodeAttest(a);
    const p = parseAttest(b);
    assert.equal(toHex(encodeAttest(p)), toHex(b));
    assert.deepEqual({ ...p, raw: undefined }, { ...a, raw: undefined });
  });

  it('HMAC and ECDSA TPMT_SIGNATUREs round-trip; an HMAC digest of the wrong size is refused', () => {
    const hmac = {
      sigAlg: TPM_ALG.HMAC,
      hashAlg: TPM_ALG.SHA256,
      digest: new Uint8Array(32).fill(7),
    } as const;
    assert.deepEqual(parseSignature(encodeSignature(hmac)), hmac);
    const ecdsa = {
      sigAlg: TPM_ALG.ECDSA,
      hashAlg: TPM_ALG.SHA384,
      r: new Uint8Array(48).fill(1),
      s: new Uint8Array(47).fill(2),
    } as const;
    assert.deepEqual(parseSignature(encodeSignature(ecdsa)), ecdsa);
    assert.throws(() => encodeSignature({ ...hmac, digest: new Uint8Array(20) }), {
      reason: 'tpm.signature.hash',
    });
  });

  it('KeyObject ⇄ TPMT_PUBLIC for RSA-2048 and P-256/384/521, through the wire format', () => {
    const keys = [
      newKeyPairSync('rsa', { modulusLength: 2048 }).publicKey,
      ...['P-256', 'P-384', 'P-521'].map((c) => newKeyPairSync('ec', { namedCurve: c }).publicKey),
    ];
    for (const k of keys) {
      const t = publicFromKeyObject(k, { nameAlg: TPM_ALG.SHA256, objectAttributes: 0x00050072 });
      const back = publicToKeyObject(parsePublic(encodePublic(t)));
      assert.ok(back.equals(k), k.asymmetricKeyType);
    }
  });

  it('publicToKeyObject rejects a modulus that disagrees with keyBits, a point off the curve, an unknown curve', () => {
    const rsa = publicFromKeyObject(newKeyPairSync('rsa', { modulusLength: 2048 }).publicKey, {
      nameAlg: TPM_ALG.SHA256,
      objectAttributes: 0,
    });
    if (rsa.type !== TPM_ALG.RSA) return;
    throwsCode(
      () => publicToKeyObject({ ...rsa, parameters: { ...rsa.parameters, keyBits: 3072 } }),
      'ERR_MALFORMED',
      'tpm.public.rsa_modulus',
    );
    const ec = publicFromKeyObject(newKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey, {
      nameAlg: TPM_ALG.SHA256,
      objectAttributes: 0,
    });
    if (ec.type !== TPM_ALG.ECC) return;
    const y = Uint8Array.from(ec.unique.y);
    y[31]! ^= 1;
    throwsCode(
      () => publicToKeyObject({ ...ec, unique: { x: ec.unique.x, y } }),
      'ERR_MALFORMED',
      'tpm.public.key',
    );
    throwsCode(
      () => publicToKeyObject({ ...ec, parameters: { ...ec.parameters, curveId: 0x0010 } }),
      'ERR_NOT_SUPPORTED',
      'tpm.public.curve',
    );
    throwsCode(
      () => publicToKeyObject({ ...ec, unique: { x: new Uint8Array(33).fill(1), y: ec.unique.y } }),
      'ERR_MALFORMED',
      'tpm.public.ecc_point',
    );
    // Sanity: the unmodified key converts.
    assert.ok(
      publicToKeyObject(ec).equals(
        createPublicKey(publicToKeyObject(ec).export({ format: 'pem', type: 'spki' })),
      ),
    );
  });
});
