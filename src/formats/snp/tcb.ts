import type { SnpProduct } from './product.js';

/**
 * TCB_VERSION, a u64 whose byte layout depends on the product (SEV-SNP ABI 56860 rev 1.57, "TCB_VERSION";
 * Turin layout per the Turin ABI and virtee/sev). Byte i is bits 8i..8i+7.
 *
 *   Milan, Genoa: b0 BOOT_LOADER, b1 TEE, b2-b5 reserved (the VCEK's spl_4..spl_7), b6 SNP, b7 MICROCODE
 *   Turin:        b0 FMC, b1 BOOT_LOADER, b2 TEE, b3 SNP, b4-b6 reserved, b7 MICROCODE
 */
export interface Tcb {
  readonly raw: bigint;
  /** Turin only. */
  readonly fmc?: number;
  readonly bootloader: number;
  readonly tee: number;
  readonly snp: number;
  readonly microcode: number;
}

/** The components compared, in order, when one TCB is checked against another. */
export const TCB_COMPONENTS = ['fmc', 'bootloader', 'tee', 'snp', 'microcode'] as const;
export type TcbComponent = (typeof TCB_COMPONENTS)[number];

const byte = (raw: bigint, i: number): number => Number((raw >> BigInt(8 * i)) & 0xffn);

export function isTurinLayout(product: SnpProduct): boolean {
  return product === 'Turin';
}

export function decodeTcb(raw: bigint, product: SnpProduct): Tcb {
  if (isTurinLayout(product)) {
    return {
      raw,
      fmc: byte(raw, 0),
      bootloader: byte(raw, 1),
      tee: byte(raw, 2),
      snp: byte(raw, 3),
      microcode: byte(raw, 7),
    };
  }
  return { raw, bootloader: byte(raw, 0), tee: byte(raw, 1), snp: byte(raw, 6), microcode: byte(raw, 7) };
}

export interface TcbParts {
  fmc?: number;
  bootloader: number;
  tee: number;
  snp: number;
  microcode: number;
}

export function encodeTcb(parts: TcbParts, product: SnpProduct): bigint {
  const b = new Array<number>(8).fill(0);
  if (isTurinLayout(product)) {
    b[0] = parts.fmc ?? 0;
    b[1] = parts.bootloader;
    b[2] = parts.tee;
    b[3] = parts.snp;
  } else {
    b[0] = parts.bootloader;
    b[1] = parts.tee;
    b[6] = parts.snp;
  }
  b[7] = parts.microcode;
  return b.reduce((acc, v, i) => acc | (BigInt(v & 0xff) << BigInt(8 * i)), 0n);
}

/**
 * The components of `actual` that are below `minimum` (empty when every component is >=). TCBs are only
 * ordered component by component: a raw u64 comparison would let a high microcode hide a low SNP SPL.
 */
export function tcbComponentsBelow(actual: Tcb, minimum: Tcb): TcbComponent[] {
  return TCB_COMPONENTS.filter((c) => (actual[c] ?? 0) < (minimum[c] ?? 0));
}

export function formatTcb(t: Tcb): string {
  const parts = TCB_COMPONENTS.filter((c) => t[c] !== undefined).map((c) => `${c}=${t[c]}`);
  return `${parts.join(' ')} (0x${t.raw.toString(16).padStart(16, '0')})`;
}
