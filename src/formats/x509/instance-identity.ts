import { InvalidArgument, MalformedEvidence } from '../../errors.js';
import {
  boolean,
  checkDerTree,
  ctx,
  parseOne,
  sequence,
  type Tlv,
  unsignedBig,
  utf8String,
} from '../der/reader.js';
import {
  boolean as booleanDer,
  sequence as derSequence,
  explicit,
  integer,
  utf8String as utf8Der,
} from '../der/writer.js';
import { type Certificate, type Extension, findExtension } from './certificate.js';

/**
 * The platform-identity certificate extension that Google Compute Engine puts in vTPM EK and AK
 * certificates (OID 1.3.6.1.4.1.11129.2.1.21, "CloudComputeInstanceIdentifier"; go-tpm-tools
 * `server/verify.go` gceInstanceInfo; names of the security properties [2]-[5] from Google's `certinfo`
 * Go package). Vouchsafe reads it from GCE certificates and writes the same schema — under the GCE OID or an
 * operator-configured one — into the certificates its platform CA issues:
 *
 * ```
 * SEQUENCE {
 *   zone UTF8String, projectNumber INTEGER, projectId UTF8String, instanceId INTEGER, instanceName UTF8String,
 *   securityProperties [0] EXPLICIT SEQUENCE {
 *     securityVersion [0] EXPLICIT INTEGER OPTIONAL, isProduction [1] EXPLICIT BOOLEAN OPTIONAL,
 *     tpmDataAlwaysEncrypted [2] EXPLICIT BOOLEAN OPTIONAL, suspendResumeAlwaysDisabled [3] ... OPTIONAL,
 *     vmtdAlwaysDisabled [4] ... OPTIONAL, alwaysInYarn [5] ... OPTIONAL } OPTIONAL }
 * ```
 * Absent and present-but-FALSE are kept apart so that writing what was read reproduces the same DER.
 * Later context-tagged fields (tag ≥ 6 inside securityProperties, ≥ 1 after it) are skipped, as Go's
 * encoding/asn1 does: the schema has grown that way before ([2]-[5] are newer than go-tpm-tools' struct).
 */

export const GCE_INSTANCE_IDENTITY_OID = '1.3.6.1.4.1.11129.2.1.21';

export interface SecurityProperties {
  readonly securityVersion?: bigint;
  /** go-tpm-tools reports no instance information unless this is TRUE. */
  readonly isProduction?: boolean;
  readonly tpmDataAlwaysEncrypted?: boolean;
  readonly suspendResumeAlwaysDisabled?: boolean;
  readonly vmtdAlwaysDisabled?: boolean;
  readonly alwaysInYarn?: boolean;
}

/**
 * The extension's own structure (Google's wire format, field for field). Not the platform identity the broker
 * registers (src/formats/platform-identity.ts `PlatformIdentity`: project, zone, instanceId and instanceName as
 * opaque strings): this one has a project number and integer ids. The CA writes what it is given and nothing
 * converts one into the other; were a mapping needed, projectId ↔ project, zone ↔ zone, instanceName ↔
 * instanceName and instanceId ↔ its decimal text would hold, and projectNumber has no counterpart.
 */
export interface GceInstanceIdentity {
  readonly zone: string;
  readonly projectNumber: bigint;
  readonly projectId: string;
  readonly instanceId: bigint;
  readonly instanceName: string;
  readonly securityProperties?: SecurityProperties;
}

const R = 'x509.instance_identity';
/** Zones, project ids and instance names are at most 63 characters in GCE; 255 leaves room. */
const MAX_STRING = 255;
const MAX_U64 = (1n << 64n) - 1n;
/** The extension is about 110 bytes in real certificates. */
const MAX_EXTENSION = 2048;

const BOOLEAN_PROPS = [
  [1, 'isProduction'],
  [2, 'tpmDataAlwaysEncrypted'],
  [3, 'suspendResumeAlwaysDisabled'],
  [4, 'vmtdAlwaysDisabled'],
  [5, 'alwaysInYarn'],
] as const;

function str(n: Tlv | undefined, field: string): string {
  const s = utf8String(n, `${R}.${field}`);
  if (Buffer.byteLength(s) > MAX_STRING) throw new MalformedEvidence(`${R}.${field}`, `${field} is too long`);
  return s;
}

function u64(n: Tlv | undefined, field: string): bigint {
  const v = unsignedBig(n, `${R}.${field}`);
  if (v > MAX_U64) throw new MalformedEvidence(`${R}.${field}`, `${field} exceeds 64 bits`);
  return v;
}

const isContext = (n: Tlv | undefined, tag: number): n is Tlv =>
  n !== undefined && (n.tag & 0xdf) === ctx(tag, false);

/** One [tag] EXPLICIT wrapper: exactly one inner element. */
function explicitInner(n: Tlv, field: string): Tlv {
  const inner = sequence(n, `${R}.${field}`, n.tag);
  if (inner.length !== 1) throw new MalformedEvidence(`${R}.${field}`, `[${field}] must wrap one element`);
  return inner[0]!;
}

function checkTrailing(fields: readonly Tlv[], after: number, reason: string): void {
  let last = after;
  for (const f of fields) {
    if ((f.tag & 0xc0) !== 0x80 || (f.tag & 0x1f) <= last) {
      throw new MalformedEvidence(reason, 'unexpected or out-of-order field');
    }
    last = f.tag & 0x1f;
  }
}

function readSecurityProperties(n: Tlv): SecurityProperties {
  const reason = `${R}.security_properties`;
  const fields = sequence(explicitInner(n, 'security_properties'), reason);
  const out: { -readonly [K in keyof SecurityProperties]: SecurityProperties[K] } = {};
  let i = 0;
  if (isContext(fields[i], 0)) {
    out.securityVersion = u64(explicitInner(fields[i]!, 'security_version'), 'security_version');
    i++;
  }
  for (const [tag, name] of BOOLEAN_PROPS) {
    if (isContext(fields[i], tag)) {
      out[name] = boolean(explicitInner(fields[i]!, name), `${R}.${name}`);
      i++;
    }
  }
  checkTrailing(fields.slice(i), 5, reason);
  return out;
}

/**
 * Parses the extension value (extnValue contents). Throws MalformedEvidence `x509.instance_identity`
 * (structure, non-DER), `.zone`, `.project_number`, `.project_id`, `.instance_id`, `.instance_name`,
 * `.security_properties`, `.security_version`, `.<property>`.
 */
export function parseInstanceIdentity(der: Uint8Array): GceInstanceIdentity {
  if (der.length > MAX_EXTENSION)
    throw new MalformedEvidence(R, `extension of ${der.length} bytes is too large`);
  const top = parseOne(der, R);
  checkDerTree(top, R);
  const f = sequence(top, R);
  if (f.length < 5) throw new MalformedEvidence(R, `instance identity has ${f.length} fields, needs 5`);
  const id = {
    zone: str(f[0], 'zone'),
    projectNumber: u64(f[1], 'project_number'),
    projectId: str(f[2], 'project_id'),
    instanceId: u64(f[3], 'instance_id'),
    instanceName: str(f[4], 'instance_name'),
  };
  let rest = f.slice(5);
  if (isContext(rest[0], 0)) {
    const securityProperties = readSecurityProperties(rest[0]);
    rest = rest.slice(1);
    checkTrailing(rest, 0, R);
    return { ...id, securityProperties };
  }
  checkTrailing(rest, 0, R);
  return id;
}

function checkOut(ok: boolean, field: string, why: string): void {
  if (!ok) throw new InvalidArgument(`${R}.${field}`, `${field}: ${why}`);
}

/**
 * Encodes an instance identity as extnValue DER. Throws InvalidArgument `x509.instance_identity.<field>`
 * for values the schema cannot carry (strings over 255 bytes, integers outside 0..2^64-1).
 */
export function encodeInstanceIdentity(id: GceInstanceIdentity): Uint8Array {
  for (const [field, s] of [
    ['zone', id.zone],
    ['project_id', id.projectId],
    ['instance_name', id.instanceName],
  ] as const) {
    checkOut(
      typeof s === 'string' && Buffer.byteLength(s) <= MAX_STRING,
      field,
      'must be a string of ≤ 255 bytes',
    );
  }
  for (const [field, v] of [
    ['project_number', id.projectNumber],
    ['instance_id', id.instanceId],
    ['security_version', id.securityProperties?.securityVersion ?? 0n],
  ] as const) {
    checkOut(typeof v === 'bigint' && v >= 0n && v <= MAX_U64, field, 'must be a bigint in 0..2^64-1');
  }
  const value = [
    utf8Der(id.zone),
    integer(id.projectNumber),
    utf8Der(id.projectId),
    integer(id.instanceId),
    utf8Der(id.instanceName),
  ];
  const sp = id.securityProperties;
  if (sp) {
    const props: Uint8Array[] = [];
    if (sp.securityVersion !== undefined) props.push(explicit(0, integer(sp.securityVersion)));
    for (const [tag, name] of BOOLEAN_PROPS) {
      const b = sp[name];
      if (b !== undefined) props.push(explicit(tag, booleanDer(b)));
    }
    value.push(explicit(0, derSequence(...props)));
  }
  return derSequence(...value);
}

/** The extension as a certificate builder takes it (non-critical, like GCE's). */
export function instanceIdentityExtension(
  id: GceInstanceIdentity,
  oid = GCE_INSTANCE_IDENTITY_OID,
): Extension {
  return { oid, critical: false, value: encodeInstanceIdentity(id) };
}

/**
 * Reads the instance identity from a certificate under `oid` (the GCE OID unless the operator configured
 * another): undefined when the certificate has no such extension; MalformedEvidence when it is malformed.
 */
export function readInstanceIdentity(
  cert: Certificate,
  oid = GCE_INSTANCE_IDENTITY_OID,
): GceInstanceIdentity | undefined {
  const ext = findExtension(cert, oid);
  return ext === undefined ? undefined : parseInstanceIdentity(ext.value);
}
