import { AttestationError, MalformedEvidence, NotSupported } from '../../errors.js';
import { bytesEqual, toHex } from '../../util/bytes.js';
import {
  bitString,
  checkOidContent,
  children,
  ctx,
  expectTag,
  oidContent,
  sequence,
  Tag,
  type Tlv,
  unsignedBytes,
} from '../der/reader.js';
import { bitString as bitStringDer, boolean, integer, NULL, tlv, unsignedInteger } from '../der/writer.js';
import { type CborValue, isArray, isBytes, isInt, isUint } from './cbor.js';
import { C509_DER, parseDer } from './der-input.js';
import {
  bytesToUint,
  encodeUtf8,
  isAscii,
  namedBitsDer,
  namedBitsToInt,
  oidDer,
  stringValue,
  uintToBytes,
} from './der-values.js';
import { generalNamesToC509, generalNamesToDer } from './general-names.js';
import { attributeToDer, nameToC509, nameToDer, specialTextFromString } from './name.js';
import {
  CERTIFICATE_POLICIES,
  EXTENDED_KEY_USAGES,
  EXTENSIONS,
  INFORMATION_ACCESS,
  lookupOid,
  type OidRegistry,
  POLICY_QUALIFIERS,
  RDN_ATTRIBUTES,
} from './registry.js';
import { Unrepresentable, unrepresentable } from './unrepresentable.js';

/**
 * C509 extensions (draft-ietf-cose-cbor-encoded-cert-20 §3.1.10 and §3.3).
 *
 * Extensions = [ * Extension ] / int; Extension = (int, Defined) // (~oid, bytes / [bytes]). A registered
 * extension uses its int (negative when critical) with the specific CBOR value when that value can carry the
 * X.509 content exactly; otherwise (and for unregistered extensions) the generic (~oid, extnValue) form is used,
 * with the extnValue wrapped in a one-element array when critical. A lone keyUsage collapses to one int.
 */

export interface X509Extension {
  /** OID content octets. */
  readonly oid: Uint8Array;
  readonly critical: boolean;
  /** The DER extnValue (content of the OCTET STRING). */
  readonly value: Uint8Array;
}

interface ExtCodec {
  toC509(extnValue: Uint8Array): CborValue;
  toDer(v: CborValue): Uint8Array;
}

function shape(what: string): never {
  throw new MalformedEvidence('c509.ext.shape', `${what}: extension value has the wrong shape`);
}

function num(v: number | bigint): number | bigint {
  return typeof v === 'bigint' && v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(v)
    : v;
}

/** int registered in `reg`, or the OID content octets (unwrapped ~oid). */
function oidOrInt(reg: OidRegistry, oid: Uint8Array): CborValue {
  const r = lookupOid(reg, oid);
  return r !== undefined ? r.value : new Uint8Array(oid);
}

function oidOrIntDer(reg: OidRegistry, v: CborValue, what: string): Uint8Array {
  if (isInt(v)) {
    const r = typeof v === 'number' ? reg.byValue[v] : undefined;
    if (r === undefined)
      throw new NotSupported('c509.ext.registry_value', `${what}: unregistered value ${v}`);
    return oidDer(r.oid);
  }
  if (isBytes(v)) return oidDer(v);
  return shape(what);
}

function pairs(v: CborValue, what: string, min = 2): CborValue[] {
  if (!isArray(v) || v.length < min || v.length % 2 !== 0) shape(what);
  return v;
}

// ---- the specific encodings ----

const subjectKeyIdentifier: ExtCodec = {
  toC509: (d) =>
    new Uint8Array(expectTag(parseDer(d), Tag.OctetString, C509_DER, 'SubjectKeyIdentifier').value),
  toDer: (v) => (isBytes(v) ? tlv(Tag.OctetString, v) : shape('subjectKeyIdentifier')),
};

const keyUsage: ExtCodec = {
  toC509: (d) => num(namedBitsToInt(bitString(parseDer(d), C509_DER))),
  toDer: (v) => (isUint(v) ? namedBitsDer(v) : shape('keyUsage')),
};

const altName: ExtCodec = {
  toC509: (d) => {
    const gns = generalNamesToC509(sequence(parseDer(d), C509_DER));
    // exactly one dNSName: just the text
    return gns.length === 2 && gns[0] === 2 ? gns[1]! : gns;
  },
  toDer: (v) =>
    typeof v === 'string'
      ? tlv(Tag.Sequence, ...generalNamesToDer([2, v], 'altName'))
      : tlv(Tag.Sequence, ...generalNamesToDer(v, 'altName')),
};

const basicConstraints: ExtCodec = {
  toC509: (d) => {
    const c = sequence(parseDer(d), C509_DER);
    if (c.length === 0) return -2;
    const ca = expectTag(c[0], Tag.Boolean, C509_DER, 'cA');
    if (ca.value.length !== 1 || ca.value[0] !== 0xff) unrepresentable('cA FALSE encoded explicitly');
    if (c.length === 1) return -1;
    if (c.length === 2) return num(bytesToUint(unsignedBytes(c[1]!, C509_DER)));
    return unrepresentable('BasicConstraints');
  },
  toDer: (v) => {
    if (v === -2) return tlv(Tag.Sequence);
    if (v === -1) return tlv(Tag.Sequence, boolean(true));
    if (isUint(v)) return tlv(Tag.Sequence, boolean(true), integer(v));
    return shape('basicConstraints');
  },
};

/** DistributionPoint list (cRLDistributionPoints and freshestCRL). */
const crlDistributionPoints: ExtCodec = {
  toC509: (d) => {
    const dps: CborValue[] = [];
    for (const dp of sequence(parseDer(d), C509_DER)) {
      let fullName: CborValue | undefined;
      let reasons: CborValue = null;
      let issuer: CborValue = null;
      for (const f of children(dp, C509_DER)) {
        if (f.tag === ctx(0, true)) {
          const dpn = children(f, C509_DER);
          if (dpn.length !== 1 || dpn[0]!.tag !== ctx(0, true)) unrepresentable('nameRelativeToCRLIssuer');
          const uris = children(dpn[0]!, C509_DER).map((gn) => {
            if (gn.tag !== ctx(6, false)) unrepresentable('fullName other than URIs');
            const s = stringValue({ ...gn, tag: Tag.Ia5String }, 'URI');
            return s;
          });
          if (uris.length === 0) unrepresentable('empty fullName');
          fullName = uris.length === 1 ? uris[0]! : uris;
        } else if (f.tag === ctx(1, false)) {
          reasons = num(namedBitsToInt(bitString({ ...f, tag: Tag.BitString }, C509_DER)));
        } else if (f.tag === ctx(2, true)) {
          const gns = children(f, C509_DER);
          if (gns.length !== 1 || gns[0]!.tag !== ctx(4, true))
            unrepresentable('cRLIssuer other than one directoryName');
          const inner = children(gns[0]!, C509_DER);
          if (inner.length !== 1) throw new MalformedEvidence('c509.der.structure', 'directoryName');
          issuer = nameToC509(inner[0]!);
        } else {
          throw new MalformedEvidence('c509.der.structure', 'DistributionPoint field');
        }
      }
      if (fullName === undefined) unrepresentable('DistributionPoint without distributionPoint');
      dps.push([fullName, reasons, issuer]);
    }
    if (dps.length === 0) unrepresentable('empty CRLDistributionPoints');
    const only = dps[0] as CborValue[];
    if (dps.length === 1 && typeof only[0] === 'string' && only[1] === null && only[2] === null)
      return only[0];
    return dps;
  },
  toDer: (v) => {
    const list: CborValue[] =
      typeof v === 'string'
        ? [[v, null, null]]
        : isArray(v) && v.length > 0
          ? v
          : shape('CRLDistributionPoints');
    const dps = list.map((dp) => {
      if (!isArray(dp) || dp.length !== 3) return shape('DistributionPoint');
      const [full, reasons, issuer] = dp;
      const uris =
        typeof full === 'string' ? [full] : isArray(full) && full.length >= 2 ? full : shape('fullName');
      const gns = uris.map((u) => {
        if (typeof u !== 'string' || !isAscii(u)) return shape('fullName URI');
        return tlv(ctx(6, false), encodeUtf8(u));
      });
      const parts = [tlv(ctx(0, true), tlv(ctx(0, true), ...gns))];
      if (reasons !== null) {
        if (!isUint(reasons)) return shape('reasons');
        parts.push(new Uint8Array([ctx(1, false), ...namedBitsDer(reasons).subarray(1)]));
      }
      if (issuer !== null) parts.push(tlv(ctx(2, true), tlv(ctx(4, true), nameToDer(issuer!, 'cRLIssuer'))));
      return tlv(Tag.Sequence, ...parts);
    });
    return tlv(Tag.Sequence, ...dps);
  },
};

const CPS = POLICY_QUALIFIERS.byValue[1]!;
const UNOTICE = POLICY_QUALIFIERS.byValue[2]!;

const certificatePolicies: ExtCodec = {
  toC509: (d) => {
    const out: CborValue[] = [];
    for (const pi of sequence(parseDer(d), C509_DER)) {
      const [idT, qualsT, ...more] = children(pi, C509_DER);
      if (more.length > 0) throw new MalformedEvidence('c509.der.structure', 'PolicyInformation');
      out.push(oidOrInt(CERTIFICATE_POLICIES, oidContent(idT!, C509_DER)));
      const quals: CborValue[] = [];
      if (qualsT !== undefined) {
        const list = sequence(qualsT, C509_DER);
        if (list.length === 0) unrepresentable('empty policyQualifiers');
        for (const pq of list) {
          const [qidT, qT, ...rest] = children(pq, C509_DER);
          if (rest.length > 0 || qT === undefined)
            throw new MalformedEvidence('c509.der.structure', 'PolicyQualifierInfo');
          const qid = oidContent(qidT!, C509_DER);
          let text: string;
          if (bytesEqual(qid, CPS.oid) && qT.tag === Tag.Ia5String) {
            text = stringValue(qT, 'cPSuri');
          } else if (bytesEqual(qid, UNOTICE.oid) && qT.tag === Tag.Sequence) {
            const un = children(qT, C509_DER);
            // only explicitText as UTF8String, no noticeRef (§3.3)
            if (un.length !== 1 || un[0]!.tag !== Tag.Utf8String)
              unrepresentable('UserNotice other than a UTF8String explicitText');
            text = stringValue(un[0]!, 'explicitText');
          } else {
            return unrepresentable('policy qualifier');
          }
          quals.push(oidOrInt(POLICY_QUALIFIERS, qid), text);
        }
      }
      out.push(quals);
    }
    if (out.length === 0) unrepresentable('empty CertificatePolicies');
    return out;
  },
  toDer: (v) => {
    const list = pairs(v, 'certificatePolicies');
    const pis: Uint8Array[] = [];
    for (let i = 0; i < list.length; i += 2) {
      const id = oidOrIntDer(CERTIFICATE_POLICIES, list[i]!, 'policyIdentifier');
      const quals = list[i + 1]!;
      if (!isArray(quals) || quals.length % 2 !== 0) return shape('policyQualifiers');
      const pqs: Uint8Array[] = [];
      for (let j = 0; j < quals.length; j += 2) {
        const qidDer = oidOrIntDer(POLICY_QUALIFIERS, quals[j]!, 'policyQualifierId');
        const text = quals[j + 1]!;
        if (typeof text !== 'string') return shape('qualifier');
        const qid = parseDer(qidDer).value;
        let q: Uint8Array;
        if (bytesEqual(qid, CPS.oid)) {
          if (!isAscii(text)) return shape('cPSuri');
          q = tlv(Tag.Ia5String, encodeUtf8(text));
        } else if (bytesEqual(qid, UNOTICE.oid)) {
          q = tlv(Tag.Sequence, tlv(Tag.Utf8String, encodeUtf8(text)));
        } else {
          throw new NotSupported(
            'c509.ext.policy_qualifier',
            'policy qualifier without a defined C509 value type',
          );
        }
        pqs.push(tlv(Tag.Sequence, qidDer, q));
      }
      pis.push(pqs.length > 0 ? tlv(Tag.Sequence, id, tlv(Tag.Sequence, ...pqs)) : tlv(Tag.Sequence, id));
    }
    return tlv(Tag.Sequence, ...pis);
  },
};

const authorityKeyIdentifier: ExtCodec = {
  toC509: (d) => {
    const f = sequence(parseDer(d), C509_DER);
    if (f.length === 1 && f[0]!.tag === ctx(0, false)) return new Uint8Array(f[0]!.value);
    if (
      f.length === 3 &&
      f[0]!.tag === ctx(0, false) &&
      f[1]!.tag === ctx(1, true) &&
      f[2]!.tag === ctx(2, false)
    ) {
      const serial = unsignedBytes({ ...f[2]!, tag: Tag.Integer }, C509_DER);
      return [
        new Uint8Array(f[0]!.value),
        generalNamesToC509(children(f[1]!, C509_DER)),
        new Uint8Array(serial),
      ];
    }
    return unrepresentable('AuthorityKeyIdentifier field combination');
  },
  toDer: (v) => {
    if (isBytes(v)) return tlv(Tag.Sequence, tlv(ctx(0, false), v));
    if (!isArray(v) || v.length !== 3 || !isBytes(v[0]!) || !isBytes(v[2]!))
      return shape('authorityKeyIdentifier');
    const serial = unsignedInteger(v[2]);
    return tlv(
      Tag.Sequence,
      tlv(ctx(0, false), v[0]),
      tlv(ctx(1, true), ...generalNamesToDer(v[1]!, 'authorityCertIssuer')),
      new Uint8Array([ctx(2, false), ...serial.subarray(1)]),
    );
  },
};

const extKeyUsage: ExtCodec = {
  toC509: (d) => {
    const ids = sequence(parseDer(d), C509_DER).map((o) =>
      oidOrInt(EXTENDED_KEY_USAGES, oidContent(o, C509_DER)),
    );
    if (ids.length === 0) unrepresentable('empty ExtKeyUsageSyntax');
    return ids.length === 1 ? ids[0]! : ids;
  },
  toDer: (v) => {
    const ids = isArray(v) ? (v.length >= 2 ? v : shape('extKeyUsage')) : [v];
    return tlv(Tag.Sequence, ...ids.map((x) => oidOrIntDer(EXTENDED_KEY_USAGES, x, 'KeyPurposeId')));
  },
};

const infoAccess: ExtCodec = {
  toC509: (d) => {
    const out: CborValue[] = [];
    for (const ad of sequence(parseDer(d), C509_DER)) {
      const [m, loc, ...more] = children(ad, C509_DER);
      if (more.length > 0 || loc === undefined)
        throw new MalformedEvidence('c509.der.structure', 'AccessDescription');
      if (loc.tag !== ctx(6, false)) unrepresentable('accessLocation other than a URI');
      out.push(
        oidOrInt(INFORMATION_ACCESS, oidContent(m!, C509_DER)),
        stringValue({ ...loc, tag: Tag.Ia5String }, 'URI'),
      );
    }
    if (out.length === 0) unrepresentable('empty InfoAccessSyntax');
    return out;
  },
  toDer: (v) => {
    const list = pairs(v, 'infoAccess');
    const ads: Uint8Array[] = [];
    for (let i = 0; i < list.length; i += 2) {
      const uri = list[i + 1]!;
      if (typeof uri !== 'string' || !isAscii(uri)) return shape('access location');
      ads.push(
        tlv(
          Tag.Sequence,
          oidOrIntDer(INFORMATION_ACCESS, list[i]!, 'accessMethod'),
          tlv(ctx(6, false), encodeUtf8(uri)),
        ),
      );
    }
    return tlv(Tag.Sequence, ...ads);
  },
};

const subjectDirectoryAttributes: ExtCodec = {
  toC509: (d) => {
    const out: CborValue[] = [];
    for (const attr of sequence(parseDer(d), C509_DER)) {
      const [typeT, valuesT, ...more] = children(attr, C509_DER);
      if (more.length > 0) throw new MalformedEvidence('c509.der.structure', 'Attribute');
      const oid = oidContent(typeT!, C509_DER);
      const values = sequence(valuesT, C509_DER, Tag.Set);
      if (values.length === 0) unrepresentable('empty attribute values');
      const reg = RDN_ATTRIBUTES.byOid[toHex(oid)];
      const tag0 = values[0]!.tag;
      const sameTag = values.every((x) => x.tag === tag0);
      const ok =
        reg !== undefined &&
        sameTag &&
        (reg.ia5Only ? tag0 === Tag.Ia5String : tag0 === Tag.Utf8String || tag0 === Tag.PrintableString);
      if (ok) {
        out.push(
          (tag0 === Tag.PrintableString ? -1 : 1) * reg.value,
          values.map((x) => specialTextFromString(stringValue(x, 'attribute value'))),
        );
      } else {
        out.push(
          new Uint8Array(oid),
          values.map((x) => new Uint8Array(x.raw)),
        );
      }
    }
    if (out.length === 0) unrepresentable('empty SubjectDirectoryAttributes');
    return out;
  },
  toDer: (v) => {
    const list = pairs(v, 'subjectDirectoryAttributes');
    const attrs: Uint8Array[] = [];
    for (let i = 0; i < list.length; i += 2) {
      const t = list[i]!;
      const vals = list[i + 1]!;
      if (!isArray(vals) || vals.length === 0) return shape('attribute values');
      let oid: Uint8Array;
      let ders: Uint8Array[];
      if (isInt(t)) {
        const enc = vals.map((x) => attributeToDer(t, x, 'subjectDirectoryAttributes'));
        oid = enc[0]!.oid;
        ders = enc.map((e) => e.value);
      } else if (isBytes(t)) {
        checkOidContent(t, C509_DER);
        oid = t;
        ders = vals.map((x) => {
          if (!isBytes(x)) return shape('attribute value');
          parseDer(x);
          return x;
        });
      } else {
        return shape('attribute type');
      }
      attrs.push(tlv(Tag.Sequence, oidDer(oid), tlv(Tag.Set, ...ders)));
    }
    return tlv(Tag.Sequence, ...attrs);
  },
};

const nameConstraints: ExtCodec = {
  toC509: (d) => {
    let permitted: CborValue = null;
    let excluded: CborValue = null;
    for (const f of sequence(parseDer(d), C509_DER)) {
      const subtrees = children(f, C509_DER).map((st) => {
        const parts = sequence(st, C509_DER);
        if (parts.length !== 1) unrepresentable('GeneralSubtree with minimum or maximum');
        return parts[0]!;
      });
      const gns = generalNamesToC509(subtrees, true);
      if (f.tag === ctx(0, true) && permitted === null) permitted = gns;
      else if (f.tag === ctx(1, true) && excluded === null) excluded = gns;
      else throw new MalformedEvidence('c509.der.structure', 'NameConstraints field');
    }
    return [permitted, excluded];
  },
  toDer: (v) => {
    if (!isArray(v) || v.length !== 2) return shape('nameConstraints');
    const parts: Uint8Array[] = [];
    v.forEach((subtrees, i) => {
      if (subtrees === null) return;
      const gns = generalNamesToDer(subtrees, 'GeneralSubtrees', true).map((g) => tlv(Tag.Sequence, g));
      parts.push(tlv(ctx(i, true), ...gns));
    });
    return tlv(Tag.Sequence, ...parts);
  },
};

const policyMappings: ExtCodec = {
  toC509: (d) => {
    const out: CborValue[] = [];
    for (const m of sequence(parseDer(d), C509_DER)) {
      const [a, b, ...more] = children(m, C509_DER);
      if (more.length > 0 || b === undefined)
        throw new MalformedEvidence('c509.der.structure', 'PolicyMapping');
      out.push(oidOrInt(CERTIFICATE_POLICIES, oidContent(a!, C509_DER)));
      out.push(oidOrInt(CERTIFICATE_POLICIES, oidContent(b, C509_DER)));
    }
    if (out.length === 0) unrepresentable('empty PolicyMappings');
    return out;
  },
  toDer: (v) => {
    const list = pairs(v, 'policyMappings');
    const ms: Uint8Array[] = [];
    for (let i = 0; i < list.length; i += 2) {
      ms.push(
        tlv(
          Tag.Sequence,
          oidOrIntDer(CERTIFICATE_POLICIES, list[i]!, 'issuerDomainPolicy'),
          oidOrIntDer(CERTIFICATE_POLICIES, list[i + 1]!, 'subjectDomainPolicy'),
        ),
      );
    }
    return tlv(Tag.Sequence, ...ms);
  },
};

const policyConstraints: ExtCodec = {
  toC509: (d) => {
    const out: CborValue[] = [null, null];
    for (const f of sequence(parseDer(d), C509_DER)) {
      const i = f.tag === ctx(0, false) ? 0 : f.tag === ctx(1, false) ? 1 : -1;
      if (i < 0 || out[i] !== null)
        throw new MalformedEvidence('c509.der.structure', 'PolicyConstraints field');
      out[i] = num(bytesToUint(unsignedBytes({ ...f, tag: Tag.Integer }, C509_DER)));
    }
    return out;
  },
  toDer: (v) => {
    if (!isArray(v) || v.length !== 2) return shape('policyConstraints');
    const parts: Uint8Array[] = [];
    v.forEach((x, i) => {
      if (x === null) return;
      if (!isUint(x)) shape('SkipCerts');
      parts.push(new Uint8Array([ctx(i, false), ...integer(x as number | bigint).subarray(1)]));
    });
    return tlv(Tag.Sequence, ...parts);
  },
};

const inhibitAnyPolicy: ExtCodec = {
  toC509: (d) => num(bytesToUint(unsignedBytes(parseDer(d), C509_DER))),
  toDer: (v) => (isUint(v) ? integer(v) : shape('inhibitAnyPolicy')),
};

// IPAddrBlocks (RFC 3779 §2.2.3, RFC 8360): an IPAddress BIT STRING as "unusedBits || value".
function ipBytes(t: Tlv): Uint8Array {
  const bs = bitString(t, C509_DER);
  return new Uint8Array([bs.unused, ...bs.bytes]);
}

function ipFromBytes(b: Uint8Array): Uint8Array {
  if (b.length === 0 || b[0]! > 7 || (b.length === 1 && b[0] !== 0)) shape('IPAddress');
  return bitStringDer(b.subarray(1), b[0]);
}

/** Int form: the big-endian integer of (unusedBits + 1) || value. */
function ipToInt(b: Uint8Array): bigint {
  return bytesToUint(new Uint8Array([b[0]! + 1, ...b.subarray(1)]));
}

function ipFromInt(x: bigint): Uint8Array {
  if (x <= 0n) shape('IntIPAddress');
  const b = uintToBytes(x);
  if (b[0]! < 1 || b[0]! > 8) shape('IntIPAddress');
  return new Uint8Array([b[0]! - 1, ...b.subarray(1)]);
}

function toBig(v: CborValue, what: string): bigint {
  if (!isInt(v)) return shape(what);
  return BigInt(v);
}

const ipAddrBlocks: ExtCodec = {
  toC509: (d) => {
    const out: CborValue[] = [];
    for (const fam of sequence(parseDer(d), C509_DER)) {
      const [afT, choice, ...more] = children(fam, C509_DER);
      if (more.length > 0 || choice === undefined)
        throw new MalformedEvidence('c509.der.structure', 'IPAddressFamily');
      const af = expectTag(afT, Tag.OctetString, C509_DER, 'addressFamily').value;
      if (af.length !== 2 && af.length !== 3)
        throw new MalformedEvidence('c509.der.structure', 'addressFamily');
      out.push((af[0]! << 8) | af[1]!, af.length === 3 ? af[2]! : null);
      if (choice.tag === Tag.Null) {
        if (choice.value.length !== 0) throw new MalformedEvidence('c509.der.structure', 'inherit');
        out.push(null);
        continue;
      }
      // each element: one IPAddress (prefix) or [min, max]
      const items = sequence(choice, C509_DER).map((x) => {
        if (x.tag === Tag.BitString) return ipBytes(x);
        const r = sequence(x, C509_DER);
        if (r.length !== 2) throw new MalformedEvidence('c509.der.structure', 'IPAddressRange');
        return [ipBytes(r[0]!), ipBytes(r[1]!)] as [Uint8Array, Uint8Array];
      });
      if (items.length === 0) unrepresentable('empty addressesOrRanges');
      const all = items.flatMap((x) => (x instanceof Uint8Array ? [x] : x));
      if (all.some((b) => b.length > 8)) {
        out.push(items);
        continue;
      }
      let prev = 0n;
      let first = true;
      const delta = (b: Uint8Array): CborValue => {
        const x = ipToInt(b);
        const r = first ? x : x - prev;
        first = false;
        prev = x;
        return num(r);
      };
      out.push(items.map((x) => (x instanceof Uint8Array ? delta(x) : [delta(x[0]), delta(x[1])])));
    }
    if (out.length === 0) unrepresentable('empty IPAddrBlocks');
    return out;
  },
  toDer: (v) => {
    if (!isArray(v) || v.length === 0 || v.length % 3 !== 0) return shape('IPAddrBlocks');
    const fams: Uint8Array[] = [];
    for (let i = 0; i < v.length; i += 3) {
      const afi = v[i]!;
      const safi = v[i + 1]!;
      const choice = v[i + 2]!;
      if (!isUint(afi) || afi > 0xffff || (safi !== null && (!isUint(safi) || safi > 0xff)))
        return shape('AFI/SAFI');
      const a = Number(afi);
      const af =
        safi === null ? new Uint8Array([a >> 8, a & 0xff]) : new Uint8Array([a >> 8, a & 0xff, Number(safi)]);
      let choiceDer: Uint8Array;
      if (choice === null) {
        choiceDer = NULL;
      } else {
        if (!isArray(choice) || choice.length === 0) return shape('IPAddressChoice');
        const flat = choice.flatMap((x) => (isArray(x) ? x : [x]));
        let elems: Uint8Array[];
        if (flat.every((x) => isBytes(x))) {
          elems = choice.map((x) => {
            if (isBytes(x)) return ipFromBytes(x);
            if (!isArray(x) || x.length !== 2 || !isBytes(x[0]!) || !isBytes(x[1]!))
              return shape('AddressRange');
            return tlv(Tag.Sequence, ipFromBytes(x[0]), ipFromBytes(x[1]));
          });
        } else if (flat.every((x) => isInt(x))) {
          let prev = 0n;
          let first = true;
          const undelta = (x: CborValue): Uint8Array => {
            const val = first ? toBig(x, 'IntIPAddress') : prev + toBig(x, 'IntIPAddress');
            first = false;
            prev = val;
            return ipFromBytes(ipFromInt(val));
          };
          elems = choice.map((x) => {
            if (isInt(x)) return undelta(x);
            if (!isArray(x) || x.length !== 2) return shape('IntAddressRange');
            return tlv(Tag.Sequence, undelta(x[0]!), undelta(x[1]!));
          });
        } else {
          return shape('IPAddressChoice');
        }
        choiceDer = tlv(Tag.Sequence, ...elems);
      }
      fams.push(tlv(Tag.Sequence, tlv(Tag.OctetString, af), choiceDer));
    }
    return tlv(Tag.Sequence, ...fams);
  },
};

const asIdentifiers: ExtCodec = {
  toC509: (d) => {
    const f = sequence(parseDer(d), C509_DER);
    if (f.length !== 1 || f[0]!.tag !== ctx(0, true))
      unrepresentable('ASIdentifiers with rdi or without asnum');
    const inner = children(f[0]!, C509_DER);
    if (inner.length !== 1) throw new MalformedEvidence('c509.der.structure', 'asnum');
    const choice = inner[0]!;
    if (choice.tag === Tag.Null) return null;
    let prev = 0n;
    let first = true;
    const delta = (t: Tlv): CborValue => {
      const x = bytesToUint(unsignedBytes(t, C509_DER));
      const r = first ? x : x - prev;
      if (r < 0n) unrepresentable('ASIds not ascending');
      first = false;
      prev = x;
      return num(r);
    };
    const out = sequence(choice, C509_DER).map((x) => {
      if (x.tag === Tag.Integer) return delta(x);
      const r = sequence(x, C509_DER);
      if (r.length !== 2) throw new MalformedEvidence('c509.der.structure', 'ASRange');
      return [delta(r[0]!), delta(r[1]!)];
    });
    if (out.length === 0) unrepresentable('empty asIdsOrRanges');
    return out;
  },
  toDer: (v) => {
    if (v === null) return tlv(Tag.Sequence, tlv(ctx(0, true), NULL));
    if (!isArray(v) || v.length === 0) return shape('ASIdentifiers');
    let prev = 0n;
    let first = true;
    const undelta = (x: CborValue): Uint8Array => {
      if (!isUint(x)) return shape('ASId');
      const val = first ? BigInt(x) : prev + BigInt(x);
      first = false;
      prev = val;
      return integer(val);
    };
    const elems = v.map((x) => {
      if (isInt(x)) return undelta(x);
      if (!isArray(x) || x.length !== 2) return shape('ASRange');
      return tlv(Tag.Sequence, undelta(x[0]!), undelta(x[1]!));
    });
    return tlv(Tag.Sequence, tlv(ctx(0, true), tlv(Tag.Sequence, ...elems)));
  },
};

const ocspNoCheck: ExtCodec = {
  toC509: (d) => {
    const t = parseDer(d);
    if (t.tag !== Tag.Null || t.value.length !== 0) unrepresentable('OCSP No Check other than NULL');
    return null;
  },
  toDer: (v) => (v === null ? NULL : shape('ocspNoCheck')),
};

const tlsFeatures: ExtCodec = {
  toC509: (d) => sequence(parseDer(d), C509_DER).map((x) => num(bytesToUint(unsignedBytes(x, C509_DER)))),
  toDer: (v) => {
    if (!isArray(v)) return shape('TLSFeatures');
    return tlv(Tag.Sequence, ...v.map((x) => (isUint(x) ? integer(x) : shape('TLS feature'))));
  },
};

const CODECS: Record<number, ExtCodec> = Object.assign(Object.create(null), {
  1: subjectKeyIdentifier,
  2: keyUsage,
  3: altName,
  4: basicConstraints,
  5: crlDistributionPoints,
  6: certificatePolicies,
  7: authorityKeyIdentifier,
  8: extKeyUsage,
  9: infoAccess,
  24: subjectDirectoryAttributes,
  25: altName,
  26: nameConstraints,
  27: policyMappings,
  28: policyConstraints,
  29: crlDistributionPoints,
  30: inhibitAnyPolicy,
  31: infoAccess,
  32: ipAddrBlocks,
  33: asIdentifiers,
  34: ipAddrBlocks,
  35: asIdentifiers,
  36: ocspNoCheck,
  38: tlsFeatures,
});

const KEY_USAGE_OID = EXTENSIONS.byValue[2]!.oid;

// ---- the Extensions field ----

/** Parses a DER `Extensions` SEQUENCE OF Extension. */
export function parseX509Extensions(t: Tlv): X509Extension[] {
  return sequence(t, C509_DER).map((e) => {
    const f = sequence(e, C509_DER);
    const oid = oidContent(f[0]!, C509_DER);
    let critical = false;
    let i = 1;
    if (f[1]?.tag === Tag.Boolean) {
      if (f[1].value.length !== 1) throw new MalformedEvidence('c509.der.structure', 'critical');
      critical = f[1].value[0] !== 0;
      i = 2;
    }
    const value = expectTag(f[i], Tag.OctetString, C509_DER, 'extnValue').value;
    if (f.length !== i + 1) throw new MalformedEvidence('c509.der.structure', 'Extension has extra fields');
    return { oid: new Uint8Array(oid), critical, value: new Uint8Array(value) };
  });
}

/** DER `Extensions` SEQUENCE OF Extension (critical written only when TRUE, as DER requires). */
export function x509ExtensionsDer(exts: readonly X509Extension[]): Uint8Array {
  return tlv(
    Tag.Sequence,
    ...exts.map((e) =>
      e.critical
        ? tlv(Tag.Sequence, oidDer(e.oid), boolean(true), tlv(Tag.OctetString, e.value))
        : tlv(Tag.Sequence, oidDer(e.oid), tlv(Tag.OctetString, e.value)),
    ),
  );
}

/** One extension's C509 (extensionID, extensionValue), choosing the specific form when it is exact. */
export function extensionToC509(e: X509Extension): [CborValue, CborValue] {
  const reg = lookupOid(EXTENSIONS, e.oid);
  const codec = reg ? CODECS[reg.value] : undefined;
  if (reg && codec) {
    try {
      const v = codec.toC509(e.value);
      if (bytesEqual(codec.toDer(v), e.value)) return [e.critical ? -reg.value : reg.value, v];
    } catch (err) {
      // Not representable (or not DER inside): the generic form below carries it unchanged.
      if (!(err instanceof Unrepresentable) && !(err instanceof AttestationError)) throw err;
    }
  }
  return [new Uint8Array(e.oid), e.critical ? [new Uint8Array(e.value)] : new Uint8Array(e.value)];
}

/**
 * The C509 `extensions` field for a list of X.509 extensions (§3.1.10): an array of pairs, or a single int
 * when keyUsage is the only extension (its sign is the criticality).
 */
export function extensionsToC509(exts: readonly X509Extension[]): CborValue {
  const items: CborValue[] = [];
  for (const e of exts) items.push(...extensionToC509(e));
  if (items.length === 2 && (items[0] === 2 || items[0] === -2) && isUint(items[1]!)) {
    const v = items[1] as number | bigint;
    // -0 does not exist: a critical keyUsage with no bits keeps the array form.
    if (!(items[0] === -2 && v === 0)) return items[0] < 0 ? -v : v;
  }
  return items;
}

/** The X.509 extensions a C509 `extensions` field stands for; MalformedEvidence `c509.ext.*` on bad shapes. */
export function extensionsFromC509(v: CborValue): X509Extension[] {
  if (isInt(v)) {
    const neg = v < 0;
    const abs = typeof v === 'bigint' ? (neg ? -v : v) : Math.abs(v);
    return [{ oid: KEY_USAGE_OID, critical: neg, value: namedBitsDer(abs) }];
  }
  if (!isArray(v) || v.length % 2 !== 0)
    throw new MalformedEvidence('c509.ext.shape', 'extensions must be pairs or an int');
  const out: X509Extension[] = [];
  for (let i = 0; i < v.length; i += 2) {
    const id = v[i]!;
    const val = v[i + 1]!;
    if (isInt(id)) {
      const abs = typeof id === 'bigint' ? undefined : Math.abs(id);
      if (abs === 0) throw new MalformedEvidence('c509.ext.shape', 'extensionID 0 is not defined');
      const reg = abs !== undefined ? EXTENSIONS.byValue[abs] : undefined;
      const codec = abs !== undefined ? CODECS[abs] : undefined;
      if (!reg || !codec) throw new NotSupported('c509.ext.unknown', `unknown C509 extension ${id}`);
      out.push({ oid: reg.oid, critical: id < 0, value: codec.toDer(val) });
    } else if (isBytes(id)) {
      checkOidContent(id, C509_DER);
      let value: CborValue;
      let critical = false;
      if (isBytes(val)) value = val;
      else if (isArray(val) && val.length === 1 && isBytes(val[0]!)) {
        value = val[0];
        critical = true;
      } else {
        throw new MalformedEvidence('c509.ext.shape', 'an OID extension needs bytes or [bytes]');
      }
      out.push({ oid: id, critical, value: value as Uint8Array });
    } else {
      throw new MalformedEvidence('c509.ext.shape', 'extensionID must be an int or an OID');
    }
  }
  return out;
}
