import * as asn1js from 'asn1js';
import { MalformedEvidence } from '../../errors.js';

/**
 * Strict DER decoding on top of asn1js (X.690 §10): asn1js accepts BER (indefinite lengths, long-form
 * lengths for short values, any non-zero byte as TRUE, invalid UTF-8), so every decoded node is walked again
 * and anything that is not DER is rejected. Resource limits bound hostile input (depth, node count), and
 * any exception asn1js throws becomes MalformedEvidence with the caller's reason.
 */

export type Node = asn1js.AsnType;

const LIMITS = { maxDepth: 32, maxNodes: 4096, parseEmbedded: false } as const;

/** Tag classes as asn1js numbers them. */
export const TagClass = { universal: 1, application: 2, context: 3, private: 4 } as const;

function lengthOctets(n: number): number {
  if (n < 0x80) return 1;
  let k = 0;
  for (let v = n; v > 0; v = Math.floor(v / 256)) k++;
  return 1 + k;
}

function idOctets(tagNumber: number): number {
  if (tagNumber < 31) return 1;
  let k = 0;
  for (let v = tagNumber; v > 0; v = Math.floor(v / 128)) k++;
  return 1 + k;
}

function checkDer(node: Node, reason: string): void {
  const whole = node.valueBeforeDecodeView;
  const len = node.lenBlock;
  const id = node.idBlock;
  // DER (X.690 §10.2) encodes strings primitively: only SEQUENCE and SET are constructed universals.
  if (id.isConstructed && id.tagClass === TagClass.universal && id.tagNumber !== 16 && id.tagNumber !== 17) {
    throw new MalformedEvidence(reason, `${reason}: constructed universal tag ${id.tagNumber} is not DER`);
  }
  if (len.isIndefiniteForm) throw new MalformedEvidence(reason, `${reason}: indefinite length is not DER`);
  const header = idOctets(node.idBlock.tagNumber) + lengthOctets(len.length);
  if (whole.length !== header + len.length) {
    throw new MalformedEvidence(reason, `${reason}: non-minimal tag or length encoding is not DER`);
  }
  if (node.idBlock.isConstructed) {
    const children = (node.valueBlock as { value?: Node[] }).value ?? [];
    for (const c of children) checkDer(c, reason);
  }
  if (node instanceof asn1js.Boolean) {
    const v = node.valueBlock.valueHexView;
    if (v.length !== 1 || (v[0] !== 0x00 && v[0] !== 0xff)) {
      throw new MalformedEvidence(reason, `${reason}: BOOLEAN must be 00 or FF in DER`);
    }
  }
}

/**
 * Decodes exactly one DER element filling `bytes`. Throws MalformedEvidence `reason` for BER-only forms,
 * trailing bytes, truncation, or input over the resource limits.
 */
export function decodeDer(bytes: Uint8Array, reason: string): Node {
  let res: { offset: number; result: Node };
  try {
    res = asn1js.fromBER(bytes, LIMITS) as { offset: number; result: Node };
  } catch (cause) {
    throw new MalformedEvidence(reason, `${reason}: not decodable DER`, { cause });
  }
  if (res.offset === -1 || res.result.error) {
    throw new MalformedEvidence(reason, `${reason}: not decodable DER (${res.result.error || 'error'})`);
  }
  if (res.offset !== bytes.length) {
    throw new MalformedEvidence(reason, `${reason}: ${bytes.length - res.offset} trailing bytes after DER`);
  }
  try {
    checkDer(res.result, reason);
  } catch (e) {
    if (e instanceof MalformedEvidence) throw e;
    throw new MalformedEvidence(reason, `${reason}: not decodable DER`, { cause: e });
  }
  return res.result;
}

export function isUniversal(n: Node, tag: number): boolean {
  return n.idBlock.tagClass === TagClass.universal && n.idBlock.tagNumber === tag;
}

export function isContext(n: Node, tag: number): boolean {
  return n.idBlock.tagClass === TagClass.context && n.idBlock.tagNumber === tag;
}

/** The children of a constructed node (SEQUENCE, SET, or explicit context tag). */
export function children(n: Node, reason: string): Node[] {
  if (!n.idBlock.isConstructed)
    throw new MalformedEvidence(reason, `${reason}: expected a constructed element`);
  return (n.valueBlock as { value: Node[] }).value;
}

/** The children of a SEQUENCE (universal 16). */
export function sequence(n: Node | undefined, reason: string): Node[] {
  if (n === undefined || !isUniversal(n, 16))
    throw new MalformedEvidence(reason, `${reason}: expected a SEQUENCE`);
  return children(n, reason);
}

/** A non-negative INTEGER as a bigint (negative values are rejected: ids and counters are unsigned). */
export function unsignedInteger(n: Node | undefined, reason: string): bigint {
  if (n === undefined || !(n instanceof asn1js.Integer)) {
    throw new MalformedEvidence(reason, `${reason}: expected an INTEGER`);
  }
  const v = n.valueBlock.valueHexView;
  if (
    v.length === 0 ||
    (v.length > 1 && ((v[0] === 0 && v[1]! < 0x80) || (v[0] === 0xff && v[1]! >= 0x80)))
  ) {
    throw new MalformedEvidence(reason, `${reason}: INTEGER is not minimally encoded`);
  }
  if (v[0]! >= 0x80) throw new MalformedEvidence(reason, `${reason}: INTEGER is negative`);
  return BigInt(`0x${Buffer.from(v).toString('hex')}`);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A UTF8String's text; invalid UTF-8 is MalformedEvidence (asn1js would silently substitute). */
export function utf8String(n: Node | undefined, reason: string): string {
  if (n === undefined || !isUniversal(n, 12) || n.idBlock.isConstructed) {
    throw new MalformedEvidence(reason, `${reason}: expected a UTF8String`);
  }
  try {
    return utf8.decode((n as asn1js.Utf8String).valueBlock.valueHexView);
  } catch (cause) {
    throw new MalformedEvidence(reason, `${reason}: UTF8String is not valid UTF-8`, { cause });
  }
}

export function booleanValue(n: Node | undefined, reason: string): boolean {
  if (n === undefined || !(n instanceof asn1js.Boolean)) {
    throw new MalformedEvidence(reason, `${reason}: expected a BOOLEAN`);
  }
  return n.valueBlock.valueHexView[0] === 0xff;
}

export function oidValue(n: Node | undefined, reason: string): string {
  if (n === undefined || !(n instanceof asn1js.ObjectIdentifier)) {
    throw new MalformedEvidence(reason, `${reason}: expected an OBJECT IDENTIFIER`);
  }
  const s = n.getValue();
  if (!/^\d+(\.\d+)+$/.test(s)) throw new MalformedEvidence(reason, `${reason}: invalid OBJECT IDENTIFIER`);
  return s;
}

export function octetString(n: Node | undefined, reason: string): Uint8Array {
  if (n === undefined || !(n instanceof asn1js.OctetString) || n.idBlock.isConstructed) {
    throw new MalformedEvidence(reason, `${reason}: expected a primitive OCTET STRING`);
  }
  return n.valueBlock.valueHexView;
}

/** The exact DER bytes of a decoded node (a view into the input). */
export function rawBytes(n: Node): Uint8Array {
  return n.valueBeforeDecodeView;
}
