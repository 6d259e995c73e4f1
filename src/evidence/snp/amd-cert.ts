import { createPublicKey, type KeyObject } from 'node:crypto';
import { ChainInvalid, MalformedEvidence } from '../../errors.js';
import { oid, Tag } from '../../formats/der/reader.js';
import { AmdOid, readAmdExtensions } from '../../formats/snp/amd-cert-extensions.js';
import { decodeTcb, productFromName, type SnpProduct, type Tcb } from '../../formats/snp/index.js';
import {
  basicConstraints,
  checkCriticalExtensions,
  commonName,
  extensionValue,
  formatName,
  isRsaPssSha384,
  keyUsage as keyUsageOf,
  loadDer,
  Oid,
  parseX509,
  type X509Cert,
} from './x509.js';

export { AmdOid } from '../../formats/snp/amd-cert-extensions.js';

/**
 * AMD SEV-SNP certificates (KDS spec 57230 "Versioned Chip Endorsement Key (VCEK) Certificate and KDS
 * Interface Specification", and the VLEK variant): the VCEK/VLEK leaf with its AMD extensions
 * (OID 1.3.6.1.4.1.3704.1.x), and the shape of the RSA CA certificates (ARK, ASK, ASVK) above it.
 *
 * Quirks of real certificates that are tolerated on purpose: serial 0 on every leaf; no Authority Key
 * Identifier on leaves; Turin VCEKs lack spl_4 and add fmcSPL; 2026 Genoa VCEKs name the product "Genoa"
 * with no stepping; VLEKs name it without stepping ("Milan").
 */

export type AmdSigner = 'VCEK' | 'VLEK';

/** Security patch levels from the leaf; each is one TCB byte (0-255). Absent extensions are undefined. */
export interface AmdSpl {
  readonly bl: number;
  readonly tee: number;
  readonly snp: number;
  readonly ucode: number;
  readonly fmc?: number;
  readonly spl4?: number;
  readonly spl5?: number;
  readonly spl6?: number;
  readonly spl7?: number;
}

/** A parsed and shape-checked VCEK or VLEK. */
export interface AmdLeaf {
  readonly cert: X509Cert;
  readonly kind: AmdSigner;
  readonly structVersion?: number;
  /** productName as written ("Milan-B0", "Genoa", "Turin", "Milan"). */
  readonly productName?: string;
  /** The product productName names, when it names a known one. */
  readonly product?: SnpProduct;
  readonly stepping?: string;
  readonly spl: AmdSpl;
  /** VCEK only: 64 bytes (Milan, Genoa: the whole CHIP_ID) or 8 bytes (Turin: CHIP_ID[0:8]). */
  readonly hwId?: Uint8Array;
  /** VLEK only, e.g. "CN=cc-us-east-2.amazonaws.com". */
  readonly cspId?: string;
  readonly publicKey: KeyObject;
}

/** Critical extensions a CA certificate may carry (RFC 5280 §4.2 requires rejecting any other). */
const CA_KNOWN = [Oid.basicConstraints, Oid.keyUsage, Oid.subjectKeyIdentifier, Oid.authorityKeyIdentifier];
const LEAF_KNOWN = [...CA_KNOWN, ...Object.values(AmdOid)];

/** The one algorithm every AMD certificate uses, in both places RFC 5280 §4.1.1.2 says must agree. */
function checkSignatureAlgorithm(c: X509Cert, role: string): void {
  if (!isRsaPssSha384(c.signatureAlgorithm) || !isRsaPssSha384(c.tbsSignatureAlgorithm)) {
    throw new ChainInvalid(
      'snp.cert.signature_algorithm',
      `${role} is not signed with RSASSA-PSS SHA-384/MGF1-SHA-384/salt 48`,
    );
  }
}

function checkV3(c: X509Cert, role: string): void {
  if (c.version !== 3) throw new ChainInvalid('snp.cert.version', `${role} is X.509 v${c.version}, not v3`);
}

/**
 * Parses a VCEK or VLEK (DER or PEM) and checks its shape: X.509 v3, RSASSA-PSS SHA-384 salt 48, ECDSA P-384
 * key, CN=SEV-VCEK or SEV-VLEK, the AMD extensions well-formed, a VCEK with a 64- or 8-byte hwID and no
 * cspID, a VLEK with a cspID and no hwID.
 *
 * Throws MalformedEvidence (`snp.cert.der`, `snp.cert.pem`, `snp.cert.size`, `snp.cert.extension`,
 * `snp.cert.extension_duplicate`) and ChainInvalid (`snp.cert.version`, `snp.cert.signature_algorithm`,
 * `snp.cert.public_key`, `snp.cert.subject`, `snp.cert.hwid`, `snp.cert.cspid`, `snp.cert.tcb`,
 * `snp.cert.leaf_is_ca`, `snp.cert.unknown_critical_extension`).
 */
export function parseAmdLeaf(input: Uint8Array | string): AmdLeaf {
  const cert = parseX509(loadDer(input));
  checkV3(cert, 'leaf');
  checkSignatureAlgorithm(cert, 'leaf');

  const cn = commonName(cert.subjectName);
  if (cn !== 'SEV-VCEK' && cn !== 'SEV-VLEK') {
    throw new ChainInvalid(
      'snp.cert.subject',
      `leaf subject ${formatName(cert.subjectName)} is not SEV-VCEK/SEV-VLEK`,
    );
  }
  const kind: AmdSigner = cn === 'SEV-VCEK' ? 'VCEK' : 'VLEK';

  if (cert.publicKeyAlgorithm.oid !== Oid.ecPublicKey || !isNamedCurve(cert, Oid.secp384r1)) {
    throw new ChainInvalid('snp.cert.public_key', 'leaf key is not ECDSA P-384');
  }
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: Buffer.from(cert.subjectPublicKeyInfo), format: 'der', type: 'spki' });
  } catch (e) {
    throw new ChainInvalid('snp.cert.public_key', 'leaf P-384 public key does not import', { cause: e });
  }

  // The leaf is an end entity: no CA flag (AMD leaves carry no BasicConstraints at all).
  if (basicConstraints(cert, 'snp.cert')?.ca) throw new ChainInvalid('snp.cert.leaf_is_ca', 'leaf is a CA');
  checkCriticalExtensions(cert.extensions, LEAF_KNOWN, 'snp.cert.unknown_critical_extension', 'leaf');

  const ext = readAmdExtensions((id) => extensionValue(cert, id), 'snp.cert.extension');
  const { structVersion, productName, hwId, cspId } = ext;
  const named = productName !== undefined ? productFromName(productName) : undefined;
  const { bl, tee, snp, ucode, ...optional } = ext.spl;
  if (bl === undefined || tee === undefined || snp === undefined || ucode === undefined) {
    throw new ChainInvalid('snp.cert.tcb', 'leaf lacks one of blSPL, teeSPL, snpSPL, ucodeSPL');
  }
  const spl: AmdSpl = { bl, tee, snp, ucode, ...optional };

  // hwID is the raw CHIP_ID bytes with no DER tag around them (KDS 57230); cspID is an IA5String.
  if (kind === 'VCEK') {
    if (!hwId || (hwId.length !== 64 && hwId.length !== 8)) {
      throw new ChainInvalid('snp.cert.hwid', 'VCEK must carry a 64-byte (or Turin 8-byte) hwID');
    }
    if (cspId !== undefined) throw new ChainInvalid('snp.cert.cspid', 'VCEK must not carry a cspID');
  } else {
    if (hwId) throw new ChainInvalid('snp.cert.hwid', 'VLEK must not carry a hwID');
    if (cspId === undefined) throw new ChainInvalid('snp.cert.cspid', 'VLEK must carry a cspID');
  }

  return {
    cert,
    kind,
    ...(structVersion !== undefined ? { structVersion } : {}),
    ...(productName !== undefined ? { productName } : {}),
    ...(named ? { product: named.product } : {}),
    ...(named?.stepping ? { stepping: named.stepping } : {}),
    spl,
    ...(hwId ? { hwId: Uint8Array.from(hwId) } : {}),
    ...(cspId !== undefined ? { cspId } : {}),
    publicKey,
  };
}

function isNamedCurve(c: X509Cert, curve: string): boolean {
  const p = c.publicKeyAlgorithm.parameters;
  if (!p || p.tag !== Tag.Oid) return false;
  try {
    return oid(p, 'snp.cert') === curve;
  } catch {
    return false;
  }
}

/**
 * The TCB_VERSION the leaf certifies, encoded for `product` (A3 / src/formats/snp/tcb.ts):
 * Milan, Genoa: b0 bl, b1 tee, b2-b5 spl_4..spl_7 (absent = 0), b6 snp, b7 ucode;
 * Turin: b0 fmc, b1 bl, b2 tee, b3 snp, b7 ucode (b4-b6 reserved, 0).
 */
export function leafTcbRaw(leaf: AmdLeaf, product: SnpProduct): bigint {
  const s = leaf.spl;
  const b =
    product === 'Turin'
      ? [s.fmc ?? 0, s.bl, s.tee, s.snp, 0, 0, 0, s.ucode]
      : [s.bl, s.tee, s.spl4 ?? 0, s.spl5 ?? 0, s.spl6 ?? 0, s.spl7 ?? 0, s.snp, s.ucode];
  return b.reduce((acc, v, i) => acc | (BigInt(v) << BigInt(8 * i)), 0n);
}

export function leafTcb(leaf: AmdLeaf, product: SnpProduct): Tcb {
  return decodeTcb(leafTcbRaw(leaf, product), product);
}

/**
 * The TCB components on which a report's REPORTED_TCB and the leaf disagree. Milan/Genoa compare all eight
 * bytes (the four reserved ones are the leaf's spl_4..spl_7, as go-sev-guest does). Turin compares the
 * defined components fmc, bl, tee, snp, ucode: how Turin's reserved bytes 4-6 map to the certificate's
 * spl_5..spl_7 is not documented, so they are not compared.
 */
export function tcbMismatches(leaf: AmdLeaf, reportedTcb: bigint, product: SnpProduct): string[] {
  const want = leafTcbRaw(leaf, product);
  const byte = (v: bigint, i: number) => Number((v >> BigInt(8 * i)) & 0xffn);
  const names =
    product === 'Turin'
      ? ([
          [0, 'fmc'],
          [1, 'bootloader'],
          [2, 'tee'],
          [3, 'snp'],
          [7, 'microcode'],
        ] as const)
      : ([
          [0, 'bootloader'],
          [1, 'tee'],
          [2, 'spl_4'],
          [3, 'spl_5'],
          [4, 'spl_6'],
          [5, 'spl_7'],
          [6, 'snp'],
          [7, 'microcode'],
        ] as const);
  return names.filter(([i]) => byte(want, i) !== byte(reportedTcb, i)).map(([, n]) => n);
}

/** A parsed and shape-checked AMD CA certificate (ARK, ASK or ASVK). */
export interface AmdCa {
  readonly cert: X509Cert;
  readonly publicKey: KeyObject;
  readonly ca: { readonly pathLen?: number };
  readonly keyUsage?: { readonly keyCertSign: boolean; readonly cRLSign: boolean };
}

/** RSA modulus floor for a CA key: AMD's are 4096-bit; anything below 2048 is not accepted at all. */
export const MIN_CA_RSA_BITS = 2048;

/**
 * Parses an ARK, ASK or ASVK (DER or PEM) and checks what does not depend on its place in the chain:
 * X.509 v3, RSASSA-PSS SHA-384 salt 48 signature algorithm, an RSA key of at least 2048 bits,
 * BasicConstraints CA:TRUE, keyCertSign if KeyUsage is present, no unknown critical extension.
 * `role` names the certificate in errors and reasons (`intermediate` or `root`).
 */
export function parseAmdCa(input: Uint8Array | string, role: 'intermediate' | 'root'): AmdCa {
  const cert = parseX509(loadDer(input));
  checkV3(cert, role);
  checkSignatureAlgorithm(cert, role);
  if (cert.publicKeyAlgorithm.oid !== Oid.rsaEncryption && cert.publicKeyAlgorithm.oid !== Oid.rsassaPss) {
    throw new ChainInvalid('snp.cert.public_key', `${role} key is not RSA`);
  }
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: Buffer.from(cert.subjectPublicKeyInfo), format: 'der', type: 'spki' });
  } catch (e) {
    throw new ChainInvalid('snp.cert.public_key', `${role} RSA public key does not import`, { cause: e });
  }
  const bits = publicKey.asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits < MIN_CA_RSA_BITS) {
    throw new ChainInvalid('snp.cert.public_key', `${role} RSA key has ${bits} bits (< ${MIN_CA_RSA_BITS})`);
  }
  checkCriticalExtensions(cert.extensions, CA_KNOWN, 'snp.cert.unknown_critical_extension', role);
  let bc: ReturnType<typeof basicConstraints>;
  let ku: ReturnType<typeof keyUsageOf>;
  try {
    bc = basicConstraints(cert, 'snp.cert');
    ku = keyUsageOf(cert, 'snp.cert');
  } catch (e) {
    throw new MalformedEvidence('snp.cert.extension', `${role} BasicConstraints/KeyUsage malformed`, {
      cause: e,
    });
  }
  // RFC 5280 §6.1.4 (k): an issuing certificate must assert CA in BasicConstraints.
  if (!bc?.ca) throw new ChainInvalid(`snp.chain.${role}_not_ca`, `${role} is not a CA certificate`);
  // §6.1.4 (n): if KeyUsage is present, keyCertSign must be set.
  if (ku && !ku.keyCertSign) {
    throw new ChainInvalid('snp.chain.key_usage', `${role} KeyUsage lacks keyCertSign`);
  }
  return {
    cert,
    publicKey,
    ca: bc.pathLen !== undefined ? { pathLen: bc.pathLen } : {},
    ...(ku ? { keyUsage: ku } : {}),
  };
}
