import { InvalidArgument } from '../errors.js';
import {
  checkDerTree,
  children,
  derFail,
  oid as oidOf,
  parseOne,
  sequence,
  Tag,
} from '../formats/der/reader.js';
import { type Der, sequence as derSequence, oid, setOf, tlv } from '../formats/der/writer.js';
import type { GceInstanceIdentity } from '../formats/x509/instance-identity.js';
import type { NameTemplate } from './config.js';
import { x509 } from './x509-lib.js';

/**
 * Distinguished names for the CA (RFC 5280 §4.1.2.4). @peculiar/x509's Name parses RFC 4514 text and
 * JSON; the CA then re-encodes DirectoryString values as UTF8String (RFC 5280 §4.1.2.6 lets a CA choose
 * PrintableString or UTF8String; UTF8String is the one both X.509 and natively signed C509 certificates
 * carry the same way). countryName, serialNumber and dnQualifier stay PrintableString (X.520), IA5String
 * attributes (emailAddress, domainComponent) stay IA5String.
 */

const PRINTABLE_ONLY = new Set(['2.5.4.6', '2.5.4.5', '2.5.4.46']);

function preferUtf8(der: Uint8Array): Uint8Array {
  const r = 'ca.name';
  const top = parseOne(der, r);
  checkDerTree(top, r);
  const rdns = sequence(top, r).map((rdn) => {
    const atvs = children(rdn, r).map((atv) => {
      const [type, value] = sequence(atv, r);
      const id = oidOf(type, r);
      if (value === undefined) derFail(r, 'structure', 'missing attribute value');
      let v: Der = Uint8Array.from(value.raw);
      if (value.tag === Tag.PrintableString && !PRINTABLE_ONLY.has(id)) {
        const text = Buffer.from(value.value).toString('latin1');
        v = tlv(Tag.Utf8String, new Uint8Array(Buffer.from(text, 'utf8')));
      }
      return derSequence(oid(id), v);
    });
    return setOf(...atvs);
  });
  return derSequence(...rdns);
}

/** The empty Name (SEQUENCE {}), the subject of TCG EK certificates. */
export const EMPTY_NAME = Uint8Array.of(0x30, 0x00);

/** DER of an RFC 4514 string such as `CN=Vouchsafe Root, O=Example`. Throws InvalidArgument `ca.name`. */
export function nameFromString(s: string): Uint8Array {
  if (s.trim() === '') return EMPTY_NAME;
  try {
    return preferUtf8(new Uint8Array(new x509.Name(s).toArrayBuffer()));
  } catch {
    throw new InvalidArgument('ca.name', `not a distinguished name: ${s}`);
  }
}

/** RFC 4514 text of a DER Name (for display). */
export function nameToString(der: Uint8Array): string {
  return new x509.Name(Uint8Array.from(der).buffer).toString();
}

/** The placeholder values a subject template may use. */
export function identityPlaceholders(id: GceInstanceIdentity): Record<string, string> {
  return {
    instanceId: id.instanceId.toString(),
    instanceName: id.instanceName,
    projectId: id.projectId,
    projectNumber: id.projectNumber.toString(),
    zone: id.zone,
  };
}

/**
 * DER of a subject template filled in for an instance. Values are substituted before encoding, so a
 * comma or equals sign in an instance name cannot inject another attribute. Throws InvalidArgument
 * `ca.name` (unknown placeholder or attribute).
 */
export function nameFromTemplate(template: NameTemplate, id: GceInstanceIdentity): Uint8Array {
  if (template.length === 0) return EMPTY_NAME;
  const values = identityPlaceholders(id);
  const json = template.map((rdn) => {
    const [type, pattern] = Object.entries(rdn)[0]!;
    const value = pattern.replace(/\{(\w+)\}/g, (_m, key: string) => {
      const v = values[key];
      if (v === undefined)
        throw new InvalidArgument('ca.name', `unknown placeholder {${key}} in the subject template`);
      return v;
    });
    return { [type]: [value] };
  });
  try {
    return preferUtf8(new Uint8Array(new x509.Name(json).toArrayBuffer()));
  } catch {
    throw new InvalidArgument('ca.name', 'the subject template has an unknown attribute type');
  }
}
