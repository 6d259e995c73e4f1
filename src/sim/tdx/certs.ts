import { type KeyObject, sign } from 'node:crypto';
import {
  bitString,
  type Der,
  explicit,
  integer,
  octetString,
  oid,
  sequence,
  setOf,
  time,
  utf8String,
  wholeSeconds,
} from '../../formats/der/writer.js';
import { SGX_EXTENSION_OID } from '../../formats/tdx/pck-extension.js';
import { basicConstraints, encodeExtensionList, keyUsage } from '../../formats/x509/extension-builders.js';
import type { Extension } from '../../formats/x509/extensions.js';
import { KeyUsage } from '../../formats/x509/extensions.js';
import { NameOid } from '../../formats/x509/name.js';
import { type KeyPair, newKeyPairSync } from '../../util/key-pair.js';

/**
 * Certificates and CRLs shaped like Intel's PCK hierarchy (Intel "SGX PCK Certificate and CRL Profile"):
 * ECDSA P-256 / SHA-256, names `CN=…, O=Intel Corporation, L=Santa Clara, ST=CA, C=US`, a root, a
 * "PCK Platform CA", PCK leaves carrying the SGX extension, and a "TCB Signing" leaf. For tests and the
 * demo only: the root is generated, so nothing here verifies under Intel's pinned root.
 */

const ECDSA_SHA256 = sequence(oid('1.2.840.10045.4.3.2'));
const T = 'sim.tdx.time';

export type SimKeyPair = KeyPair;

export const newP256 = (): SimKeyPair => newKeyPairSync('ec', { namedCurve: 'P-256' });

export function intelName(cn: string): Der {
  const rdn = (type: string, v: string) => setOf(sequence(oid(type), utf8String(v)));
  return sequence(
    rdn(NameOid.commonName, cn),
    rdn(NameOid.organizationName, 'Intel Corporation'),
    rdn(NameOid.localityName, 'Santa Clara'),
    rdn(NameOid.stateOrProvinceName, 'CA'),
    rdn(NameOid.countryName, 'US'),
  );
}

function signed(tbs: Uint8Array, key: KeyObject): Uint8Array {
  return sequence(tbs, ECDSA_SHA256, bitString(new Uint8Array(sign('sha256', tbs, key))));
}

export interface SimCertSpec {
  readonly serial: bigint;
  readonly issuerCn: string;
  readonly subjectCn: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly subjectKey: KeyObject;
  readonly issuerKey: KeyObject;
  readonly ca: boolean;
  readonly extra?: readonly Extension[];
}

/** An Intel-shaped X.509 v3 certificate. */
export function simIntelCertificate(c: SimCertSpec): Uint8Array {
  const spki = new Uint8Array(c.subjectKey.export({ type: 'spki', format: 'der' }));
  const exts: Extension[] = [
    c.ca
      ? keyUsage([KeyUsage.keyCertSign, KeyUsage.cRLSign])
      : keyUsage([KeyUsage.digitalSignature, KeyUsage.nonRepudiation]),
    c.ca ? basicConstraints(true, 1) : basicConstraints(false),
    ...(c.extra ?? []),
  ];
  const tbs = sequence(
    explicit(0, integer(2)),
    integer(c.serial),
    ECDSA_SHA256,
    intelName(c.issuerCn),
    sequence(time(wholeSeconds(c.notBefore), T), time(wholeSeconds(c.notAfter), T)),
    intelName(c.subjectCn),
    spki,
    explicit(3, encodeExtensionList(exts)),
  );
  return signed(tbs, c.issuerKey);
}

/** The PCK SGX extension value: 16 component SVNs, PCESVN, CPUSVN, PCE-ID, FMSPC. */
export function sgxExtension(p: {
  componentSvns: readonly number[];
  pceSvn: number;
  pceId: Uint8Array;
  fmspc: Uint8Array;
}): Extension {
  const member = (n: string, v: Der) => sequence(oid(`${SGX_EXTENSION_OID}.${n}`), v);
  const tcb = sequence(
    ...p.componentSvns.map((s, i) => member(`2.${i + 1}`, integer(s))),
    member('2.17', integer(p.pceSvn)),
    member('2.18', octetString(Uint8Array.from(p.componentSvns))),
  );
  const value = sequence(
    member('1', octetString(new Uint8Array(16).fill(0x5a))),
    member('2', tcb),
    member('3', octetString(p.pceId)),
    member('4', octetString(p.fmspc)),
  );
  return { oid: SGX_EXTENSION_OID, critical: false, value };
}

/** A v2 CRL by `issuerCn`, listing `revoked` serials. */
export function simIntelCrl(o: {
  issuerCn: string;
  issuerKey: KeyObject;
  thisUpdate: Date;
  nextUpdate: Date;
  revoked: readonly bigint[];
}): Uint8Array {
  const fields: Der[] = [
    integer(1),
    ECDSA_SHA256,
    intelName(o.issuerCn),
    time(wholeSeconds(o.thisUpdate), T),
    time(wholeSeconds(o.nextUpdate), T),
  ];
  if (o.revoked.length > 0)
    fields.push(sequence(...o.revoked.map((s) => sequence(integer(s), time(wholeSeconds(o.thisUpdate), T)))));
  return signed(sequence(...fields), o.issuerKey);
}
