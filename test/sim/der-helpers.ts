import { constants, type KeyObject, verify, X509Certificate } from 'node:crypto';
import * as asn1js from 'asn1js';

/**
 * Test-side DER helpers, written independently of src/sim's encoder: split a signed structure
 * (certificate or CRL) into its parts, verify an RSASSA-PSS signature with plain node:crypto, and reduce a
 * DER tree to its shape (tags and OIDs, not values) so simulator output can be compared with AMD's.
 */

/** Reads one TLV at `off`; returns its header length and content length. */
function tlv(der: Uint8Array, off: number): { header: number; length: number } {
  const first = der[off + 1]!;
  if (first < 0x80) return { header: 2, length: first };
  const n = first & 0x7f;
  let length = 0;
  for (let i = 0; i < n; i++) length = length * 256 + der[off + 2 + i]!;
  return { header: 2 + n, length };
}

/** { tbs, algorithm, signature } of a Certificate or CertificateList (RFC 5280 4.1 / 5.1). */
export function splitSigned(der: Uint8Array): {
  tbs: Uint8Array;
  algorithm: Uint8Array;
  signature: Uint8Array;
} {
  const outer = tlv(der, 0);
  let off = outer.header;
  const take = () => {
    const t = tlv(der, off);
    const whole = der.subarray(off, off + t.header + t.length);
    const content = der.subarray(off + t.header, off + t.header + t.length);
    off += t.header + t.length;
    return { whole, content };
  };
  const tbs = take().whole;
  const algorithm = take().whole;
  const bits = take().content;
  if (bits[0] !== 0) throw new Error('signature BIT STRING has unused bits');
  return { tbs, algorithm, signature: bits.subarray(1) };
}

export function publicKeyOf(certDer: Uint8Array): KeyObject {
  return new X509Certificate(certDer).publicKey;
}

/** RSASSA-PSS SHA-384 / MGF1-SHA-384 / salt 48 check with node:crypto only. */
export function verifyPss(signedDer: Uint8Array, issuerKey: KeyObject): boolean {
  const { tbs, signature } = splitSigned(signedDer);
  return verify(
    'sha384',
    tbs,
    { key: issuerKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 48 },
    signature,
  );
}

/**
 * The shape of a DER tree, one line per node: depth, tag class/number, constructed flag, and the value of
 * OIDs. Times read as "time" (AMD's certificates end before 2050 and use UTCTime; ours may need
 * GeneralizedTime). Values and lengths are left out.
 */
export function derShape(der: Uint8Array): string[] {
  const out: string[] = [];
  const walk = (node: asn1js.AsnType, depth: number) => {
    const n = node as asn1js.BaseBlock & { valueBlock: { value?: asn1js.AsnType[] } };
    const id = n.idBlock;
    let label = `${id.tagClass}:${id.tagNumber}${id.isConstructed ? 'c' : ''}`;
    if (node instanceof asn1js.ObjectIdentifier) label += ` ${node.valueBlock.toString()}`;
    if (id.tagClass === 1 && (id.tagNumber === 23 || id.tagNumber === 24)) label = 'time';
    out.push(`${'.'.repeat(depth)}${label}`);
    if (id.isConstructed) for (const c of n.valueBlock.value ?? []) walk(c, depth + 1);
  };
  const parsed = asn1js.fromBER(der);
  if (parsed.offset === -1) throw new Error(`DER does not parse: ${parsed.result.error}`);
  walk(parsed.result, 0);
  return out;
}

export interface ExtensionView {
  readonly oid: string;
  readonly critical: boolean;
  readonly value: Uint8Array;
}

/** The extensions of a certificate, in order, via @peculiar/x509-independent asn1js parsing. */
export function extensionsOf(certDer: Uint8Array): ExtensionView[] {
  const cert = asn1js.fromBER(certDer).result as asn1js.Sequence;
  const tbs = cert.valueBlock.value[0] as asn1js.Sequence;
  const wrapper = tbs.valueBlock.value.find((n) => n.idBlock.tagClass === 3 && n.idBlock.tagNumber === 3) as
    | asn1js.Constructed
    | undefined;
  if (!wrapper) return [];
  const list = wrapper.valueBlock.value[0] as asn1js.Sequence;
  return list.valueBlock.value.map((e) => {
    const parts = (e as asn1js.Sequence).valueBlock.value;
    const oid = (parts[0] as asn1js.ObjectIdentifier).valueBlock.toString();
    const critical = parts.length === 3 && (parts[1] as asn1js.Boolean).valueBlock.value;
    const octets = parts[parts.length - 1] as asn1js.OctetString;
    return { oid, critical, value: new Uint8Array(octets.valueBlock.valueHexView) };
  });
}

/**
 * How an extension value is encoded, without its data: 'raw:<len>' for AMD's untagged hwID, the DER tag of
 * INTEGER/IA5String values, or the exact hex for the fixed CA extensions whose bytes do not depend on keys.
 */
export function extensionEncoding(e: ExtensionView): string {
  if (e.oid === '1.3.6.1.4.1.3704.1.4') return `raw:${e.value.length}`;
  if (e.oid.startsWith('1.3.6.1.4.1.3704.')) return `tag:${e.value[0]!.toString(16)}`;
  if (e.oid === '2.5.29.14' || e.oid === '2.5.29.35') return `keyid:${e.value.length}`;
  return Buffer.from(e.value).toString('hex');
}
