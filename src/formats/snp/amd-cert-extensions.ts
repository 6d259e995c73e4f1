import { AttestationError, MalformedEvidence } from '../../errors.js';
import { asciiString, parseOne, smallUint, Tag } from '../der/reader.js';
import type { SnpProduct } from './product.js';

/**
 * AMD's VCEK/VLEK certificate extensions (KDS spec 57230, "VCEK Certificate Extensions" and the VLEK
 * variant), OID arc 1.3.6.1.4.1.3704.1: the one place their OIDs and value encodings are known. INTEGER
 * and IA5String values are DER inside extnValue; hwID (.4) is the raw chip ID with no DER tag at all.
 * The SNP verifier, the collateral cache (which files VCEKs by them) and the simulator (which writes
 * them) all use this module.
 */

/** AMD extension OIDs (KDS 57230 Table "VCEK certificate extensions"). */
export const AmdOid = {
  structVersion: '1.3.6.1.4.1.3704.1.1',
  productName: '1.3.6.1.4.1.3704.1.2',
  blSPL: '1.3.6.1.4.1.3704.1.3.1',
  teeSPL: '1.3.6.1.4.1.3704.1.3.2',
  snpSPL: '1.3.6.1.4.1.3704.1.3.3',
  spl4: '1.3.6.1.4.1.3704.1.3.4',
  spl5: '1.3.6.1.4.1.3704.1.3.5',
  spl6: '1.3.6.1.4.1.3704.1.3.6',
  spl7: '1.3.6.1.4.1.3704.1.3.7',
  ucodeSPL: '1.3.6.1.4.1.3704.1.3.8',
  fmcSPL: '1.3.6.1.4.1.3704.1.3.9',
  hwID: '1.3.6.1.4.1.3704.1.4',
  cspID: '1.3.6.1.4.1.3704.1.5',
} as const;

/** Security patch levels, one TCB byte each (0-255); an absent extension is undefined. */
export interface AmdSplValues {
  readonly bl?: number;
  readonly tee?: number;
  readonly snp?: number;
  readonly ucode?: number;
  readonly fmc?: number;
  readonly spl4?: number;
  readonly spl5?: number;
  readonly spl6?: number;
  readonly spl7?: number;
}

/** The AMD extensions a certificate carries, decoded; whether the right ones are present is the caller's check. */
export interface AmdExtensionValues {
  readonly structVersion?: number;
  /** productName as written ("Milan-B0", "Genoa", "Turin", "Milan"). */
  readonly productName?: string;
  readonly spl: AmdSplValues;
  /** VCEK: the CHIP_ID bytes (64, or 8 on Turin). */
  readonly hwId?: Uint8Array;
  /** VLEK: the CSP's name, e.g. "CN=cc-us-east-2.amazonaws.com". */
  readonly cspId?: string;
}

const SPLS = [
  ['bl', AmdOid.blSPL, 'blSPL'],
  ['tee', AmdOid.teeSPL, 'teeSPL'],
  ['snp', AmdOid.snpSPL, 'snpSPL'],
  ['ucode', AmdOid.ucodeSPL, 'ucodeSPL'],
  ['fmc', AmdOid.fmcSPL, 'fmc'],
  ['spl4', AmdOid.spl4, 'spl4'],
  ['spl5', AmdOid.spl5, 'spl5'],
  ['spl6', AmdOid.spl6, 'spl6'],
  ['spl7', AmdOid.spl7, 'spl7'],
] as const;

/** Runs a value decoder and reports any failure as MalformedEvidence `reason` naming the extension. */
function decode<T>(reason: string, why: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (!(e instanceof AttestationError)) throw e;
    throw new MalformedEvidence(reason, why, { cause: e });
  }
}

/**
 * Decodes the AMD extensions found by `value` (extension OID -> extnValue contents). Throws
 * MalformedEvidence `reason` for an SPL that is not an INTEGER 0-255, a structVersion that is not a small
 * INTEGER, or a productName/cspID that is not one printable-ASCII string.
 */
export function readAmdExtensions(
  value: (oid: string) => Uint8Array | undefined,
  reason: string,
): AmdExtensionValues {
  const integer = (id: string, name: string, max: number, what: string): number | undefined => {
    const v = value(id);
    return v === undefined
      ? undefined
      : decode(reason, `${name} is not ${what}`, () =>
          smallUint(parseOne(v, reason, Tag.Integer), reason, max),
        );
  };
  const string = (id: string, name: string): string | undefined => {
    const v = value(id);
    return v === undefined
      ? undefined
      : decode(reason, `${name} is not an ASCII string`, () => asciiString(parseOne(v, reason), reason));
  };
  const structVersion = integer(AmdOid.structVersion, 'structVersion', 0xffff, 'a small INTEGER');
  const productName = string(AmdOid.productName, 'productName');
  const spl: Record<string, number> = {};
  for (const [key, id, name] of SPLS) {
    const n = integer(id, name, 255, 'an INTEGER 0-255');
    if (n !== undefined) spl[key] = n;
  }
  const hwId = value(AmdOid.hwID);
  const cspId = string(AmdOid.cspID, 'cspID');
  return {
    ...(structVersion !== undefined ? { structVersion } : {}),
    ...(productName !== undefined ? { productName } : {}),
    spl,
    ...(hwId !== undefined ? { hwId } : {}),
    ...(cspId !== undefined ? { cspId } : {}),
  };
}

/** How many CHIP_ID bytes a VCEK's hwID carries (KDS 57230): all 64 on Milan and Genoa, the first 8 on Turin. */
export function hwIdLength(product: SnpProduct): 8 | 64 {
  return product === 'Turin' ? 8 : 64;
}

/** The CHIP_ID bytes a VCEK's hwID carries for `product`. */
export function hwIdOf(product: SnpProduct, chipId: Uint8Array): Uint8Array {
  return chipId.subarray(0, hwIdLength(product));
}
