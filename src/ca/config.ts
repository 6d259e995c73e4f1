import { InvalidArgument } from '../errors.js';
import type { TrustedRoot } from '../evidence/snp/roots.js';
import { isSnpProduct } from '../formats/snp/product.js';
import { GCE_INSTANCE_IDENTITY_OID, type SecurityProperties } from '../formats/x509/instance-identity.js';
import { parseSnpPolicy } from '../policy/snp/parse.js';
import type { SnpPolicy } from '../policy/snp/policy.js';
import { type CaKeyType, KEY_TYPES, SIGNATURE_ALGORITHMS, type SignatureAlgorithm } from './algorithms.js';
import type { TpmDeviceInfo, TpmSpecification } from './extensions.js';

/**
 * The CA's configuration, stored as `ca.json` in the CA directory and written by `vouchsafe ca init`.
 * Every field has a documented default (docs/ca.md "Configuration"); the file always holds every field,
 * so what the CA does is visible in one place.
 */

/** One RDN of a subject template: attribute short name (CN, O, OU, L, ST, C, serialNumber) → value. */
export type NameTemplate = readonly Readonly<Record<string, string>>[];

export type SanType = 'dns' | 'uri' | 'email' | 'ip';

export interface CaConfig {
  readonly version: 1;
  readonly keyType: CaKeyType;
  readonly signatureAlgorithm: SignatureAlgorithm;
  /** Lifetimes in days (CRL: days until nextUpdate). */
  readonly lifetimes: {
    readonly caDays: number;
    readonly ekDays: number;
    readonly akDays: number;
    readonly crlDays: number;
  };
  /** URIs written into cRLDistributionPoints of every issued certificate (empty: no extension). */
  readonly crlDistributionPoints: readonly string[];
  /** URI of the CA certificate for authorityInfoAccess caIssuers (null: no extension). */
  readonly caIssuersUrl: string | null;
  /** OID of the instance-identity extension (default: GCE's 1.3.6.1.4.1.11129.2.1.21, same schema). */
  readonly identityOid: string;
  /**
   * securityProperties written into the identity extension, or null to omit them. Note: go-tpm-tools
   * reports no instance information unless isProduction is TRUE.
   */
  readonly identitySecurityProperties: SecurityProperties | null;
  /** Default TPM manufacturer/model/version for the TCG subjectAltName (a request may give its own). */
  readonly tpm: TpmDeviceInfo;
  readonly tpmSpecification: TpmSpecification;
  /**
   * Subject of AK certificates: RDNs whose values may use {instanceId}, {instanceName}, {projectId},
   * {projectNumber}, {zone}. Empty: empty subject and a critical TCG subjectAltName, like an EK certificate.
   */
  readonly akSubject: NameTemplate;
  /** Lifetime of an issued nonce (route a) and of a pending credential activation (route b), seconds. */
  readonly nonceTtlSeconds: number;
  readonly activationTtlSeconds: number;
  /** SEV-SNP evidence for route (a): extra trusted roots (e.g. the simulator's) and the appraisal policy. */
  readonly snp: { readonly trustedRoots: readonly TrustedRoot[]; readonly policy: SnpPolicy };
  /** What the CA takes from a certification request: its subject ('request') or the template, and which SAN types. */
  readonly csr: { readonly subject: 'template' | 'request'; readonly allowedSan: readonly SanType[] };
}

export const DEFAULT_TPM_INFO: TpmDeviceInfo = {
  // COCONUT's vTPM is the TCG reference implementation (TPM_PT_MANUFACTURER "MSFT"); set the values your
  // vTPM reports (tpm2_getcap properties-fixed). Not verified against a running COCONUT vTPM.
  manufacturer: 'id:4D534654',
  model: 'COCONUT-SVSM vTPM',
  version: 'id:00000000',
};

export function defaultCaConfig(keyType: CaKeyType = 'p384'): CaConfig {
  return {
    version: 1,
    keyType,
    signatureAlgorithm: KEY_TYPES[keyType]!.signature,
    lifetimes: { caDays: 3650 * 2, ekDays: 3650, akDays: 365, crlDays: 7 },
    crlDistributionPoints: [],
    caIssuersUrl: null,
    identityOid: GCE_INSTANCE_IDENTITY_OID,
    identitySecurityProperties: null,
    tpm: DEFAULT_TPM_INFO,
    tpmSpecification: { family: '2.0', level: 0, revision: 159 },
    akSubject: [
      { L: '{zone}' },
      { O: 'Vouchsafe Platform CA' },
      { OU: '{projectId}' },
      { CN: '{instanceId}' },
    ],
    nonceTtlSeconds: 300,
    activationTtlSeconds: 300,
    snp: { trustedRoots: [], policy: {} },
    csr: { subject: 'template', allowedSan: [] },
  };
}

const SAN_TYPES: readonly SanType[] = ['dns', 'uri', 'email', 'ip'];

function fail(field: string, why: string): never {
  throw new InvalidArgument('ca.config', `ca.json: ${field} ${why}`);
}

function obj(v: unknown, field: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(field, 'must be an object');
  return v as Record<string, unknown>;
}

function days(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 36500)
    fail(field, 'must be whole days 1..36500');
  return v;
}

function str(v: unknown, field: string): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > 1024) fail(field, 'must be a non-empty string');
  return v;
}

function uriList(v: unknown, field: string): string[] {
  if (!Array.isArray(v)) fail(field, 'must be an array of URIs');
  return v.map((u, i) => {
    const s = str(u, `${field}[${i}]`);
    if (!/^[\x21-\x7e]+:[\x21-\x7e]+$/.test(s)) fail(`${field}[${i}]`, 'must be an ASCII URI');
    return s;
  });
}

function oidText(v: unknown, field: string): string {
  const s = str(v, field);
  if (!/^[0-2](\.\d+)+$/.test(s)) fail(field, 'must be a dotted OID');
  return s;
}

function seconds(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 86400)
    fail(field, 'must be 1..86400 seconds');
  return v;
}

/**
 * Validates a parsed `ca.json`. Throws InvalidArgument `ca.config` naming the field, or `policy.invalid`
 * for a bad SNP policy.
 */
export function parseCaConfig(json: unknown): CaConfig {
  const c = obj(json, '(top level)');
  if (c.version !== 1) fail('version', 'must be 1');
  const keyType = c.keyType as CaKeyType;
  if (typeof c.keyType !== 'string' || KEY_TYPES[c.keyType] === undefined) fail('keyType', 'is unknown');
  const sigAlg = c.signatureAlgorithm as SignatureAlgorithm;
  const sa = typeof sigAlg === 'string' ? SIGNATURE_ALGORITHMS[sigAlg] : undefined;
  if (sa === undefined || sa.keyKind !== KEY_TYPES[keyType]!.kind)
    fail('signatureAlgorithm', 'does not fit keyType');
  const l = obj(c.lifetimes, 'lifetimes');
  const tpm = obj(c.tpm, 'tpm');
  const spec = obj(c.tpmSpecification, 'tpmSpecification');
  if (!Number.isInteger(spec.level) || !Number.isInteger(spec.revision))
    fail('tpmSpecification', 'needs integer level, revision');
  if (!Array.isArray(c.akSubject)) fail('akSubject', 'must be an array of {type: value} objects');
  const akSubject = (c.akSubject as unknown[]).map((rdn, i) => {
    const o = obj(rdn, `akSubject[${i}]`);
    const keys = Object.keys(o);
    if (keys.length !== 1) fail(`akSubject[${i}]`, 'must have exactly one attribute');
    return { [keys[0]!]: str(o[keys[0]!], `akSubject[${i}].${keys[0]}`) };
  });
  const snp = obj(c.snp, 'snp');
  if (!Array.isArray(snp.trustedRoots)) fail('snp.trustedRoots', 'must be an array');
  const trustedRoots = (snp.trustedRoots as unknown[]).map((r, i) => {
    const o = obj(r, `snp.trustedRoots[${i}]`);
    if (typeof o.product !== 'string' || !isSnpProduct(o.product))
      fail(`snp.trustedRoots[${i}].product`, 'is unknown');
    if (typeof o.sha256 !== 'string' || !/^[0-9a-fA-F]{64}$/.test(o.sha256)) {
      fail(`snp.trustedRoots[${i}].sha256`, 'must be 64 hex digits');
    }
    return { product: o.product, sha256: o.sha256.toLowerCase() } as TrustedRoot;
  });
  const csr = obj(c.csr, 'csr');
  if (csr.subject !== 'template' && csr.subject !== 'request')
    fail('csr.subject', "must be 'template' or 'request'");
  if (!Array.isArray(csr.allowedSan) || csr.allowedSan.some((t) => !SAN_TYPES.includes(t as SanType))) {
    fail('csr.allowedSan', `must list SAN types out of ${SAN_TYPES.join(', ')}`);
  }
  let sp: SecurityProperties | null = null;
  if (c.identitySecurityProperties !== null && c.identitySecurityProperties !== undefined) {
    const o = obj(c.identitySecurityProperties, 'identitySecurityProperties');
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(o)) {
      if (k === 'securityVersion') {
        if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
          fail(`identitySecurityProperties.${k}`, 'must be a non-negative integer');
        out[k] = BigInt(v);
      } else if (
        [
          'isProduction',
          'tpmDataAlwaysEncrypted',
          'suspendResumeAlwaysDisabled',
          'vmtdAlwaysDisabled',
          'alwaysInYarn',
        ].includes(k)
      ) {
        if (typeof v !== 'boolean') fail(`identitySecurityProperties.${k}`, 'must be a boolean');
        out[k] = v;
      } else fail(`identitySecurityProperties.${k}`, 'is not a known property');
    }
    sp = out as SecurityProperties;
  }
  return {
    version: 1,
    keyType,
    signatureAlgorithm: sigAlg,
    lifetimes: {
      caDays: days(l.caDays, 'lifetimes.caDays'),
      ekDays: days(l.ekDays, 'lifetimes.ekDays'),
      akDays: days(l.akDays, 'lifetimes.akDays'),
      crlDays: days(l.crlDays, 'lifetimes.crlDays'),
    },
    crlDistributionPoints: uriList(c.crlDistributionPoints, 'crlDistributionPoints'),
    caIssuersUrl: c.caIssuersUrl === null ? null : uriList([c.caIssuersUrl], 'caIssuersUrl')[0]!,
    identityOid: oidText(c.identityOid, 'identityOid'),
    identitySecurityProperties: sp,
    tpm: {
      manufacturer: str(tpm.manufacturer, 'tpm.manufacturer'),
      model: str(tpm.model, 'tpm.model'),
      version: str(tpm.version, 'tpm.version'),
    },
    tpmSpecification: {
      family: str(spec.family, 'tpmSpecification.family'),
      level: spec.level as number,
      revision: spec.revision as number,
    },
    akSubject,
    nonceTtlSeconds: seconds(c.nonceTtlSeconds, 'nonceTtlSeconds'),
    activationTtlSeconds: seconds(c.activationTtlSeconds, 'activationTtlSeconds'),
    snp: { trustedRoots, policy: parseSnpPolicy(snp.policy) },
    csr: { subject: csr.subject, allowedSan: csr.allowedSan as SanType[] },
  };
}

/** JSON form of a config (bigints in securityProperties as numbers). */
export function serializeCaConfig(c: CaConfig): string {
  return `${JSON.stringify(c, (_k, v) => (typeof v === 'bigint' ? Number(v) : v), 2)}\n`;
}
