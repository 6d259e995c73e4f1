import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  createTrustStore,
  type PcrBank,
  type TrustStore,
  verifyQuote,
} from '../../../src/evidence/tpm/index.js';
import {
  computeName,
  encodeCredentialFile,
  encodePublic,
  HASH_ALGS,
  hashByName,
  makeCredential,
  type ParsedPublic,
  parseTpm2bPublic,
  publicToKeyObject,
  TPM_ALG,
  TPMA_OBJECT,
} from '../../../src/formats/tpm/index.js';
import { toHex } from '../../../src/util/bytes.js';
import { requireSwtpm, type Swtpm, startSwtpm } from '../../helpers/swtpm.js';
import { issueCa, issueLeaf, makeRoot, T0, type TestCa } from './test-ca.js';

/**
 * End-to-end against a real TPM 2.0 implementation (swtpm/libtpms driven by tpm2-tools): credentials made
 * by our software MakeCredential must be opened by TPM2_ActivateCredential, our Names must equal the
 * TPM's, and quotes the TPM signs must pass verifyQuote. Needs the Debian packages swtpm swtpm-tools
 * tpm2-tools; without them every test here fails saying so.
 */

let started: Promise<Swtpm> | undefined;
function tpm(): Promise<Swtpm> {
  requireSwtpm();
  started ??= startSwtpm();
  return started;
}
after(async () => {
  if (started) await (await started).stop();
});

const read = (t: Swtpm, f: string) => new Uint8Array(readFileSync(join(t.dir, f)));

/** Runs a tool, then flushes transient objects: saved contexts reload on demand, slots do not (0x902). */
function run(t: Swtpm, name: string, args: readonly string[]): void {
  t.tool(name, args);
  t.tool('tpm2_flushcontext', ['-t']);
}

/** ActivateCredential of our blob; returns what the TPM decrypted. */
function activate(t: Swtpm, akCtx: string, ekCtx: string, file: Uint8Array, lowRange: boolean): Uint8Array {
  writeFileSync(join(t.dir, 'cred.out'), file);
  t.tool('tpm2_flushcontext', ['-t']);
  if (lowRange) {
    // Low-range EKs carry PolicySecret(TPM_RH_ENDORSEMENT) (TCG EK profile §B.3.3).
    t.tool('tpm2_startauthsession', ['--policy-session', '-S', 's.ctx']);
    t.tool('tpm2_policysecret', ['-S', 's.ctx', '-c', 'e']);
    try {
      t.tool('tpm2_activatecredential', [
        '-c',
        akCtx,
        '-C',
        ekCtx,
        '-i',
        'cred.out',
        '-o',
        'out.bin',
        '-P',
        'session:s.ctx',
      ]);
    } finally {
      t.tool('tpm2_flushcontext', ['s.ctx']);
    }
  } else {
    t.tool('tpm2_activatecredential', ['-c', akCtx, '-C', ekCtx, '-i', 'cred.out', '-o', 'out.bin']);
  }
  return read(t, 'out.bin');
}

function checkName(t: Swtpm, pubFile: string, nameFile: string): ParsedPublic {
  const pub = parseTpm2bPublic(read(t, pubFile));
  assert.equal(toHex(computeName(pub)), toHex(read(t, nameFile)), 'our Name equals the TPM-reported Name');
  return pub;
}

describe('swtpm availability check', () => {
  it('names the Debian packages when the tools are missing', () => {
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      assert.throws(() => requireSwtpm(), /install the Debian packages swtpm swtpm-tools tpm2-tools/);
    } finally {
      process.env.PATH = path;
    }
  });
});

describe('swtpm: software MakeCredential → TPM2_ActivateCredential', () => {
  it('RSA-2048 low-range EK (tpm2_createek) with an ECC P-256 AK', async () => {
    const t = await tpm();
    t.tool('tpm2_flushcontext', ['-t']);
    run(t, 'tpm2_createek', ['-c', 'ek-rsa.ctx', '-G', 'rsa', '-u', 'ek-rsa.pub']);
    run(t, 'tpm2_createak', [
      '-C',
      'ek-rsa.ctx',
      '-c',
      'ak1.ctx',
      '-G',
      'ecc',
      '-g',
      'sha256',
      '-s',
      'ecdsa',
      '-u',
      'ak1.pub',
      '-n',
      'ak1.name',
      '-r',
      'ak1.priv',
    ]);
    const ek = parseTpm2bPublic(read(t, 'ek-rsa.pub'));
    assert.equal(ek.type, TPM_ALG.RSA);
    assert.equal(ek.objectAttributes, 0x000300b2);
    checkName(t, 'ak1.pub', 'ak1.name');
    const credential = new Uint8Array(randomBytes(32));
    const file = encodeCredentialFile(
      makeCredential({ ekPublic: ek, akName: read(t, 'ak1.name'), credential }),
    );
    assert.equal(file.length, 336);
    assert.equal(toHex(activate(t, 'ak1.ctx', 'ek-rsa.ctx', file, true)), toHex(credential));

    // Bound to the Name: a credential for another Name is refused by the TPM (TPM_RC_INTEGRITY).
    const other = Uint8Array.from(read(t, 'ak1.name'));
    other[5]! ^= 1;
    const wrong = encodeCredentialFile(makeCredential({ ekPublic: ek, akName: other, credential }));
    assert.throws(() => activate(t, 'ak1.ctx', 'ek-rsa.ctx', wrong, true), /tpm2_activatecredential/);
  });

  it('ECC P-256 low-range EK (tpm2_createek) with an RSA AK', async () => {
    const t = await tpm();
    t.tool('tpm2_flushcontext', ['-t']);
    run(t, 'tpm2_createek', ['-c', 'ek-ecc.ctx', '-G', 'ecc', '-u', 'ek-ecc.pub']);
    run(t, 'tpm2_createak', [
      '-C',
      'ek-ecc.ctx',
      '-c',
      'ak2.ctx',
      '-G',
      'rsa',
      '-g',
      'sha256',
      '-s',
      'rsassa',
      '-u',
      'ak2.pub',
      '-n',
      'ak2.name',
      '-r',
      'ak2.priv',
    ]);
    const ek = parseTpm2bPublic(read(t, 'ek-ecc.pub'));
    assert.equal(ek.type, TPM_ALG.ECC);
    checkName(t, 'ak2.pub', 'ak2.name');
    const credential = new Uint8Array(randomBytes(32));
    const file = encodeCredentialFile(
      makeCredential({ ekPublic: ek, akName: read(t, 'ak2.name'), credential }),
    );
    assert.equal(file.length, 148);
    assert.equal(toHex(activate(t, 'ak2.ctx', 'ek-ecc.ctx', file, true)), toHex(credential));
  });

  it('ECC P-384 high-range-style EK (SHA-384 nameAlg, AES-256-CFB, userWithAuth) with a SHA-256 AK', async () => {
    const t = await tpm();
    t.tool('tpm2_flushcontext', ['-t']);
    const attrs = 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|adminwithpolicy|restricted|decrypt';
    run(t, 'tpm2_createprimary', [
      '-C',
      'e',
      '-g',
      'sha384',
      '-G',
      'ecc384:aes256cfb',
      '-a',
      attrs,
      '-c',
      'ek384.ctx',
    ]);
    run(t, 'tpm2_readpublic', ['-c', 'ek384.ctx', '-o', 'ek384.pub']);
    const akAttrs = 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign';
    run(t, 'tpm2_create', [
      '-C',
      'ek384.ctx',
      '-G',
      'ecc256:ecdsa-sha256:null',
      '-g',
      'sha256',
      '-a',
      akAttrs,
      '-u',
      'ak3.pub',
      '-r',
      'ak3.priv',
    ]);
    run(t, 'tpm2_load', [
      '-C',
      'ek384.ctx',
      '-u',
      'ak3.pub',
      '-r',
      'ak3.priv',
      '-c',
      'ak3.ctx',
      '-n',
      'ak3.name',
    ]);
    const ek = parseTpm2bPublic(read(t, 'ek384.pub'));
    assert.equal(ek.nameAlg, TPM_ALG.SHA384);
    assert.equal(ek.objectAttributes & TPMA_OBJECT.userWithAuth, TPMA_OBJECT.userWithAuth);
    checkName(t, 'ak3.pub', 'ak3.name');
    const credential = new Uint8Array(randomBytes(32));
    const file = encodeCredentialFile(
      makeCredential({ ekPublic: ek, akName: read(t, 'ak3.name'), credential }),
    );
    assert.equal(file.length, 196);
    assert.equal(toHex(activate(t, 'ak3.ctx', 'ek384.ctx', file, false)), toHex(credential));
  });
});

describe('swtpm: quotes signed by the TPM pass verifyQuote', () => {
  let root: TestCa;
  let inter: TestCa;
  let trust: TrustStore;
  before(async () => {
    root = await makeRoot();
    inter = await issueCa(root, { subject: 'CN=swtpm AK CA', ca: { pathLength: 0 } });
    trust = createTrustStore([root.der], [inter.der]);
  });

  function pcrBank(t: Swtpm, bank: string, indexes: number[]): PcrBank {
    t.tool('tpm2_pcrread', [`${bank}:${indexes.join(',')}`, '-o', `pcr-${bank}.bin`]);
    const raw = read(t, `pcr-${bank}.bin`);
    const h = hashByName(bank)!;
    assert.equal(raw.length, h.size * indexes.length);
    return {
      hashAlg: h.id,
      values: new Map(indexes.map((i, k) => [i, raw.slice(k * h.size, (k + 1) * h.size)])),
    };
  }

  const cases: [string, string[], string][] = [
    ['RSA AK, RSASSA-SHA256', ['-G', 'rsa', '-g', 'sha256', '-s', 'rsassa'], 'rsassa'],
    ['RSA AK, RSAPSS-SHA256', ['-G', 'rsa', '-g', 'sha256', '-s', 'rsapss'], 'rsapss'],
    ['ECC P-256 AK, ECDSA-SHA256', ['-G', 'ecc', '-g', 'sha256', '-s', 'ecdsa'], 'ecdsa'],
  ];
  for (const [name, akArgs, scheme] of cases) {
    it(`${name}: SHA-1 + SHA-256 banks, extended PCRs, random nonce`, async () => {
      const t = await tpm();
      t.tool('tpm2_flushcontext', ['-t']);
      run(t, 'tpm2_createek', ['-c', 'ekq.ctx', '-G', 'rsa', '-u', 'ekq.pub']);
      run(t, 'tpm2_createak', [
        '-C',
        'ekq.ctx',
        '-c',
        'akq.ctx',
        ...akArgs,
        '-u',
        'akq.pub',
        '-n',
        'akq.name',
        '-r',
        'akq.priv',
      ]);
      t.tool('tpm2_pcrextend', [`4:sha1=${toHex(randomBytes(20))},sha256=${toHex(randomBytes(32))}`]);
      t.tool('tpm2_pcrextend', [`16:sha256=${toHex(randomBytes(32))}`]);
      const nonce = new Uint8Array(randomBytes(20));
      run(t, 'tpm2_quote', [
        '-c',
        'akq.ctx',
        '-l',
        'sha1:0,4,7+sha256:0,1,4,16',
        '-q',
        toHex(nonce),
        '-m',
        'q.attest',
        '-s',
        'q.sig',
        '-g',
        'sha256',
        '--scheme',
        scheme,
      ]);
      const pcrs = [pcrBank(t, 'sha1', [0, 4, 7]), pcrBank(t, 'sha256', [0, 1, 4, 16])];
      const ak = checkName(t, 'akq.pub', 'akq.name');
      const akCert = await issueLeaf(inter, { subject: 'CN=swtpm AK' }, publicToKeyObject(ak));
      const input = {
        quote: read(t, 'q.attest'),
        signature: read(t, 'q.sig'),
        pcrs,
        akCert,
        akPublic: encodePublic(ak),
      };
      const claims = verifyQuote(input, { now: T0, roots: trust, nonce });
      assert.equal(toHex(claims.akName!), toHex(read(t, 'akq.name')));
      assert.deepEqual(
        claims.pcrs.map((b) => HASH_ALGS[b.hashAlg]!.name),
        ['sha1', 'sha256'],
      );
      // The same quote with a PCR changed, or another nonce, is refused.
      const tampered = new Map(pcrs[1]!.values);
      tampered.set(16, new Uint8Array(32));
      assert.throws(
        () =>
          verifyQuote(
            { ...input, pcrs: [pcrs[0]!, { hashAlg: TPM_ALG.SHA256, values: tampered }] },
            { now: T0, roots: trust, nonce },
          ),
        {
          reason: 'tpm.quote.pcr_digest',
        },
      );
      assert.throws(() => verifyQuote(input, { now: T0, roots: trust, nonce: nonce.subarray(1) }), {
        reason: 'tpm.quote.nonce',
      });
    });
  }
});
