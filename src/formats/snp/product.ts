/**
 * AMD EPYC generations that sign SEV-SNP reports, and how to tell them apart.
 * CPUID ranges: SEV-SNP ABI 56860 (report v3+ CPUID_FAM_ID/CPUID_MOD_ID), as used by virtee/sev and go-sev-guest.
 */
export const SnpProducts = ['Milan', 'Genoa', 'Turin'] as const;
export type SnpProduct = (typeof SnpProducts)[number];

export function isSnpProduct(s: string): s is SnpProduct {
  return (SnpProducts as readonly string[]).includes(s);
}

/** Product from the combined (extended + base) CPUID family and model in a v3+ report. */
export function productFromCpuid(family: number, model: number): SnpProduct | undefined {
  if (family === 0x19) {
    if (model <= 0x0f) return 'Milan';
    if ((model >= 0x10 && model <= 0x1f) || (model >= 0xa0 && model <= 0xaf)) return 'Genoa';
  }
  if (family === 0x1a && model <= 0x11) return 'Turin';
  return undefined;
}

/**
 * Product (and stepping, when present) from a VCEK/VLEK productName extension: "Milan-B0", "Genoa" (2026
 * Genoa VCEKs carry no stepping), "Turin", "Milan" (VLEK).
 */
export function productFromName(name: string): { product: SnpProduct; stepping?: string } | undefined {
  const m = /^([A-Za-z]+)(?:-([A-Z][0-9]))?$/.exec(name);
  if (!m || !isSnpProduct(m[1]!)) return undefined;
  return m[2] ? { product: m[1]!, stepping: m[2] } : { product: m[1]! };
}
