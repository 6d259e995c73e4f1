import { constants, createHash, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import {
  BindingMismatch,
  InvalidArgument,
  MalformedEvidence,
  NotSupported,
  SignatureInvalid,
} from '../../errors.js';
import { type ParsedAttest, parseAttest, type QuoteInfo } from '../../formats/tpm/attest.js';
import {
  algLabel,
  ECC_CURVES,
  HASH_ALGS,
  type HashInfo,
  TPM_ALG,
  TPM_ST,
  TPMA_OBJECT,
} from '../../formats/tpm/constants.js';
import { padTo, publicToKeyObject } from '../../formats/tpm/key.js';
import { computeName, type ParsedPublic, parsePublic } from '../../formats/tpm/public.js';
import { parseSignature, type TpmtSignature } from '../../formats/tpm/signature.js';
import { type Certificate, findExtension, KeyUsage } from '../../formats/x509/certificate.js';
import {
  GCE_INSTANCE_IDENTITY_OID,
  type GceInstanceIdentity,
  parseInstanceIdentity,
} from '../../formats/x509/instance-identity.js';
import { ctEqual } from '../../util/bytes.js';
import { type TrustStore, verifyCertPath } from './cert-path.js';
import type { PcrBank, TpmQuoteClaims } from './claims.js';
import { Lru } from './lru.js';

/**
 * Verification of a TPM 2.0 quote (TPM2_Quote, TPM 2.0 Library Part 3 rev 1.59 §18.4) by an AK whose
 * certificate chains to pinned roots, following go-tpm-tools `server/verify.go` + `quote.Verify` and
 * keylime `checkquote`:
 *   1. the AK certificate chains to a trusted root at `now` (and matches the AK public area if given);
 *   2. the signature over H_sig(TPMS_ATTEST) verifies with the AK key (RSASSA, RSAPSS with salt = |H|, ECDSA);
 *   3. magic (checked while parsing) and type ST_ATTEST_QUOTE;
 *   4. extraData equals the verifier's nonce (constant time);
 *   5. the PCR selection equals exactly the supplied PCR set;
 *   6. pcrDigest = H_sig(PCR values, banks in listed order, ascending index) — the SIGNING scheme's hash,
 *      not the bank's (libtpms AttestationCommands.c; real GCE SHA-1/SHA-384 bank quotes use SHA-256).
 * Event-log replay is not part of this step.
 */

export interface VerifyQuoteInput {
  /** TPMS_ATTEST as signed (`tpm2_quote -m`, go-tpm-tools `quote`). */
  readonly quote: Uint8Array;
  /** TPMT_SIGNATURE (`tpm2_quote -s`, go-tpm-tools `raw_sig`). */
  readonly signature: Uint8Array;
  /** The PCR values the attester claims, one entry per bank. */
  readonly pcrs: readonly PcrBank[];
  /** The AK certificate (DER). */
  readonly akCert: Uint8Array;
  /**
   * The AK's TPMT_PUBLIC (bare, go-tpm-tools `ak_pub`). When given it must hold the certificate's key, be a
   * restricted signing key, and its Name is reported; when absent the claims carry `akName: null`.
   */
  readonly akPublic?: Uint8Array;
  /** Untrusted intermediates that came with the evidence. */
  readonly intermediates?: readonly Uint8Array[];
}

export interface VerifyQuoteOptions {
  /** The time at which certificates must be valid. */
  readonly now: Date;
  readonly roots: TrustStore;
  /** The nonce the verifier issued; an empty array means the quote must carry no extraData. */
  readonly nonce: Uint8Array;
  /** Where the instance identity lives in the AK certificate (default: the GCE OID). */
  readonly identityOid?: string;
}

/** Signature hashes accepted for quotes: SHA-1 is refused (collisions are practical). */
const SIG_HASHES: ReadonlySet<number> = new Set([TPM_ALG.SHA256, TPM_ALG.SHA384, TPM_ALG.SHA512]);

type Verifier = (key: KeyObject, h: HashInfo, data: Uint8Array, sig: TpmtSignature) => boolean;

function keyIs(key: KeyObject, type: 'rsa' | 'ec'): void {
  if (key.asymmetricKeyType !== type) {
    throw new SignatureInvalid('tpm.quote.sig_key_mismatch', `signature scheme needs an ${type} key`);
  }
}

/** Per-scheme signature verification (a table, not a switch). */
const VERIFIERS: Readonly<Record<number, Verifier>> = (() => {
  const t: Record<number, Verifier> = Object.create(null);
  t[TPM_ALG.RSASSA] = (key, h, data, sig) => {
    keyIs(key, 'rsa');
    return (
      'signature' in sig &&
      cryptoVerify(h.node, data, { key, padding: constants.RSA_PKCS1_PADDING }, sig.signature)
    );
  };
  t[TPM_ALG.RSAPSS] = (key, h, data, sig) => {
    keyIs(key, 'rsa');
    const opts = { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: h.size };
    return 'signature' in sig && cryptoVerify(h.node, data, opts, sig.signature);
  };
  t[TPM_ALG.ECDSA] = (key, h, data, sig) => {
    keyIs(key, 'ec');
    if (!('r' in sig)) return false;
    const curve = Object.values(ECC_CURVES).find((c) => c.node === key.asymmetricKeyDetails?.namedCurve);
    if (curve === undefined) throw new NotSupported('tpm.quote.curve', 'the AK curve is not supported');
    const r = padTo(sig.r, curve.size, 'tpm.signature.ecc');
    const s = padTo(sig.s, curve.size, 'tpm.signature.ecc');
    return cryptoVerify(h.node, data, { key, dsaEncoding: 'ieee-p1363' }, Buffer.concat([r, s]));
  };
  return Object.freeze(t);
})();

/** AK public areas already converted to keys (pure: same bytes, same key). */
const AK_KEYS = new Lru<string, KeyObject>(4096);

function akKeyOf(ak: ParsedPublic): KeyObject {
  const k = createHash('sha256').update(ak.raw).digest('base64');
  let key = AK_KEYS.get(k);
  if (key === undefined) {
    key = publicToKeyObject(ak);
    AK_KEYS.set(k, key);
  }
  return key;
}

/** Parsed instance identities by extension value (pure facts about fixed bytes, parsed once). */
const IDENTITIES = new Lru<string, GceInstanceIdentity>(4096);

function identityOf(leaf: Certificate, oid: string): GceInstanceIdentity | null {
  const ext = findExtension(leaf, oid);
  if (ext === undefined) return null;
  const k = createHash('sha256').update(ext.value).digest('base64');
  let id = IDENTITIES.get(k);
  if (id === undefined) {
    const parsed = parseInstanceIdentity(ext.value);
    // Shared between callers: frozen so that no caller can change what another sees.
    if (parsed.securityProperties) Object.freeze(parsed.securityProperties);
    id = Object.freeze(parsed);
    IDENTITIES.set(k, id);
  }
  return id;
}

function checkAkPublic(ak: ParsedPublic, certKey: KeyObject): void {
  const need = TPMA_OBJECT.sign | TPMA_OBJECT.restricted | TPMA_OBJECT.fixedTPM;
  if ((ak.objectAttributes & need) !== need) {
    throw new BindingMismatch(
      'tpm.quote.ak_attributes',
      `AK attributes 0x${ak.objectAttributes.toString(16)} are not those of a restricted, fixedTPM signing key`,
    );
  }
  if (!akKeyOf(ak).equals(certKey)) {
    throw new BindingMismatch('tpm.quote.ak_public', 'the AK public area does not hold the certificate key');
  }
}

function checkScheme(ak: ParsedPublic, sig: TpmtSignature): void {
  // A restricted signing key signs only with its own scheme (Part 1 §25.2); a mismatch is not a real quote.
  const { scheme } = ak.parameters;
  if (scheme.scheme !== TPM_ALG.NULL && (scheme.scheme !== sig.sigAlg || scheme.hashAlg !== sig.hashAlg)) {
    throw new BindingMismatch('tpm.quote.ak_scheme', 'the signature scheme differs from the AK scheme');
  }
}

/** 5. The selection must name exactly the supplied banks and indexes (no more, no fewer). */
function checkSelection(
  attest: ParsedAttest & { type: typeof TPM_ST.ATTEST_QUOTE },
  pcrs: readonly PcrBank[],
): void {
  const sel = attest.attested.pcrSelect;
  const fail = (why: string): never => {
    throw new BindingMismatch(
      'tpm.quote.pcr_selection',
      `PCR selection differs from the supplied PCRs: ${why}`,
    );
  };
  if (new Set(sel.map((b) => b.hashAlg)).size !== sel.length) fail('a bank is selected twice');
  if (new Set(pcrs.map((b) => b.hashAlg)).size !== pcrs.length) fail('a bank is supplied twice');
  if (sel.length !== pcrs.length) fail(`${sel.length} banks selected, ${pcrs.length} supplied`);
  for (const bank of sel) {
    const given = pcrs.find((b) => b.hashAlg === bank.hashAlg);
    if (!given) fail(`bank ${algLabel(bank.hashAlg)} not supplied`);
    if (given!.values.size !== bank.pcrs.length || !bank.pcrs.every((i) => given!.values.has(i))) {
      fail(`bank ${algLabel(bank.hashAlg)} indexes differ`);
    }
  }
}

/** 6. H_sig over the supplied values in selection order: banks as listed, indexes ascending. */
function pcrDigest(
  attest: ParsedAttest & { type: typeof TPM_ST.ATTEST_QUOTE },
  pcrs: readonly PcrBank[],
  h: HashInfo,
): Uint8Array {
  const hash = createHash(h.node);
  for (const bank of attest.attested.pcrSelect) {
    const values = pcrs.find((b) => b.hashAlg === bank.hashAlg)!.values;
    for (const i of bank.pcrs) hash.update(values.get(i)!);
  }
  return new Uint8Array(hash.digest());
}

/** Checks every PCR bank is a supported hash and every value has its size. Throws NotSupported `tpm.pcrs.bank`, MalformedEvidence `tpm.pcrs.index` / `.value_size`. */
export function checkPcrBanks(pcrs: readonly PcrBank[]): void {
  for (const bank of pcrs) {
    const h = HASH_ALGS[bank.hashAlg];
    if (h === undefined)
      throw new NotSupported('tpm.pcrs.bank', `PCR bank ${algLabel(bank.hashAlg)} is not supported`);
    for (const [i, v] of bank.values) {
      if (!Number.isInteger(i) || i < 0 || i > 255)
        throw new MalformedEvidence('tpm.pcrs.index', `PCR index ${i}`);
      if (v.length !== h.size) {
        throw new MalformedEvidence(
          'tpm.pcrs.value_size',
          `PCR ${h.name}:${i} has ${v.length} bytes, not ${h.size}`,
        );
      }
    }
  }
}

/**
 * Steps 2-6 of {@link verifyQuote} for an AK key the caller already trusts (an AK certificate path, or a key
 * bound by other signed evidence, e.g. Azure's HCL report): the signature over the TPMS_ATTEST bytes, the
 * quote type, extraData equal to `nonce` (constant time), the PCR selection equal to `pcrs`, and pcrDigest
 * over `pcrs` with the signature's hash, which it returns. PCR values must have been checked with
 * {@link checkPcrBanks}. Returns the signature's hash and the quoted selection. Throws SignatureInvalid `tpm.quote.signature` / `.sig_key_mismatch`, NotSupported
 * `tpm.quote.sig_alg` / `.sig_hash` / `.curve`, MalformedEvidence `tpm.quote.not_quote`, BindingMismatch
 * `tpm.quote.nonce` / `.pcr_selection` / `.pcr_digest`.
 */
export function checkQuoteSignedBy(
  akKey: KeyObject,
  attest: ParsedAttest,
  sig: TpmtSignature,
  pcrs: readonly PcrBank[],
  nonce: Uint8Array | 'checked-by-caller',
): { readonly hash: HashInfo; readonly quoted: QuoteInfo } {
  // 2. Signature over the TPMS_ATTEST bytes with the AK key.
  // HMAC-signed attestations (go-tpm-tools' certify flow) need the shared key: not verified here.
  const verifier = VERIFIERS[sig.sigAlg];
  if (verifier === undefined) {
    throw new NotSupported('tpm.quote.sig_alg', `quote signature ${algLabel(sig.sigAlg)} is not supported`);
  }
  if (!SIG_HASHES.has(sig.hashAlg)) {
    throw new NotSupported(
      'tpm.quote.sig_hash',
      `quote signature hash ${algLabel(sig.hashAlg)} is not accepted`,
    );
  }
  const h = HASH_ALGS[sig.hashAlg]!;
  if (!verifier(akKey, h, attest.raw, sig)) {
    throw new SignatureInvalid('tpm.quote.signature', 'the quote signature does not verify with the AK key');
  }

  // 3. Type (the magic was checked by the parser).
  if (attest.type !== TPM_ST.ATTEST_QUOTE) {
    throw new MalformedEvidence('tpm.quote.not_quote', 'the attestation is not a TPM2_Quote');
  }
  // 4. Nonce ('checked-by-caller': the caller compares extraData later, e.g. the broker with the claims).
  if (nonce !== 'checked-by-caller' && !ctEqual(attest.extraData, nonce)) {
    throw new BindingMismatch('tpm.quote.nonce', 'the quote extraData does not equal the nonce');
  }
  // 5. Selection.
  checkSelection(attest, pcrs);
  // 6. Digest with the signature's hash.
  if (!ctEqual(pcrDigest(attest, pcrs, h), attest.attested.pcrDigest)) {
    throw new BindingMismatch('tpm.quote.pcr_digest', 'the PCR values do not match the quoted pcrDigest');
  }

  return { hash: h, quoted: attest.attested };
}

/**
 * Verifies a quote and returns its claims. Throws (first failure wins, in the order above):
 * MalformedEvidence `tpm.attest.*`, `tpm.signature.*`, `tpm.public.*`, `tpm.pcrs.*`, `x509.*`,
 * `tpm.quote.not_quote`; ChainInvalid `x509.chain.*`; BindingMismatch `tpm.quote.ak_attributes`,
 * `.ak_public`, `.ak_scheme`, `.nonce`, `.pcr_selection`, `.pcr_digest`; SignatureInvalid
 * `tpm.quote.signature`, `.sig_key_mismatch`; NotSupported `tpm.quote.sig_alg`, `.sig_hash`, `.curve`.
 */
export function verifyQuote(input: VerifyQuoteInput, opts: VerifyQuoteOptions): TpmQuoteClaims {
  if (!(opts.now instanceof Date) || Number.isNaN(opts.now.getTime())) {
    throw new InvalidArgument('tpm.quote.now', 'a valid `now` is required');
  }
  // Parse everything first: malformed input is reported as such before any cryptography.
  const attest = parseAttest(input.quote);
  const sig = parseSignature(input.signature);
  const akPublic = input.akPublic === undefined ? undefined : parsePublic(input.akPublic);
  checkPcrBanks(input.pcrs);

  // 1. AK certificate → trusted root.
  const path = verifyCertPath(input.akCert, {
    now: opts.now,
    trust: opts.roots,
    intermediates: input.intermediates ?? [],
    leafKeyUsage: KeyUsage.digitalSignature,
  });
  const akKey = path.leafKey;
  if (akPublic) {
    checkAkPublic(akPublic, akKey);
    checkScheme(akPublic, sig);
  }

  const { quoted } = checkQuoteSignedBy(akKey, attest, sig, input.pcrs, opts.nonce);

  const leaf = path.certificates[0]!;
  const identity = identityOf(leaf, opts.identityOid ?? GCE_INSTANCE_IDENTITY_OID);
  return {
    nonce: attest.extraData,
    pcrs: quoted.pcrSelect.map((bank) => ({
      hashAlg: bank.hashAlg,
      values: new Map(
        bank.pcrs.map((i) => [i, input.pcrs.find((b) => b.hashAlg === bank.hashAlg)!.values.get(i)!]),
      ),
    })),
    pcrDigest: quoted.pcrDigest,
    signature: { sigAlg: sig.sigAlg, hashAlg: sig.hashAlg },
    akName: akPublic ? computeName(akPublic) : null,
    akCertificateSha256: new Uint8Array(createHash('sha256').update(input.akCert).digest()),
    chain: path.certificates.map((c) => c.der),
    qualifiedSigner: attest.qualifiedSigner,
    identity,
    clock: { clock: attest.clockInfo.clock, safe: attest.clockInfo.safe },
    obfuscated: {
      resetCount: attest.clockInfo.resetCount,
      restartCount: attest.clockInfo.restartCount,
      firmwareVersion: attest.firmwareVersion,
    },
  };
}
