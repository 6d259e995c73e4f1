import assert from 'node:assert/strict';
import { constants, type KeyObject, sign } from 'node:crypto';
import type { SnpCerts } from '../../../src/evidence/snp/index.js';
import { loadDer } from '../../../src/evidence/snp/index.js';
import { readTlv } from '../../../src/formats/der/reader.js';
import { parseReport, type SnpReport } from '../../../src/formats/snp/index.js';
import { readVector, readVectorJson, readVectorText } from '../../helpers/vectors.js';

/** Shared helpers of the SNP verifier tests (verify-*.test.ts, amd-cert*.test.ts). */

/** A date inside every real VCEK's validity (the latest notBefore is 2026-02-05, the earliest notAfter 2029-09-24). */
export const VCEK_DATE = new Date('2026-11-28T00:00:00Z');

/** Returns a copy of `buf` with the only occurrence of hex `from` replaced by hex `to` (same length). */
export function replaceOnce(buf: Uint8Array, from: string, to: string): Uint8Array {
  const f = Buffer.from(from, 'hex');
  const t = Buffer.from(to, 'hex');
  assert.equal(f.length, t.length, 'replacement must keep the length');
  const b = Buffer.from(buf);
  const i = b.indexOf(f);
  assert.ok(i >= 0, `pattern ${from} not found`);
  assert.equal(b.indexOf(f, i + 1), -1, `pattern ${from} occurs more than once`);
  t.copy(b, i);
  return new Uint8Array(b);
}

/** Hex of an ASCII string, for replaceOnce on names. */
export const ascii = (s: string): string => Buffer.from(s, 'latin1').toString('hex');

/** The parts of a case's expected.json these tests read (values computed independently with openssl). */
export interface LeafCertFields {
  subject: string;
  issuer: string;
  serial: string;
  not_before: string;
  not_after: string;
  structVersion: number;
  productName: string;
  blSPL: number;
  teeSPL: number;
  snpSPL: number;
  ucodeSPL: number;
  fmcSPL?: number;
  spl_4?: number;
  spl_5?: number;
  spl_6?: number;
  spl_7?: number;
  hwID?: string;
  cspID?: string;
}

interface TcbFields {
  raw: string;
  bl: number;
  tee: number;
  snp: number;
  ucode: number;
  fmc?: number;
}

export interface ReportFieldsJson {
  policy: string;
  report_data: string;
  host_data: string;
  measurement: string;
  chip_id: string;
  current_tcb: TcbFields;
  reported_tcb: TcbFields;
  committed_tcb: TcbFields;
  current_version: string;
  cpuid_fam_mod_step: [string, string, number] | null;
}

export interface ExpectedCase {
  signer: 'VCEK' | 'VLEK';
  valid_at_unix: number | null;
  leaf_cert_fields: LeafCertFields;
  report_fields: ReportFieldsJson;
  report2_fields?: ReportFieldsJson;
}

export interface RealCase {
  readonly name: string;
  readonly expected: ExpectedCase;
  readonly signer: 'VCEK' | 'VLEK';
  readonly report: SnpReport;
  readonly reportBytes: Uint8Array;
  readonly certs: SnpCerts;
  /** `valid_at_unix` when expected.json gives it (expired VLEKs), else VCEK_DATE. */
  readonly now: Date;
}

export function realCase(name: string): RealCase {
  const expected = readVectorJson<ExpectedCase>('snp', name, 'expected.json');
  const signer = expected.signer;
  const pem = (f: string) => loadDer(readVectorText('snp', name, f));
  const reportBytes = readVector('snp', name, 'report.bin');
  return {
    name,
    expected,
    signer,
    report: parseReport(reportBytes),
    reportBytes,
    certs: {
      leaf: pem(signer === 'VLEK' ? 'vlek.pem' : 'vcek.pem'),
      intermediate: pem(signer === 'VLEK' ? 'asvk.pem' : 'ask.pem'),
      root: pem('ark.pem'),
    },
    now: expected.valid_at_unix ? new Date(expected.valid_at_unix * 1000) : VCEK_DATE,
  };
}

export function amdCert(file: string): Uint8Array {
  return loadDer(readVectorText('amd', file));
}

function derLength(n: number): Uint8Array {
  if (n < 0x80) return Uint8Array.of(n);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Uint8Array.of(0x80 | bytes.length, ...bytes);
}

/** DER element from a tag and contents (test-side encoder for rebuilt certificates). */
export function tlv(tag: number, content: Uint8Array): Uint8Array {
  return Buffer.concat([Uint8Array.of(tag), derLength(content.length), content]);
}

/**
 * Re-signs a certificate after changing its TBS: `edit` gets the TBS bytes and returns new ones, which are
 * signed RSASSA-PSS SHA-384 salt 48 with `issuerKey` (a test-only signer, to build negatives whose
 * signatures are valid so that only the edited property is wrong).
 */
export function resignCert(
  der: Uint8Array,
  issuerKey: KeyObject,
  edit: (tbs: Uint8Array) => Uint8Array,
  algorithm?: (alg: Uint8Array) => Uint8Array,
): Uint8Array {
  const cert = readTlv(der, 0, 'test');
  const tbs = readTlv(cert.value, 0, 'test');
  const alg = readTlv(cert.value, tbs.raw.length, 'test');
  const newTbs = edit(tbs.raw);
  const sig = sign('sha384', newTbs, {
    key: issuerKey,
    padding: constants.RSA_PKCS1_PSS_PADDING,
    saltLength: 48,
  });
  const bits = tlv(0x03, Buffer.concat([Uint8Array.of(0), sig]));
  return tlv(0x30, Buffer.concat([newTbs, algorithm ? algorithm(alg.raw) : alg.raw, bits]));
}

/** The same report bytes with `patch` applied (offset -> bytes), for field flips on real reports. */
export function patched(bytes: Uint8Array, patch: Record<number, number[]>): Uint8Array {
  const b = Uint8Array.from(bytes);
  for (const [off, v] of Object.entries(patch)) b.set(v, Number(off));
  return b;
}
