import { createHash, type KeyObject, randomBytes } from 'node:crypto';
import { InvalidArgument } from '../../errors.js';
import { wholeSeconds } from '../../formats/der/writer.js';
import { isSnpProduct, type SnpProduct } from '../../formats/snp/product.js';
import type { TcbParts } from '../../formats/snp/tcb.js';
import {
  authorityKeyIdentifier,
  basicConstraints,
  crlDistributionPoints,
  subjectKeyIdentifier,
} from '../../formats/x509/extension-builders.js';
import { keyIdentifier } from '../../formats/x509/key-identifier.js';
import { toHex } from '../../util/bytes.js';
import { newKeyPair } from '../../util/key-pair.js';
import { amdCertificate, amdKeyUsage } from './amd-certificate-der.js';
import { amdLeafExtensions } from './amd-extensions.js';
import { simRsaKeyPair } from './key-pool.js';

/**
 * The simulator's stand-in for AMD's key hierarchy (KDS spec 57230): a self-signed ARK, the ASK and ASVK it
 * signs, and a VCEK and VLEK below them, every certificate shaped byte for byte like AMD's (names, serials,
 * extension order and encodings, RSASSA-PSS parameters, serial-0 leaves without AKID). The names are AMD's
 * on purpose: to a verifier that pins AMD's roots this chain is a forgery, which is exactly what it must be.
 */

export interface SimKeyPair {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

export interface SimCert extends SimKeyPair {
  readonly der: Uint8Array;
}

/** Key pairs for a chain: RSA-4096 for ARK, ASK and ASVK; ECDSA P-384 for VCEK and VLEK. */
export interface SimKeys {
  readonly ark: SimKeyPair;
  readonly ask: SimKeyPair;
  readonly asvk: SimKeyPair;
  readonly vcek: SimKeyPair;
  readonly vlek: SimKeyPair;
}

export interface SimChain {
  readonly product: SnpProduct;
  readonly ark: SimCert;
  readonly ask: SimCert;
  readonly asvk: SimCert;
  readonly vcek: SimCert;
  readonly vlek: SimCert;
  /** 64 bytes; for Turin only bytes 0-7 are set (the rest zero), as Turin firmware reports it. */
  readonly chipId: Uint8Array;
  /** The TCB the VCEK and VLEK are issued for (and the default report TCBs). */
  readonly tcb: TcbParts;
  /** Hex SHA-256 of the ARK's DER: what a verifier pins to trust this simulated root. */
  readonly rootSha256: string;
}

export interface SimChainOptions {
  /** Default 'Milan'. */
  readonly product?: SnpProduct;
  /** Issue time of every certificate (default: the current time). */
  readonly now?: Date;
  /** 64 bytes (random by default). Turin: only bytes 0-7 are used, the rest are set to zero. */
  readonly chipId?: Uint8Array;
  /** Default: a TCB seen on real hardware of the product (see DEFAULT_SIM_TCB). */
  readonly tcb?: TcbParts;
  /** VCEK validity, default [now, now + 7 years]. */
  readonly vcekNotBefore?: Date;
  readonly vcekNotAfter?: Date;
  /** VLEK validity, default [now, now + 1 year]. */
  readonly vlekNotBefore?: Date;
  readonly vlekNotAfter?: Date;
  /** The VLEK's cspID extension, default 'CN=sim-csp.vouchsafe.test'. */
  readonly cspId?: string;
  /** Reuse key pairs (RSA-4096 keygen takes about a second); missing ones are generated. */
  readonly keys?: Partial<SimKeys>;
}

/** TCBs taken from real reports in shared/vectors (microsoft-tav-{milan,genoa,turin}). */
export const DEFAULT_SIM_TCB: Readonly<Record<SnpProduct, TcbParts>> = {
  Milan: { bootloader: 4, tee: 0, snp: 24, microcode: 219 },
  Genoa: { bootloader: 10, tee: 0, snp: 23, microcode: 84 },
  Turin: { fmc: 1, bootloader: 1, tee: 1, snp: 4, microcode: 81 },
};

/** AMD's serial numbers for ARK, ASK and ASVK, per product (shared/vectors/amd). */
const SERIALS: Readonly<Record<SnpProduct, { ark: number; ask: number; asvk: number }>> = {
  Milan: { ark: 0x10000, ask: 0x10001, asvk: 0x10101 },
  Genoa: { ark: 0x20000, ask: 0x20002, asvk: 0x20101 },
  Turin: { ark: 0x30000, ask: 0x30001, asvk: 0x30101 },
};

const KDS = 'https://kdsintf.amd.com';
export const DEFAULT_CSP_ID = 'CN=sim-csp.vouchsafe.test';

export async function generateSimKeys(have: Partial<SimKeys> = {}): Promise<SimKeys> {
  const rsa = simRsaKeyPair;
  const ec = () => newKeyPair('ec', { namedCurve: 'P-384' });
  const [ark, ask, asvk, vcek, vlek] = await Promise.all([
    have.ark ?? rsa(),
    have.ask ?? rsa(),
    have.asvk ?? rsa(),
    have.vcek ?? ec(),
    have.vlek ?? ec(),
  ]);
  const keys = { ark, ask, asvk, vcek, vlek };
  for (const name of ['ark', 'ask', 'asvk'] as const) checkKey(name, keys[name], 'rsa');
  for (const name of ['vcek', 'vlek'] as const) checkKey(name, keys[name], 'ec');
  return keys;
}

function checkKey(name: string, pair: SimKeyPair, type: 'rsa' | 'ec'): void {
  const pub = pair.publicKey;
  const ok =
    pub.asymmetricKeyType === type &&
    pair.privateKey.asymmetricKeyType === type &&
    (type === 'rsa' || pub.asymmetricKeyDetails?.namedCurve === 'secp384r1');
  if (!ok) {
    throw new InvalidArgument(
      'sim.snp.key',
      `${name} key must be ${type === 'rsa' ? 'RSA' : 'ECDSA P-384'}, got ${pub.asymmetricKeyType}`,
    );
  }
}

function addYears(d: Date, years: number): Date {
  const t = new Date(d.getTime());
  t.setUTCFullYear(t.getUTCFullYear() + years);
  return t;
}

function checkTcb(tcb: TcbParts): void {
  for (const [k, v] of Object.entries(tcb)) {
    if (v !== undefined && !(Number.isInteger(v) && v >= 0 && v <= 0xff)) {
      throw new InvalidArgument('sim.snp.tcb', `TCB component ${k}=${v} is not a byte`);
    }
  }
}

function chipIdFor(product: SnpProduct, given?: Uint8Array): Uint8Array {
  if (given !== undefined && given.length !== 64) {
    throw new InvalidArgument('sim.snp.chip_id', `chipId must be 64 bytes, got ${given.length}`);
  }
  const id = new Uint8Array(64);
  id.set(given ?? randomBytes(64));
  if (product === 'Turin') id.fill(0, 8); // Turin's CHIP_ID is 8 bytes, zero-extended in the report
  return id;
}

const spkiOf = (key: KeyObject): Uint8Array => new Uint8Array(key.export({ type: 'spki', format: 'der' }));

/**
 * Generates a simulated AMD chain for one product. Throws InvalidArgument (`sim.snp.product`,
 * `sim.snp.chip_id`, `sim.snp.tcb`, `sim.snp.key`) on unusable options.
 */
export async function createSimChain(opts: SimChainOptions = {}): Promise<SimChain> {
  const product = opts.product ?? 'Milan';
  if (!isSnpProduct(product)) throw new InvalidArgument('sim.snp.product', `unknown product ${product}`);
  const tcb = { ...(opts.tcb ?? DEFAULT_SIM_TCB[product]) };
  checkTcb(tcb);
  const chipId = chipIdFor(product, opts.chipId);
  const now = wholeSeconds(opts.now ?? new Date());
  const keys = await generateSimKeys(opts.keys);
  const serials = SERIALS[product];
  const arkCn = `ARK-${product}`;
  const askCn = `SEV-${product}`;
  const asvkCn = `SEV-VLEK-${product}`;
  const caValidity = { notBefore: now, notAfter: addYears(now, 25) };

  const arkKeyId = keyIdentifier(spkiOf(keys.ark.publicKey));
  // ARK: KU (critical), SKI, BC (critical, CA), CDP: AMD's order.
  const arkDer = amdCertificate({
    serial: serials.ark,
    issuerCn: arkCn,
    subjectCn: arkCn,
    ...caValidity,
    subjectKey: keys.ark.publicKey,
    issuerKey: keys.ark.privateKey,
    explicitTrailer: true,
    extensions: [
      amdKeyUsage({ keyCertSign: true, cRLSign: true }),
      subjectKeyIdentifier(spkiOf(keys.ark.publicKey)),
      basicConstraints(true),
      crlDistributionPoints([`${KDS}/vcek/v1/${product}/crl`]),
    ],
  });
  // ASK / ASVK: SKI, AKID, BC (critical, pathlen 0), KU (critical, keyCertSign), CDP.
  const intermediate = (serial: number, cn: string, pair: SimKeyPair, kind: 'vcek' | 'vlek') =>
    amdCertificate({
      serial,
      issuerCn: arkCn,
      subjectCn: cn,
      ...caValidity,
      subjectKey: pair.publicKey,
      issuerKey: keys.ark.privateKey,
      explicitTrailer: true,
      extensions: [
        subjectKeyIdentifier(spkiOf(pair.publicKey)),
        authorityKeyIdentifier(arkKeyId),
        basicConstraints(true, 0),
        amdKeyUsage({ keyCertSign: true }),
        crlDistributionPoints([`${KDS}/${kind}/v1/${product}/crl`]),
      ],
    });
  const askDer = intermediate(serials.ask, askCn, keys.ask, 'vcek');
  const asvkDer = intermediate(serials.asvk, asvkCn, keys.asvk, 'vlek');
  // Leaves: serial 0, no AKID, no KU/BC, only AMD's extensions.
  const vcekDer = amdCertificate({
    serial: 0,
    issuerCn: askCn,
    subjectCn: 'SEV-VCEK',
    notBefore: opts.vcekNotBefore ?? now,
    notAfter: opts.vcekNotAfter ?? addYears(opts.vcekNotBefore ?? now, 7),
    subjectKey: keys.vcek.publicKey,
    issuerKey: keys.ask.privateKey,
    explicitTrailer: false,
    extensions: amdLeafExtensions(product, tcb, { kind: 'VCEK', chipId }),
  });
  const vlekDer = amdCertificate({
    serial: 0,
    issuerCn: asvkCn,
    subjectCn: 'SEV-VLEK',
    notBefore: opts.vlekNotBefore ?? now,
    notAfter: opts.vlekNotAfter ?? addYears(opts.vlekNotBefore ?? now, 1),
    subjectKey: keys.vlek.publicKey,
    issuerKey: keys.asvk.privateKey,
    explicitTrailer: false,
    extensions: amdLeafExtensions(product, tcb, { kind: 'VLEK', cspId: opts.cspId ?? DEFAULT_CSP_ID }),
  });
  return {
    product,
    ark: { ...keys.ark, der: arkDer },
    ask: { ...keys.ask, der: askDer },
    asvk: { ...keys.asvk, der: asvkDer },
    vcek: { ...keys.vcek, der: vcekDer },
    vlek: { ...keys.vlek, der: vlekDer },
    chipId,
    tcb,
    rootSha256: toHex(createHash('sha256').update(arkDer).digest()),
  };
}

const shared = new Map<SnpProduct, Promise<SimChain>>();

/**
 * One chain per product per process, created on first use: for tests and benchmarks, so RSA keygen is paid
 * once. Callers must not mutate it; anything needing other options (dates, TCB) calls createSimChain.
 */
export function sharedSimChain(product: SnpProduct = 'Milan'): Promise<SimChain> {
  let chain = shared.get(product);
  if (!chain) {
    chain = createSimChain({ product });
    chain.catch(() => shared.delete(product));
    shared.set(product, chain);
  }
  return chain;
}
