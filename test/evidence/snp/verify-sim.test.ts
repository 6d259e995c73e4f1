import assert from 'node:assert/strict';
import { createHash, type KeyObject, randomBytes } from 'node:crypto';
import { before, describe, it } from 'node:test';
import * as pkijs from 'pkijs';
import { AttestationError, ErrorCode } from '../../../src/errors.js';
import { parseCrl } from '../../../src/evidence/snp/crl.js';
import {
  type SnpCerts,
  SnpVerifier,
  type SnpVerifyOptions,
  type TrustedRoot,
  verifySnp,
} from '../../../src/evidence/snp/index.js';
import { parseX509 } from '../../../src/evidence/snp/x509.js';
import { explicit, integer, sequence } from '../../../src/formats/der/writer.js';
import {
  encodeSignerInfo,
  encodeTcb,
  parseReport,
  type ReportFields,
  SigningKey,
  type SnpProduct,
} from '../../../src/formats/snp/index.js';
import {
  basicConstraints,
  crlNumber,
  encodeExtensionList,
} from '../../../src/formats/x509/extension-builders.js';
import type { Extension } from '../../../src/formats/x509/extensions.js';
import { appraiseSnp } from '../../../src/policy/snp/index.js';
import {
  amdCertificate,
  amdKeyUsage,
  amdName,
  amdTime,
  pssAlgorithm,
  signedStructure,
} from '../../../src/sim/snp/amd-certificate-der.js';
import { amdLeafExtensions } from '../../../src/sim/snp/amd-extensions.js';
import {
  createCrl,
  createSimChain,
  type SimChain,
  type SimKeyPair,
  type SimKeys,
  sharedSimChain,
  signReport,
} from '../../../src/sim/snp/index.js';
import { toHex } from '../../../src/util/bytes.js';
import { throwsCode } from '../../helpers/assert-error.js';
import { realCase, resignCert } from './verify-helpers.js';

/**
 * Negatives that need a chain whose private keys we hold: the simulator's (src/sim/snp), whose names are
 * AMD's, so to a verifier that pins AMD's roots it is exactly a forged chain.
 */

type Signer = 'VCEK' | 'VLEK';

function certsOf(chain: SimChain, signer: Signer = 'VCEK'): SnpCerts {
  return signer === 'VCEK'
    ? { leaf: chain.vcek.der, intermediate: chain.ask.der, root: chain.ark.der }
    : { leaf: chain.vlek.der, intermediate: chain.asvk.der, root: chain.ark.der };
}

const trust = (chain: SimChain, product: SnpProduct = chain.product): TrustedRoot[] => [
  { product, sha256: chain.rootSha256 },
];

function report(chain: SimChain, fields: Partial<ReportFields> = {}, signer: Signer = 'VCEK') {
  return parseReport(signReport(fields, chain, { signer }));
}

/** Verification options for `chain` at the chain's own issue time plus a minute. */
function opts(
  chain: SimChain,
  extra: Partial<SnpVerifyOptions> = {},
  signer: Signer = 'VCEK',
): SnpVerifyOptions {
  return { now: NOW, certs: certsOf(chain, signer), trustedRoots: trust(chain), ...extra };
}

const sha256Hex = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

const ISSUED = new Date('2026-06-01T00:00:00Z');
const NOW = new Date('2026-06-01T00:01:00Z');

/** Replaces every occurrence (same length) inside a TBS. */
function replaceAllIn(tbs: Uint8Array, from: string, to: string, which?: number): Uint8Array {
  const f = Buffer.from(from, 'latin1');
  const t = Buffer.from(to, 'latin1');
  const b = Buffer.from(tbs);
  let n = 0;
  for (let i = b.indexOf(f); i >= 0; i = b.indexOf(f, i + 1), n++) {
    if (which === undefined || which === n) t.copy(b, i);
  }
  assert.ok(n > 0, `${from} not found`);
  return new Uint8Array(b);
}

/**
 * The shared simulator chain's key pairs (RSA-4096 keygen is slow), as bare {privateKey, publicKey}: a
 * SimCert passed as a key would carry its old `der` into the new chain (createSimChain spreads the pair
 * after setting `der`).
 */
async function sharedKeys(): Promise<SimKeys> {
  const base = await sharedSimChain('Milan');
  const pair = (c: SimKeyPair): SimKeyPair => ({ privateKey: c.privateKey, publicKey: c.publicKey });
  return {
    ark: pair(base.ark),
    ask: pair(base.ask),
    asvk: pair(base.asvk),
    vcek: pair(base.vcek),
    vlek: pair(base.vlek),
  };
}

let milan: SimChain;
let genoa: SimChain;
let turin: SimChain;
/** Same names, serials and chip as `milan`, but another ARK key: a forgery with identical names. */
let twin: SimChain;

async function setup(): Promise<void> {
  const keys = await sharedKeys();
  milan = await createSimChain({ product: 'Milan', now: ISSUED, keys });
  genoa = await createSimChain({ product: 'Genoa', now: ISSUED, keys });
  turin = await createSimChain({ product: 'Turin', now: ISSUED, keys });
  twin = await createSimChain({
    product: 'Milan',
    now: ISSUED,
    chipId: milan.chipId,
    keys: { ...keys, ark: keys.ask, ask: keys.ark },
  });
}

let ready: Promise<void> | undefined;
// A top-level before() runs once per suite; the chains are built once.
before(() => {
  ready ??= setup();
  return ready;
});

describe('simulator chains: configured roots', () => {
  for (const p of ['Milan', 'Genoa', 'Turin'] as const) {
    for (const signer of ['VCEK', 'VLEK'] as const) {
      it(`${p} ${signer}: verifies when, and only when, its root is configured for ${p}`, () => {
        const chain = { Milan: () => milan, Genoa: () => genoa, Turin: () => turin }[p]();
        const r = report(chain, {}, signer);
        const v = verifySnp(r, opts(chain, {}, signer));
        assert.equal(v.product, p);
        assert.equal(v.signer, signer);
        assert.equal(v.rootTrust, 'configured');
        assert.equal(v.rootSha256, chain.rootSha256);
        assert.equal(v.chipIdChecked, signer === 'VCEK');
        throwsCode(
          () => verifySnp(r, opts(chain, { trustedRoots: undefined }, signer)),
          ErrorCode.ChainInvalid,
          'snp.chain.root_untrusted',
        );
        const other: SnpProduct = p === 'Milan' ? 'Genoa' : 'Milan';
        throwsCode(
          () => verifySnp(r, opts(chain, { trustedRoots: trust(chain, other) }, signer)),
          ErrorCode.ChainInvalid,
          'snp.chain.root_untrusted',
        );
      });
    }
  }

  it('a warm verifier re-checks the configured roots on every call', () => {
    const v = new SnpVerifier();
    const r = report(milan);
    v.verify(r, opts(milan));
    assert.equal(v.size, 1);
    throwsCode(
      () => v.verify(r, opts(milan, { trustedRoots: [] })),
      ErrorCode.ChainInvalid,
      'snp.chain.root_untrusted',
    );
    throwsCode(
      () => v.verify(r, opts(milan, { trustedRoots: trust(twin) })),
      ErrorCode.ChainInvalid,
      'snp.chain.root_untrusted',
    );
    v.verify(report(milan), opts(milan));
    assert.equal(v.size, 1);
  });

  it('the cache is bounded', () => {
    const v = new SnpVerifier({ maxEntries: 1 });
    v.verify(report(milan), opts(milan));
    v.verify(report(genoa), opts(genoa));
    assert.equal(v.size, 1);
    v.verify(report(milan), opts(milan));
    assert.equal(v.size, 1);
  });
});

describe('forged chains (go-sev-guest #185 and variants)', () => {
  it('a self-made ARK with AMD names is not trusted, whatever product information is given', () => {
    const r = report(milan);
    for (const product of [undefined, 'Milan'] as const) {
      throwsCode(
        () => verifySnp(r, { now: NOW, certs: certsOf(milan), ...(product ? { product } : {}) }),
        ErrorCode.ChainInvalid,
        'snp.chain.root_untrusted',
      );
    }
  });

  it("a forged VCEK under AMD's real Milan ASK and ARK fails the leaf signature", () => {
    const real = realCase('microsoft-tav-milan');
    const r = report(milan);
    throwsCode(
      () => verifySnp(r, { now: NOW, certs: { ...real.certs, leaf: milan.vcek.der } }),
      ErrorCode.SignatureInvalid,
      'snp.chain.leaf_signature',
    );
  });

  it("a forged ASK under AMD's real Milan ARK fails the intermediate signature", () => {
    const real = realCase('microsoft-tav-milan');
    throwsCode(
      () => verifySnp(report(milan), { now: NOW, certs: { ...certsOf(milan), root: real.certs.root } }),
      ErrorCode.SignatureInvalid,
      'snp.chain.intermediate_signature',
    );
  });

  it('a twin ASK (same names, other ARK) under a configured root fails the intermediate signature', () => {
    throwsCode(
      () =>
        verifySnp(report(milan), opts(milan, { certs: { ...certsOf(milan), intermediate: twin.ask.der } })),
      ErrorCode.SignatureInvalid,
      'snp.chain.intermediate_signature',
    );
  });

  it('a leaf signed by another intermediate fails the leaf signature', () => {
    const forged = resignCert(milan.vcek.der, milan.asvk.privateKey, (tbs) => tbs);
    throwsCode(
      () => verifySnp(report(milan), opts(milan, { certs: { ...certsOf(milan), leaf: forged } })),
      ErrorCode.SignatureInvalid,
      'snp.chain.leaf_signature',
    );
  });

  it('a configured root whose self-signature is broken is rejected', () => {
    const ark = Uint8Array.from(milan.ark.der);
    ark[ark.length - 1]! ^= 1; // last byte of the signature
    const sha = sha256Hex(ark);
    throwsCode(
      () =>
        verifySnp(report(milan), {
          now: NOW,
          certs: { ...certsOf(milan), root: ark },
          trustedRoots: [{ product: 'Milan', sha256: sha }],
        }),
      ErrorCode.SignatureInvalid,
      'snp.chain.root_signature',
    );
  });

  it('a configured root that is not a self-issued ARK-{product} is rejected', () => {
    const verifyWithRoot = (root: Uint8Array) => () =>
      verifySnp(report(milan), {
        now: NOW,
        certs: { ...certsOf(milan), root },
        trustedRoots: [{ product: 'Milan', sha256: sha256Hex(root) }],
      });
    const renamed = resignCert(milan.ark.der, milan.ark.privateKey, (t) =>
      replaceAllIn(t, 'ARK-Milan', 'ARK-Milax'),
    );
    throwsCode(verifyWithRoot(renamed), ErrorCode.ChainInvalid, 'snp.chain.root_name');
    const notSelfIssued = resignCert(milan.ark.der, milan.ark.privateKey, (t) =>
      replaceAllIn(t, 'ARK-Milan', 'ARK-Milax', 0),
    );
    throwsCode(verifyWithRoot(notSelfIssued), ErrorCode.ChainInvalid, 'snp.chain.root_name');
  });

  it('an intermediate whose issuer name is not the root fails', () => {
    const ask = resignCert(milan.ask.der, milan.ark.privateKey, (t) =>
      replaceAllIn(t, 'ARK-Milan', 'ARK-Milax'),
    );
    throwsCode(
      () => verifySnp(report(milan), opts(milan, { certs: { ...certsOf(milan), intermediate: ask } })),
      ErrorCode.ChainInvalid,
      'snp.chain.intermediate_issuer',
    );
  });

  it('an intermediate with CA:FALSE, validly signed, is rejected', () => {
    const ask = resignCert(milan.ask.der, milan.ark.privateKey, (t) =>
      replaceAllIn(t, '\x30\x06\x01\x01\xff\x02\x01\x00', '\x30\x06\x01\x01\x00\x02\x01\x00'),
    );
    throwsCode(
      () => verifySnp(report(milan), opts(milan, { certs: { ...certsOf(milan), intermediate: ask } })),
      ErrorCode.ChainInvalid,
      'snp.chain.intermediate_not_ca',
    );
  });
});

describe('binding checks', () => {
  it('REPORTED_TCB that differs from the VCEK TCB in any component is a BindingMismatch', () => {
    for (const [chain, parts] of [
      [milan, { ...milan.tcb, snp: milan.tcb.snp + 1 }],
      [milan, { ...milan.tcb, microcode: milan.tcb.microcode - 1 }],
      [genoa, { ...genoa.tcb, bootloader: genoa.tcb.bootloader + 1 }],
      [turin, { ...turin.tcb, fmc: (turin.tcb.fmc ?? 0) + 1 }],
      [turin, { ...turin.tcb, tee: turin.tcb.tee + 1 }],
    ] as const) {
      const r = report(chain, { reportedTcb: encodeTcb(parts, chain.product) });
      throwsCode(() => verifySnp(r, opts(chain)), ErrorCode.BindingMismatch, 'snp.reported_tcb_mismatch');
    }
    // Milan's reserved bytes are the VCEK's spl_4..spl_7 (all 0): a non-zero byte 2 is a mismatch too.
    const r = report(milan, { reportedTcb: encodeTcb(milan.tcb, 'Milan') | (1n << 16n) });
    throwsCode(() => verifySnp(r, opts(milan)), ErrorCode.BindingMismatch, 'snp.reported_tcb_mismatch');
    // The same report signed by a VLEK of the same TCB shows the check applies to VLEKs as well.
    const rv = report(milan, { reportedTcb: encodeTcb({ ...milan.tcb, snp: 1 }, 'Milan') }, 'VLEK');
    throwsCode(
      () => verifySnp(rv, opts(milan, {}, 'VLEK')),
      ErrorCode.BindingMismatch,
      'snp.reported_tcb_mismatch',
    );
  });

  // Differential finding against go-sev-guest (validate: "cert TCB <= CURRENT_TCB"): a report whose
  // CURRENT_TCB = COMMITTED_TCB is one step below REPORTED_TCB (= the VCEK's TCB) in a single component used to
  // verify, and the default policy accepted it.
  it('a VCEK/VLEK TCB (= REPORTED_TCB) above CURRENT_TCB in any one component is a BindingMismatch', () => {
    const cases = [
      [milan, 'bootloader'],
      [milan, 'snp'],
      [milan, 'microcode'],
      [genoa, 'bootloader'],
      [genoa, 'microcode'],
      [turin, 'fmc'],
      [turin, 'bootloader'],
      [turin, 'tee'],
      [turin, 'snp'],
      [turin, 'microcode'],
    ] as const;
    for (const [chain, component] of cases) {
      for (const signer of ['VCEK', 'VLEK'] as const) {
        const step = (chain.tcb[component] ?? 0) - 1;
        assert.ok(step >= 0, `${chain.product} ${component} must be > 0 in the sim TCB`);
        const below = { ...chain.tcb, [component]: step };
        const lower = encodeTcb(below, chain.product);
        const r = report(chain, { currentTcb: lower, committedTcb: lower, launchTcb: lower }, signer);
        assert.equal(r.reportedTcb, encodeTcb(chain.tcb, chain.product));
        assert.throws(
          () => verifySnp(r, opts(chain, {}, signer)),
          (e: unknown) => {
            assert.ok(e instanceof AttestationError);
            assert.equal(e.code, ErrorCode.BindingMismatch, `${chain.product} ${component} ${signer}`);
            assert.equal(e.reason, 'snp.reported_tcb_above_current');
            // The message names the component, the expected bound and the actual TCB.
            assert.match(e.message, new RegExp(`in: ${component};`));
            assert.match(e.message, new RegExp(`expected <= .*${component}=${step}`));
            assert.match(e.message, new RegExp(`actual .*${component}=${chain.tcb[component]}`));
            return true;
          },
        );
        // Without the check, appraisal alone accepts it: it sees no certificate and COMMITTED == CURRENT.
        assert.deepEqual(appraiseSnp(r, chain.product, {}).failures, []);
      }
    }
  });

  it('CURRENT_TCB above REPORTED_TCB (a lowered REPORTED_TCB during a rollout) verifies', () => {
    for (const chain of [milan, genoa, turin]) {
      for (const component of ['bootloader', 'tee', 'snp', 'microcode'] as const) {
        const above = encodeTcb({ ...chain.tcb, [component]: chain.tcb[component] + 1 }, chain.product);
        const r = report(chain, { currentTcb: above, committedTcb: above });
        assert.equal(verifySnp(r, opts(chain)).product, chain.product);
      }
    }
    // CURRENT_TCB's reserved bytes have no order and are not compared with the certificate's TCB.
    const reserved = encodeTcb(milan.tcb, 'Milan') | (1n << 16n);
    assert.equal(verifySnp(report(milan, { currentTcb: reserved }), opts(milan)).product, 'Milan');
  });

  it('CHIP_ID that is not the VCEK hwID is a BindingMismatch; all-zero CHIP_ID is skipped and said so', () => {
    const other = new Uint8Array(randomBytes(64));
    throwsCode(
      () => verifySnp(report(milan, { chipId: other }), opts(milan)),
      ErrorCode.BindingMismatch,
      'snp.chip_id_mismatch',
    );
    const masked = verifySnp(report(milan, { chipId: new Uint8Array(64) }), opts(milan));
    assert.equal(masked.chipIdChecked, false);
    assert.equal(verifySnp(report(milan), opts(milan)).chipIdChecked, true);
  });

  it('Turin compares the 8-byte hwID with CHIP_ID[0:8]', () => {
    const chip = Uint8Array.from(turin.chipId);
    chip[7]! ^= 1;
    throwsCode(
      () => verifySnp(report(turin, { chipId: chip }), opts(turin)),
      ErrorCode.BindingMismatch,
      'snp.chip_id_mismatch',
    );
    const v = verifySnp(report(turin), opts(turin));
    assert.equal(v.chipIdChecked, true);
    assert.equal(v.leaf.hwId?.length, 8);
  });

  it('product: CPUID must name a known product that agrees with the leaf and options', () => {
    throwsCode(
      () => verifySnp(report(milan, { cpuid: { family: 0x19, model: 0x11, stepping: 1 } }), opts(milan)),
      ErrorCode.BindingMismatch,
      'snp.product_mismatch',
    );
    throwsCode(
      () => verifySnp(report(milan, { cpuid: { family: 0x17, model: 0x31, stepping: 0 } }), opts(milan)),
      ErrorCode.NotSupported,
      'snp.product_unknown',
    );
    throwsCode(
      () => verifySnp(report(milan), opts(milan, { product: 'Genoa' })),
      ErrorCode.BindingMismatch,
      'snp.product_mismatch',
    );
  });

  it('v2 reports (no CPUID) take the product from the leaf productName', () => {
    const v2 = report(genoa, { version: 2, cpuid: undefined });
    assert.equal(v2.cpuid, undefined);
    assert.equal(verifySnp(v2, opts(genoa)).product, 'Genoa');
    throwsCode(
      () => verifySnp(v2, opts(genoa, { product: 'Milan' })),
      ErrorCode.BindingMismatch,
      'snp.product_mismatch',
    );
  });

  it('a Turin chain whose VCEK carries a 64-byte hwID is rejected', () => {
    // A Milan-shaped VCEK renamed for Turin and signed by the Turin ASK (the chains share keys).
    const vcek = resignCert(milan.vcek.der, turin.ask.privateKey, (t) =>
      replaceAllIn(replaceAllIn(t, 'Milan-B0', 'Turin-B0'), 'SEV-Milan', 'SEV-Turin'),
    );
    throwsCode(
      () => verifySnp(report(turin), opts(turin, { certs: { ...certsOf(turin), leaf: vcek } })),
      ErrorCode.ChainInvalid,
      'snp.cert.hwid',
    );
  });

  it('a VCEK that also carries a cspID is rejected', () => {
    // spl_7 (INTEGER 0) -> cspID "AB": both extensions are 19 bytes, so only the TBS contents change.
    const spl7 = '\x30\x11\x06\x0a\x2b\x06\x01\x04\x01\x9c\x78\x01\x03\x07\x04\x03\x02\x01\x00';
    const csp = `\x30\x11\x06\x09\x2b\x06\x01\x04\x01\x9c\x78\x01\x05\x04\x04\x16\x02${'AB'}`;
    const vcek = resignCert(milan.vcek.der, milan.ask.privateKey, (t) => replaceAllIn(t, spl7, csp));
    throwsCode(
      () => verifySnp(report(milan), opts(milan, { certs: { ...certsOf(milan), leaf: vcek } })),
      ErrorCode.ChainInvalid,
      'snp.cert.cspid',
    );
  });
});

describe('report signature and signer info on simulator reports', () => {
  it('a report signed by a key the leaf does not certify fails', () => {
    const r = parseReport(signReport({}, milan, { key: milan.vlek.privateKey }));
    throwsCode(() => verifySnp(r, opts(milan)), ErrorCode.SignatureInvalid, 'snp.signature');
  });

  it('MASK_CHIP_KEY reports (zero signature) are refused', () => {
    const r = parseReport(
      signReport(
        { signerInfo: encodeSignerInfo({ maskChipKey: true, signingKey: SigningKey.VCEK }) },
        milan,
        { zeroSignature: true },
      ),
    );
    throwsCode(() => verifySnp(r, opts(milan)), ErrorCode.SignatureInvalid, 'snp.mask_chip_key');
  });

  it('a validly signed report with SIGNATURE_ALGO 0 is refused', () => {
    throwsCode(
      () => verifySnp(report(milan, { signatureAlgo: 0 }), opts(milan)),
      ErrorCode.SignatureInvalid,
      'snp.signature_algo',
    );
  });

  it('R or S wider than 384 bits is refused', () => {
    const bytes = signReport({}, milan);
    bytes[0x2a0 + 48] = 1;
    throwsCode(
      () => verifySnp(parseReport(bytes), opts(milan)),
      ErrorCode.SignatureInvalid,
      'snp.signature_format',
    );
  });
});

describe('validity at `now`', () => {
  it('an expired VCEK fails, also after the chain was cached while valid', async () => {
    const keys = await sharedKeys();
    const notAfter = new Date('2026-07-01T00:00:00Z');
    const short = await createSimChain({ now: ISSUED, vcekNotAfter: notAfter, keys });
    const v = new SnpVerifier();
    const r = report(short);
    v.verify(r, opts(short));
    throwsCode(
      () => v.verify(r, opts(short, { now: new Date(notAfter.getTime() + 1000) })),
      ErrorCode.ChainInvalid,
      'snp.chain.leaf_expired',
    );
    throwsCode(
      () => v.verify(r, opts(short, { now: new Date(ISSUED.getTime() - 1000) })),
      ErrorCode.ChainInvalid,
      'snp.chain.root_not_yet_valid',
    );
  });
});

describe('CRL checks', () => {
  it('a CRL revoking the ASK (or the ASVK) rejects the chain; one revoking others is checked and passes', async () => {
    const askSerial = BigInt(`0x${toHex(parseX509(milan.ask.der).serialNumber)}`);
    const asvkSerial = BigInt(`0x${toHex(parseX509(milan.asvk.der).serialNumber)}`);
    const revokesAsk = await createCrl(milan, { revokedSerials: [7n, askSerial], thisUpdate: ISSUED });
    throwsCode(
      () => verifySnp(report(milan), opts(milan, { crl: revokesAsk })),
      ErrorCode.ChainInvalid,
      'snp.intermediate_revoked',
    );
    const revokesAsvk = await createCrl(milan, {
      revokedSerials: [asvkSerial],
      thisUpdate: ISSUED,
      kind: 'vlek',
    });
    throwsCode(
      () => verifySnp(report(milan, {}, 'VLEK'), opts(milan, { crl: revokesAsvk }, 'VLEK')),
      ErrorCode.ChainInvalid,
      'snp.intermediate_revoked',
    );
    // The VCEK chain is not affected by the ASVK's revocation.
    assert.equal(verifySnp(report(milan), opts(milan, { crl: revokesAsvk })).crlChecked, true);
    const empty = await createCrl(milan, { revokedSerials: [], thisUpdate: ISSUED });
    assert.equal(verifySnp(report(milan), opts(milan, { crl: empty })).crlChecked, true);
    assert.equal(verifySnp(report(milan), opts(milan)).crlChecked, false);
  });

  it('our CRL parse agrees with pkijs on the revoked serials', async () => {
    const crl = await createCrl(milan, {
      revokedSerials: [1n, 0x10001n, 0xff00n, 2n ** 70n],
      thisUpdate: ISSUED,
    });
    const ours = [...parseCrl(crl).revokedSerials].sort();
    const theirs = pkijs.CertificateRevocationList.fromBER(crl)
      .revokedCertificates!.map((e) => toHex(e.userCertificate.valueBlock.valueHexView))
      .sort();
    assert.deepEqual(ours, theirs);
  });

  it('a CRL signed by another key, or issued by another name, is rejected', async () => {
    const byTwin = await createCrl(twin, { revokedSerials: [], thisUpdate: ISSUED });
    throwsCode(
      () => verifySnp(report(milan), opts(milan, { crl: byTwin })),
      ErrorCode.SignatureInvalid,
      'snp.crl.signature',
    );
    // Genoa's chain shares milan's ARK key: a valid signature under the wrong issuer name.
    const genoaName = await createCrl(genoa, { revokedSerials: [], thisUpdate: ISSUED });
    throwsCode(
      () => verifySnp(report(milan), opts(milan, { crl: genoaName })),
      ErrorCode.ChainInvalid,
      'snp.crl.issuer',
    );
  });

  it('a CRL past nextUpdate or before thisUpdate is rejected, also when cached', async () => {
    const crl = await createCrl(milan, {
      revokedSerials: [],
      thisUpdate: ISSUED,
      nextUpdate: new Date(ISSUED.getTime() + 3600_000),
    });
    const v = new SnpVerifier();
    const r = report(milan);
    assert.equal(v.verify(r, opts(milan, { crl })).crlChecked, true);
    throwsCode(
      () => v.verify(r, opts(milan, { crl, now: new Date(ISSUED.getTime() + 7200_000) })),
      ErrorCode.ChainInvalid,
      'snp.crl.expired',
    );
    const future = await createCrl(milan, {
      revokedSerials: [],
      thisUpdate: new Date(NOW.getTime() + 60_000),
    });
    throwsCode(
      () => v.verify(r, opts(milan, { crl: future })),
      ErrorCode.ChainInvalid,
      'snp.crl.not_yet_valid',
    );
  });

  it('truncated or garbage CRLs are MalformedEvidence', async () => {
    const crl = await createCrl(milan, { revokedSerials: [5n], thisUpdate: ISSUED });
    for (let n = 1; n < crl.length; n += 7) {
      throwsCode(
        () => verifySnp(report(milan), opts(milan, { crl: crl.subarray(0, n) })),
        ErrorCode.Malformed,
        /^snp\.crl\./,
      );
    }
    throwsCode(
      () => verifySnp(report(milan), opts(milan, { crl: new Uint8Array(0) })),
      ErrorCode.Malformed,
      'snp.crl.pem',
    );
    // A certificate is not a CRL.
    throwsCode(
      () => verifySnp(report(milan), opts(milan, { crl: milan.ark.der })),
      ErrorCode.Malformed,
      'snp.crl.der',
    );
  });
});

describe('what the verifier reads', () => {
  it('the signed bytes, not fields edited into the parsed struct', () => {
    const r = report(milan);
    const edited = { ...r, chipId: new Uint8Array(64), signatureAlgo: 0, reportedTcb: 0n };
    const v = verifySnp(edited, opts(milan));
    assert.equal(v.chipIdChecked, true);
    assert.deepEqual(v.report.chipId, milan.chipId);
    assert.equal(v.report.signatureAlgo, 1);
    const forgedRaw = {
      ...r,
      raw: signReport({ chipId: new Uint8Array(64) }, milan, { key: milan.vlek.privateKey }),
    };
    throwsCode(() => verifySnp(forgedRaw, opts(milan)), ErrorCode.SignatureInvalid, 'snp.signature');
    throwsCode(() => verifySnp({} as never, opts(milan)), ErrorCode.InvalidArgument, 'snp.options.report');
    throwsCode(
      () => verifySnp({ ...r, raw: r.raw.subarray(0, 100) }, opts(milan)),
      ErrorCode.Malformed,
      'snp.report.size',
    );
  });

  it('an all-zero CPUID in a v3 report names no product: the leaf decides', () => {
    const r = report(genoa, { cpuid: { family: 0, model: 0, stepping: 0 } });
    assert.equal(verifySnp(r, opts(genoa)).product, 'Genoa');
  });

  it('without CPUID and with an unknown productName, options.product is required', () => {
    const vcek = resignCert(milan.vcek.der, milan.ask.privateKey, (t) =>
      replaceAllIn(t, 'Milan-B0', 'Mxlan-B0'),
    );
    const certs = { ...certsOf(milan), leaf: vcek };
    const v2 = report(milan, { version: 2, cpuid: undefined });
    throwsCode(
      () => verifySnp(v2, opts(milan, { certs })),
      ErrorCode.InvalidArgument,
      'snp.product_required',
    );
    const v = verifySnp(v2, opts(milan, { certs, product: 'Milan' }));
    assert.equal(v.product, 'Milan');
    assert.equal(v.leaf.productName, 'Mxlan-B0');
    throwsCode(
      () => verifySnp(v2, opts(milan, { certs, product: 'Venice' as never })),
      ErrorCode.InvalidArgument,
      'snp.options.product',
    );
  });
});

/** A certificate shaped like the simulator's (AMD names, PSS SHA-384) with the extensions a test chooses. */
function buildCert(c: {
  serial: number;
  issuerCn: string;
  subjectCn: string;
  subjectKey: KeyObject;
  issuerKey: KeyObject;
  extensions: Extension[];
}): Uint8Array {
  return amdCertificate({
    ...c,
    notBefore: ISSUED,
    notAfter: new Date('2050-06-01T00:00:00Z'),
    explicitTrailer: true,
  });
}

/** A CRL by milan's ARK key with chosen extensions (and optionally one entry with extensions). */
function buildCrl(extensions: Extension[], entryExtensions?: Extension[]): Uint8Array {
  const alg = pssAlgorithm(true);
  const fields: Uint8Array[] = [
    integer(1),
    alg,
    amdName('ARK-Milan'),
    amdTime(ISSUED),
    amdTime(new Date(ISSUED.getTime() + 7 * 86400_000)),
  ];
  if (entryExtensions) {
    fields.push(sequence(sequence(integer(99), amdTime(ISSUED), encodeExtensionList(entryExtensions))));
  }
  fields.push(explicit(0, encodeExtensionList(extensions)));
  return signedStructure(sequence(...fields), alg, milan.ark.privateKey);
}

const NULL_DER = Uint8Array.of(0x05, 0x00);
/** A critical extension no verifier here knows, with a NULL value. */
const unknownCritical = (oid: string): Extension => ({ oid, critical: true, value: NULL_DER });

describe('certificate constraints on validly signed, configured chains', () => {
  const ark = (extensions: Extension[]) =>
    buildCert({
      serial: 0x10000,
      issuerCn: 'ARK-Milan',
      subjectCn: 'ARK-Milan',
      subjectKey: milan.ark.publicKey,
      issuerKey: milan.ark.privateKey,
      extensions,
    });
  const withRoot =
    (root: Uint8Array, extra: Partial<SnpVerifyOptions> = {}) =>
    () =>
      verifySnp(report(milan), {
        now: NOW,
        certs: { ...certsOf(milan), root },
        trustedRoots: [{ product: 'Milan', sha256: sha256Hex(root) }],
        ...extra,
      });
  const ku = amdKeyUsage;
  const bc = (pathLen?: number) => basicConstraints(true, pathLen);

  it('the rebuilt ARK verifies: the negatives below differ from it in one property', () => {
    assert.equal(withRoot(ark([ku({ keyCertSign: true, cRLSign: true }), bc()]))().rootTrust, 'configured');
  });

  it('a root whose pathLenConstraint is 0 cannot certify the ASK', () => {
    throwsCode(
      withRoot(ark([ku({ keyCertSign: true, cRLSign: true }), bc(0)])),
      ErrorCode.ChainInvalid,
      'snp.chain.path_length',
    );
  });

  it('a root without BasicConstraints CA is not a CA', () => {
    throwsCode(
      withRoot(ark([ku({ keyCertSign: true, cRLSign: true })])),
      ErrorCode.ChainInvalid,
      'snp.chain.root_not_ca',
    );
  });

  it('a root whose KeyUsage lacks keyCertSign is rejected', () => {
    throwsCode(withRoot(ark([ku({ cRLSign: true }), bc()])), ErrorCode.ChainInvalid, 'snp.chain.key_usage');
  });

  it('a root whose KeyUsage lacks cRLSign cannot vouch for a CRL', async () => {
    const root = ark([ku({ keyCertSign: true }), bc()]);
    assert.equal(withRoot(root)().crlChecked, false);
    const crl = await createCrl(milan, { revokedSerials: [], thisUpdate: ISSUED });
    throwsCode(withRoot(root, { crl }), ErrorCode.ChainInvalid, 'snp.crl.key_usage');
  });

  it('a leaf that is a CA, or has an unknown critical extension, is rejected', () => {
    const leaf = (extra: Extension[]) =>
      buildCert({
        serial: 0,
        issuerCn: 'SEV-Milan',
        subjectCn: 'SEV-VCEK',
        subjectKey: milan.vcek.publicKey,
        issuerKey: milan.ask.privateKey,
        extensions: [
          ...amdLeafExtensions('Milan', milan.tcb, { kind: 'VCEK', chipId: milan.chipId }),
          ...extra,
        ],
      });
    const run = (l: Uint8Array) => () =>
      verifySnp(report(milan), opts(milan, { certs: { ...certsOf(milan), leaf: l } }));
    assert.equal(run(leaf([]))().signer, 'VCEK');
    throwsCode(run(leaf([bc()])), ErrorCode.ChainInvalid, 'snp.cert.leaf_is_ca');
    throwsCode(
      run(leaf([unknownCritical('1.2.3.4.5')])),
      ErrorCode.ChainInvalid,
      'snp.cert.unknown_critical_extension',
    );
    // A leaf issued under another name than the intermediate's, though signed by its key.
    const misnamed = buildCert({
      serial: 0,
      issuerCn: 'SEV-Milax',
      subjectCn: 'SEV-VCEK',
      subjectKey: milan.vcek.publicKey,
      issuerKey: milan.ask.privateKey,
      extensions: amdLeafExtensions('Milan', milan.tcb, { kind: 'VCEK', chipId: milan.chipId }),
    });
    throwsCode(run(misnamed), ErrorCode.ChainInvalid, 'snp.chain.leaf_issuer');
  });

  it('CRLs with unknown critical extensions, or another signature algorithm, are not used', () => {
    const run = (crl: Uint8Array) => () => verifySnp(report(milan), opts(milan, { crl }));
    const number = crlNumber(3);
    assert.equal(run(buildCrl([number]))().crlChecked, true);
    throwsCode(
      run(buildCrl([number, unknownCritical('2.5.29.28')])),
      ErrorCode.ChainInvalid,
      'snp.crl.unknown_critical_extension',
    );
    throwsCode(
      run(buildCrl([number], [unknownCritical('1.2.3.4.5')])),
      ErrorCode.ChainInvalid,
      'snp.crl.unknown_critical_extension',
    );
    // Salt 32 declared in both algorithm fields (and signed with salt 48, which is beside the point).
    const salt = (b: Uint8Array) => replaceAllIn(b, '\xa2\x03\x02\x01\x30', '\xa2\x03\x02\x01\x20');
    const crl = resignCert(buildCrl([number]), milan.ark.privateKey, salt, salt);
    throwsCode(run(crl), ErrorCode.ChainInvalid, 'snp.crl.signature_algorithm');
  });
});

describe('cache admission', () => {
  it('only chains that verified are cached, and the cache is bounded', () => {
    const v = new SnpVerifier({ maxEntries: 2 });
    throwsCode(
      () => v.verify(report(milan), opts(milan, { trustedRoots: [] })),
      ErrorCode.ChainInvalid,
      'snp.chain.root_untrusted',
    );
    throwsCode(
      () =>
        v.verify(report(milan), opts(milan, { certs: { ...certsOf(milan), intermediate: twin.ask.der } })),
      ErrorCode.SignatureInvalid,
      'snp.chain.intermediate_signature',
    );
    assert.equal(v.size, 0);
    v.verify(report(milan), opts(milan));
    v.verify(report(genoa), opts(genoa));
    v.verify(report(milan), opts(milan)); // milan is now the most recently used
    v.verify(report(turin), opts(turin)); // evicts genoa
    assert.equal(v.size, 2);
    v.clear();
    assert.equal(v.size, 0);
  });
});
