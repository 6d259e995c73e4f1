import { ia5String, integer } from '../../formats/der/writer.js';
import { AmdOid, hwIdOf } from '../../formats/snp/amd-cert-extensions.js';
import type { SnpProduct } from '../../formats/snp/product.js';
import type { TcbParts } from '../../formats/snp/tcb.js';
import type { Extension } from '../../formats/x509/extensions.js';

export { AmdOid, hwIdOf } from '../../formats/snp/amd-cert-extensions.js';

/** productName as AMD writes it: the VCEK names Milan's stepping, 2026 Genoa/Turin VCEKs and VLEKs do not. */
export function amdProductName(product: SnpProduct, leaf: 'VCEK' | 'VLEK'): string {
  return product === 'Milan' && leaf === 'VCEK' ? 'Milan-B0' : product;
}

export type LeafIdentity = { kind: 'VCEK'; chipId: Uint8Array } | { kind: 'VLEK'; cspId: string };

/**
 * The ordered AMD extensions of a VCEK or VLEK for `tcb` (spl_4..spl_7 are the TCB's reserved bytes: 0).
 * AMD's VCEK/VLEK extensions (KDS spec 57230, "VCEK Certificate" / "VLEK Certificate"; OIDs and value
 * encodings in src/formats/snp/amd-cert-extensions.ts), encoded and ordered exactly as in AMD's
 * certificates in shared/vectors:
 *
 *   Milan/Genoa VCEK: .1 .2 .3.1 .3.2 .3.4 .3.5 .3.6 .3.7 .3.3 .3.8 .4   (snpSPL after spl_7: AMD's order)
 *   Turin VCEK:       .1 .2 .3.9 .3.1 .3.2 .3.3 .3.5 .3.6 .3.7 .3.8 .4   (fmcSPL first, no spl_4)
 *   Milan VLEK:       as the Milan VCEK with .5 cspID in place of .4 hwID
 *
 * INTEGER and IA5String values are DER inside extnValue; hwID (.4) is the raw chip ID with no DER tag at all.
 * Not seen on real hardware here: Genoa and Turin VLEKs (no vector); they follow their product's VCEK layout.
 */
export function amdLeafExtensions(product: SnpProduct, tcb: TcbParts, leaf: LeafIdentity): Extension[] {
  const extension = (id: string, value: Uint8Array): Extension => ({ oid: id, critical: false, value });
  const int = (id: string, v: number) => extension(id, integer(v));
  const head = [
    int(AmdOid.structVersion, product === 'Turin' ? 1 : 0),
    extension(AmdOid.productName, ia5String(amdProductName(product, leaf.kind))),
  ];
  const spls =
    product === 'Turin'
      ? [
          int(AmdOid.fmcSPL, tcb.fmc ?? 0),
          int(AmdOid.blSPL, tcb.bootloader),
          int(AmdOid.teeSPL, tcb.tee),
          int(AmdOid.snpSPL, tcb.snp),
          int(AmdOid.spl5, 0),
          int(AmdOid.spl6, 0),
          int(AmdOid.spl7, 0),
          int(AmdOid.ucodeSPL, tcb.microcode),
        ]
      : [
          int(AmdOid.blSPL, tcb.bootloader),
          int(AmdOid.teeSPL, tcb.tee),
          int(AmdOid.spl4, 0),
          int(AmdOid.spl5, 0),
          int(AmdOid.spl6, 0),
          int(AmdOid.spl7, 0),
          int(AmdOid.snpSPL, tcb.snp),
          int(AmdOid.ucodeSPL, tcb.microcode),
        ];
  const identity =
    leaf.kind === 'VCEK'
      ? extension(AmdOid.hwID, hwIdOf(product, leaf.chipId))
      : extension(AmdOid.cspID, ia5String(leaf.cspId));
  return [...head, ...spls, identity];
}
