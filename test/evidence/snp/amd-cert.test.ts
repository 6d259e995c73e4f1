import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import * as pkijs from 'pkijs';
import { AttestationError, ErrorCode } from '../../../src/errors.js';
import {
  type AmdLeaf,
  leafTcbRaw,
  parseAmdCa,
  parseAmdLeaf,
  tcbMismatches,
} from '../../../src/evidence/snp/amd-cert.js';
import { formatName, loadDer, MAX_CERT_SIZE, parseX509 } from '../../../src/evidence/snp/x509.js';
import { toHex } from '../../../src/util/bytes.js';
import { throwsCode } from '../../helpers/assert-error.js';
import { needsVectors, readVectorText, vectorCases } from '../../helpers/vectors.js';
import { amdCert, ascii, type LeafCertFields, realCase, replaceOnce } from './verify-helpers.js';

const AMD_FILES = ['milan', 'genoa', 'turin'].flatMap((p) => [
  `${p}_ark.pem`,
  `${p}_ask.pem`,
  `${p}_asvk.pem`,
]);

/** expected.json writes hwID as "untagged:<hex>" (64 B) or "raw:<hex>" (Turin 8 B). */
const hwIdHex = (s: string) => s.replace(/^(untagged|raw):/, '');

function checkLeafFields(leaf: AmdLeaf, f: LeafCertFields) {
  assert.equal(formatName(leaf.cert.subjectName), f.subject);
  assert.equal(formatName(leaf.cert.issuerName), f.issuer);
  assert.equal(`0x${BigInt(`0x${toHex(leaf.cert.serialNumber)}`).toString(16)}`, f.serial);
  assert.equal(leaf.cert.notBefore.toISOString(), new Date(f.not_before).toISOString());
  assert.equal(leaf.cert.notAfter.toISOString(), new Date(f.not_after).toISOString());
  assert.equal(leaf.structVersion, f.structVersion);
  assert.equal(leaf.productName, f.productName);
  assert.equal(leaf.spl.bl, f.blSPL);
  assert.equal(leaf.spl.tee, f.teeSPL);
  assert.equal(leaf.spl.snp, f.snpSPL);
  assert.equal(leaf.spl.ucode, f.ucodeSPL);
  assert.equal(leaf.spl.fmc, f.fmcSPL);
  assert.equal(leaf.spl.spl4, f.spl_4);
  assert.equal(leaf.spl.spl5, f.spl_5);
  assert.equal(leaf.spl.spl6, f.spl_6);
  assert.equal(leaf.spl.spl7, f.spl_7);
  assert.equal(leaf.hwId ? toHex(leaf.hwId) : undefined, f.hwID ? hwIdHex(f.hwID) : undefined);
  assert.equal(leaf.cspId, f.cspID);
  assert.equal(leaf.publicKey.asymmetricKeyDetails?.namedCurve, 'secp384r1');
}

describe('AMD VCEK/VLEK parsing on real certificates', needsVectors, () => {
  for (const name of vectorCases('snp')) {
    it(`${name}: leaf fields equal expected.json leaf_cert_fields`, () => {
      const c = realCase(name);
      const leaf = parseAmdLeaf(c.certs.leaf);
      assert.equal(leaf.kind, c.signer);
      checkLeafFields(leaf, c.expected.leaf_cert_fields);
      // The same certificate as PEM text parses to the same thing.
      const pem = readVectorText('snp', name, c.signer === 'VLEK' ? 'vlek.pem' : 'vcek.pem');
      assert.deepEqual(parseAmdLeaf(pem).cert.der, leaf.cert.der);
    });

    it(`${name}: TBS bytes agree with pkijs (second opinion) for leaf, intermediate and root`, () => {
      const c = realCase(name);
      for (const der of [c.certs.leaf, c.certs.intermediate, c.certs.root]) {
        const ours = parseX509(der);
        const theirs = pkijs.Certificate.fromBER(der);
        assert.deepEqual(Buffer.from(ours.tbs), Buffer.from(theirs.tbsView));
        assert.deepEqual(
          Buffer.from(ours.signatureValue),
          Buffer.from(theirs.signatureValue.valueBlock.valueHexView),
        );
        assert.equal(ours.notAfter.getTime(), theirs.notAfter.value.getTime());
      }
    });
  }

  it('tolerates the real quirks: serial 0, no AKID, Turin without spl_4, Genoa without stepping', () => {
    const turin = parseAmdLeaf(realCase('microsoft-tav-turin').certs.leaf);
    assert.equal(turin.product, 'Turin');
    assert.equal(turin.spl.spl4, undefined);
    assert.equal(turin.spl.fmc, 1);
    assert.equal(turin.hwId?.length, 8);
    const genoa = parseAmdLeaf(realCase('microsoft-tav-genoa').certs.leaf);
    assert.equal(genoa.product, 'Genoa');
    assert.equal(genoa.stepping, undefined);
    assert.equal(genoa.hwId?.length, 64);
    const milan = parseAmdLeaf(realCase('microsoft-tav-milan').certs.leaf);
    assert.equal(milan.stepping, 'B0');
    assert.deepEqual([...milan.cert.serialNumber], [0]);
    assert.equal(
      milan.cert.extensions.some((e) => e.oid === '2.5.29.35'),
      false,
    );
  });

  it('encodes the leaf TCB per product and names the differing components', () => {
    const turin = parseAmdLeaf(realCase('microsoft-tav-turin').certs.leaf);
    // Turin: b0 fmc=1, b1 bl=1, b2 tee=1, b3 snp=4, b7 ucode=0x51 (expected.json reported_tcb 0x5100000004010101).
    assert.equal(leafTcbRaw(turin, 'Turin'), 0x5100000004010101n);
    assert.deepEqual(tcbMismatches(turin, 0x5100000004010101n, 'Turin'), []);
    assert.deepEqual(tcbMismatches(turin, 0x5100000005010101n, 'Turin'), ['snp']);
    const milan = parseAmdLeaf(realCase('microsoft-tav-milan').certs.leaf);
    assert.equal(leafTcbRaw(milan, 'Milan'), 0xdb18000000000004n);
    assert.deepEqual(tcbMismatches(milan, 0xdb18000000010004n, 'Milan'), ['spl_4']);
    assert.deepEqual(tcbMismatches(milan, 0xdc18000000000003n, 'Milan'), ['bootloader', 'microcode']);
  });

  it('parses every AMD ARK, ASK and ASVK as a CA certificate', () => {
    for (const f of AMD_FILES) {
      const role = f.endsWith('_ark.pem') ? 'root' : 'intermediate';
      const ca = parseAmdCa(amdCert(f), role);
      assert.equal(ca.publicKey.asymmetricKeyDetails?.modulusLength, 4096, f);
      if (role === 'intermediate') assert.equal(ca.ca.pathLen, 0, f);
      else assert.equal(ca.keyUsage?.cRLSign, true, f);
    }
  });
});

describe('AMD certificate shape checks reject', needsVectors, () => {
  const vcek = () => realCase('microsoft-tav-milan').certs.leaf;
  const vlek = () => realCase('constellation-aws-milan-vlek-2024').certs.leaf;
  // DER of the OIDs and values that the edits below change in place (same length, so the DER stays valid).
  const HWID_OID = '06092b060104019c780104';
  const CSPID_OID = '06092b060104019c780105';
  const UNKNOWN_AMD_OID = '06092b060104019c780106';
  /** The subject CN value (UTF8String, 8 bytes): the issuer's longer CN does not match. */
  const cn = (s: string) => `0c08${ascii(s)}`;

  it('a subject that is not SEV-VCEK/SEV-VLEK', () => {
    throwsCode(
      () => parseAmdLeaf(replaceOnce(vcek(), cn('SEV-VCEK'), cn('SEV-XCEK'))),
      ErrorCode.ChainInvalid,
      'snp.cert.subject',
    );
  });

  it('a VCEK without hwID, a VCEK-named VLEK (no hwID), a VLEK-named VCEK (has hwID)', () => {
    // hwID OID .4 -> .6 (an unknown, non-critical AMD extension).
    const noHwId = replaceOnce(vcek(), HWID_OID, UNKNOWN_AMD_OID);
    throwsCode(() => parseAmdLeaf(noHwId), ErrorCode.ChainInvalid, 'snp.cert.hwid');
    throwsCode(
      () => parseAmdLeaf(replaceOnce(vlek(), cn('SEV-VLEK'), cn('SEV-VCEK'))),
      ErrorCode.ChainInvalid,
      'snp.cert.hwid',
    );
    throwsCode(
      () => parseAmdLeaf(replaceOnce(vcek(), cn('SEV-VCEK'), cn('SEV-VLEK'))),
      ErrorCode.ChainInvalid,
      'snp.cert.hwid',
    );
  });

  it('a VLEK without cspID', () => {
    const noCsp = replaceOnce(vlek(), CSPID_OID, UNKNOWN_AMD_OID);
    throwsCode(() => parseAmdLeaf(noCsp), ErrorCode.ChainInvalid, 'snp.cert.cspid');
  });

  it('a leaf lacking blSPL, and an SPL that is not an INTEGER', () => {
    // blSPL 1.3.6.1.4.1.3704.1.3.1 -> .3.10 (unknown).
    const noBl = replaceOnce(vcek(), '060a2b060104019c7801030104', '060a2b060104019c7801030a04');
    throwsCode(() => parseAmdLeaf(noBl), ErrorCode.ChainInvalid, 'snp.cert.tcb');
    // blSPL value INTEGER 4 (020104) -> OCTET STRING.
    const badSpl = replaceOnce(vcek(), '060a2b060104019c78010301040302', '060a2b060104019c78010301040304');
    throwsCode(() => parseAmdLeaf(badSpl), ErrorCode.Malformed, 'snp.cert.extension');
  });

  it('a repeated extension', () => {
    // spl_5 OID -> spl_4: two spl_4 extensions.
    const dup = replaceOnce(vcek(), '060a2b060104019c7801030504', '060a2b060104019c7801030404');
    throwsCode(() => parseAmdLeaf(dup), ErrorCode.Malformed, 'snp.cert.extension_duplicate');
  });

  it('X.509 v2, a non-P-384 key, a salt other than 48', () => {
    throwsCode(
      () => parseAmdLeaf(replaceOnce(vcek(), 'a003020102', 'a003020101')),
      ErrorCode.ChainInvalid,
      'snp.cert.version',
    );
    // secp384r1 -> secp521r1 (1.3.132.0.35).
    throwsCode(
      () => parseAmdLeaf(replaceOnce(vcek(), '06052b81040022', '06052b81040023')),
      ErrorCode.ChainInvalid,
      'snp.cert.public_key',
    );
    // The salt length [2] INTEGER 48 appears in the TBS and the outer algorithm: change the first one.
    const der = Buffer.from(vcek());
    const at = der.indexOf(Buffer.from('a203020130', 'hex'));
    der[at + 4] = 0x20;
    throwsCode(
      () => parseAmdLeaf(new Uint8Array(der)),
      ErrorCode.ChainInvalid,
      'snp.cert.signature_algorithm',
    );
  });

  it('an ASK passed as the leaf and a VCEK passed as a CA', () => {
    throwsCode(() => parseAmdLeaf(amdCert('milan_ask.pem')), ErrorCode.ChainInvalid, 'snp.cert.subject');
    throwsCode(() => parseAmdCa(vcek(), 'intermediate'), ErrorCode.ChainInvalid, 'snp.cert.public_key');
  });

  it('an ASK whose critical BasicConstraints is replaced by an unknown critical extension', () => {
    // 2.5.29.19 -> 2.5.29.63
    const ask = replaceOnce(amdCert('milan_ask.pem'), '0603551d130101ff', '0603551d3f0101ff');
    throwsCode(
      () => parseAmdCa(ask, 'intermediate'),
      ErrorCode.ChainInvalid,
      'snp.cert.unknown_critical_extension',
    );
  });

  it('an ASK with CA:FALSE', () => {
    const ask = replaceOnce(amdCert('milan_ask.pem'), '30060101ff020100', '3006010100020100');
    throwsCode(
      () => parseAmdCa(ask, 'intermediate'),
      ErrorCode.ChainInvalid,
      'snp.chain.intermediate_not_ca',
    );
  });
});

describe('AMD certificate parsing is total on hostile input', needsVectors, () => {
  const der = realCase('microsoft-tav-turin').certs.leaf;

  it('every truncation is MalformedEvidence', () => {
    for (let n = 0; n < der.length; n++) {
      throwsCode(() => parseAmdLeaf(der.subarray(0, n)), ErrorCode.Malformed, /^snp\.cert\./);
    }
  });

  it('trailing bytes, oversize input, BER indefinite length and garbage are MalformedEvidence', () => {
    throwsCode(
      () => parseAmdLeaf(Buffer.concat([der, Uint8Array.of(0)])),
      ErrorCode.Malformed,
      'snp.cert.der',
    );
    const big = new Uint8Array(MAX_CERT_SIZE + 1);
    big[0] = 0x30;
    throwsCode(() => parseAmdLeaf(big), ErrorCode.Malformed, 'snp.cert.size');
    const indefinite = Uint8Array.from(der);
    indefinite[1] = 0x80;
    throwsCode(() => parseAmdLeaf(indefinite), ErrorCode.Malformed, 'snp.cert.der');
    throwsCode(() => parseAmdLeaf(new Uint8Array(0)), ErrorCode.Malformed, 'snp.cert.pem');
    throwsCode(() => parseAmdLeaf('not a certificate'), ErrorCode.Malformed, 'snp.cert.pem');
  });

  it('PEM input must hold exactly one base64 CERTIFICATE block', () => {
    const pem = readVectorText('snp', 'microsoft-tav-turin', 'vcek.pem');
    assert.deepEqual(loadDer(pem), der);
    throwsCode(() => loadDer(pem + pem), ErrorCode.Malformed, 'snp.cert.pem');
    throwsCode(
      () => loadDer(pem.replace(/[A-Za-z0-9]{10}\n/, '!!!!!!!!!!\n')),
      ErrorCode.Malformed,
      'snp.cert.pem',
    );
  });

  it('random byte changes either parse or throw an AttestationError', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(der.length - 1), fc.integer({ min: 1, max: 255 })), {
          minLength: 1,
          maxLength: 4,
        }),
        (flips) => {
          const b = Uint8Array.from(der);
          for (const [i, x] of flips) b[i]! ^= x;
          try {
            parseAmdLeaf(b);
          } catch (e) {
            assert.ok(e instanceof AttestationError, `non-typed error: ${String(e)}`);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('random bytes throw an AttestationError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (b) => {
        for (const parse of [() => parseAmdLeaf(b), () => parseAmdCa(b, 'root')]) {
          try {
            parse();
            assert.fail('random bytes parsed as a certificate');
          } catch (e) {
            assert.ok(e instanceof AttestationError, `non-typed error: ${String(e)}`);
          }
        }
      }),
      { numRuns: 1000 },
    );
  });
});
