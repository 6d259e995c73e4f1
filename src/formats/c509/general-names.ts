import { MalformedEvidence, NotSupported } from '../../errors.js';
import {
  checkOidContent,
  children,
  ctx,
  decodeUtf8,
  expectTag,
  oidContent,
  Tag,
  type Tlv,
} from '../der/reader.js';
import { tlv } from '../der/writer.js';
import { type CborValue, isArray, isBytes, isInt } from './cbor.js';
import { C509_DER, parseDer } from './der-input.js';
import { encodeUtf8, isAscii, oidDer, stringValue } from './der-values.js';
import { nameToC509, nameToDer } from './name.js';
import { lookupOid, OTHER_NAMES } from './registry.js';
import { unrepresentable } from './unrepresentable.js';

/**
 * C509 GeneralName (draft-20 §3.3 subjectAltName, C509 General Names registry §8.13):
 * GeneralName = ( GeneralNameType : int, GeneralNameValue : any ). otherName with hardwareModuleName,
 * SmtpUTF8Mailbox and MACAddress have their own negative types. x400Address and ediPartyName have none.
 *
 * `constraint` mode is the nameConstraints variant (§3.3, RFC 9549 §2.2): an iPAddress there is address plus
 * prefix length (5 or 17 octets) instead of address plus mask (8 or 32 octets).
 */

function ia5Text(t: Tlv, what: string): string {
  const s = decodeUtf8(t.value, C509_DER);
  if (!isAscii(s)) unrepresentable(`${what}: not IA5`);
  return s;
}

function maskToPrefix(mask: Uint8Array): number {
  let n = 0;
  let ended = false;
  for (const b of mask) {
    for (let i = 7; i >= 0; i--) {
      const bit = (b >> i) & 1;
      if (bit && ended) unrepresentable('non-contiguous name-constraint mask');
      if (bit) n++;
      else ended = true;
    }
  }
  return n;
}

function prefixToMask(n: number, len: number): Uint8Array {
  const out = new Uint8Array(len);
  for (let i = 0; i < n; i++) out[i >> 3]! |= 0x80 >> (i & 7);
  return out;
}

/** One DER GeneralName as a C509 (type, value) pair; throws Unrepresentable for choices C509 lacks. */
export function generalNameToC509(t: Tlv, constraint = false): [number, CborValue] {
  switch (t.tag) {
    case ctx(0, true): {
      const [typeId, wrapped, ...more] = children(t, C509_DER);
      if (more.length > 0 || wrapped === undefined)
        throw new MalformedEvidence('c509.der.structure', 'otherName');
      const oid = oidContent(typeId!, C509_DER);
      const inner = children(expectTag(wrapped, ctx(0, true), C509_DER, 'otherName value'), C509_DER);
      if (inner.length !== 1) throw new MalformedEvidence('c509.der.structure', 'otherName value');
      const value = inner[0]!;
      const reg = lookupOid(OTHER_NAMES, oid);
      if (reg?.value === -1 && value.tag === Tag.Sequence) {
        const hw = children(value, C509_DER);
        if (hw.length === 2 && hw[0]!.tag === Tag.Oid && hw[1]!.tag === Tag.OctetString) {
          return [-1, [new Uint8Array(oidContent(hw[0]!, C509_DER)), new Uint8Array(hw[1]!.value)]];
        }
      }
      if (reg?.value === -2 && value.tag === Tag.Utf8String)
        return [-2, stringValue(value, 'SmtpUTF8Mailbox')];
      if (reg?.value === -3 && value.tag === Tag.OctetString) return [-3, new Uint8Array(value.value)];
      return [0, [new Uint8Array(oid), new Uint8Array(value.raw)]];
    }
    case ctx(1, false):
      return [1, ia5Text(t, 'rfc822Name')];
    case ctx(2, false):
      return [2, ia5Text(t, 'dNSName')];
    case ctx(4, true): {
      const inner = children(t, C509_DER);
      if (inner.length !== 1) throw new MalformedEvidence('c509.der.structure', 'directoryName');
      return [4, nameToC509(inner[0]!)];
    }
    case ctx(6, false):
      return [6, ia5Text(t, 'uniformResourceIdentifier')];
    case ctx(7, false): {
      const b = t.value;
      if (!constraint) return [7, new Uint8Array(b)];
      if (b.length !== 8 && b.length !== 32) unrepresentable('name-constraint iPAddress length');
      const half = b.length / 2;
      return [7, new Uint8Array([...b.subarray(0, half), maskToPrefix(b.subarray(half))])];
    }
    case ctx(8, false): {
      const oid = new Uint8Array(t.value);
      checkOidContent(oid, C509_DER);
      return [8, oid];
    }
    default:
      return unrepresentable(`GeneralName choice 0x${t.tag.toString(16)}`);
  }
}

function asciiText(v: CborValue, what: string): Uint8Array {
  if (typeof v !== 'string' || !isAscii(v))
    throw new MalformedEvidence('c509.general_name.shape', `${what}: expected ASCII text`);
  return encodeUtf8(v);
}

function otherName(oid: Uint8Array, value: Uint8Array): Uint8Array {
  return tlv(ctx(0, true), oidDer(oid), tlv(ctx(0, true), value));
}

/** DER GeneralName of a C509 (type, value) pair. */
export function generalNameToDer(type: CborValue, value: CborValue, constraint = false): Uint8Array {
  if (!isInt(type) || typeof type === 'bigint')
    throw new MalformedEvidence('c509.general_name.shape', 'GeneralName type');
  switch (type) {
    case -3:
      if (!isBytes(value)) throw new MalformedEvidence('c509.general_name.shape', 'MACAddress');
      return otherName(OTHER_NAMES.byValue[-3]!.oid, tlv(Tag.OctetString, value));
    case -2:
      if (typeof value !== 'string')
        throw new MalformedEvidence('c509.general_name.shape', 'SmtpUTF8Mailbox');
      return otherName(OTHER_NAMES.byValue[-2]!.oid, tlv(Tag.Utf8String, encodeUtf8(value)));
    case -1: {
      if (!isArray(value) || value.length !== 2 || !isBytes(value[0]!) || !isBytes(value[1]!)) {
        throw new MalformedEvidence('c509.general_name.shape', 'hardwareModuleName');
      }
      return otherName(
        OTHER_NAMES.byValue[-1]!.oid,
        tlv(Tag.Sequence, oidDer(value[0]), tlv(Tag.OctetString, value[1])),
      );
    }
    case 0: {
      if (!isArray(value) || value.length !== 2 || !isBytes(value[0]!) || !isBytes(value[1]!)) {
        throw new MalformedEvidence('c509.general_name.shape', 'otherName');
      }
      parseDer(value[1]);
      return otherName(value[0], value[1]);
    }
    case 1:
      return tlv(ctx(1, false), asciiText(value, 'rfc822Name'));
    case 2:
      return tlv(ctx(2, false), asciiText(value, 'dNSName'));
    case 4:
      return tlv(ctx(4, true), nameToDer(value, 'directoryName'));
    case 6:
      return tlv(ctx(6, false), asciiText(value, 'uniformResourceIdentifier'));
    case 7: {
      if (!isBytes(value)) throw new MalformedEvidence('c509.general_name.shape', 'iPAddress');
      if (!constraint) return tlv(ctx(7, false), value);
      if (value.length !== 5 && value.length !== 17) {
        throw new MalformedEvidence(
          'c509.general_name.shape',
          'name-constraint iPAddress must be 5 or 17 octets',
        );
      }
      const len = value.length - 1;
      const prefix = value[len]!;
      if (prefix > len * 8)
        throw new MalformedEvidence('c509.general_name.shape', 'name-constraint prefix too long');
      return tlv(ctx(7, false), value.subarray(0, len), prefixToMask(prefix, len));
    }
    case 8:
      if (!isBytes(value)) throw new MalformedEvidence('c509.general_name.shape', 'registeredID');
      checkOidContent(value, C509_DER);
      return tlv(ctx(8, false), value);
    default:
      throw new NotSupported('c509.general_name.unknown', `unknown C509 GeneralName type ${type}`);
  }
}

/** GeneralNames (a SEQUENCE OF, or the content of an implicitly tagged one) as flat C509 pairs. */
export function generalNamesToC509(items: readonly Tlv[], constraint = false): CborValue[] {
  if (items.length === 0) unrepresentable('empty GeneralNames');
  const out: CborValue[] = [];
  for (const gn of items) out.push(...generalNameToC509(gn, constraint));
  return out;
}

/** DER GeneralName encodings of flat C509 pairs (to be wrapped by the caller's SEQUENCE or tag). */
export function generalNamesToDer(v: CborValue, what: string, constraint = false): Uint8Array[] {
  if (!isArray(v) || v.length === 0 || v.length % 2 !== 0) {
    throw new MalformedEvidence(
      'c509.general_name.shape',
      `${what}: GeneralNames must be a non-empty list of pairs`,
    );
  }
  const out: Uint8Array[] = [];
  for (let i = 0; i < v.length; i += 2) out.push(generalNameToDer(v[i]!, v[i + 1]!, constraint));
  return out;
}
