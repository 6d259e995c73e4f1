import { MalformedEvidence, NotSupported } from '../../errors.js';
import { fromHex } from '../../util/bytes.js';
import { isObject } from '../../util/json-object.js';
import { shown } from '../../util/shown.js';
import { decodePemBlock } from '../pem.js';
import { MAX_HCL_REPORT_BYTES } from './hcl-report.js';

/**
 * `az-snp-vtpm` evidence as the CoCo guest attester sends it and Trustee reads it (Trustee
 * deps/verifier/src/az_snp_vtpm/compat.rs; the shapes of its test_data/az-snp-vtpm/evidence-v{0,1,2}.json):
 *
 * - v0 (no `version`): `{"quote": {"signature": [u8], "message": [u8], "pcrs": [[u8; 32]]}, "report": [u8],
 *   "vcek": "<PEM>"}` — byte strings as JSON arrays of numbers (serde's default for Vec<u8>);
 * - v1, v2: `{"version": 1|2, "tpm_quote": {"signature": hex, "message": hex, "pcrs": [hex]},
 *   "hcl_report": b64url, "vcek": b64url(DER)}` — base64url *with* padding (serde_with `Base64<UrlSafe>`).
 *   v2 is v1 whose HCL `user-data` carries the KBS report data.
 *
 * `message` is the TPMS_ATTEST the vTPM signed, `signature` the bare RSASSA-PKCS1-v1_5 signature over it
 * (not a TPMT_SIGNATURE), `pcrs` the SHA-256 PCR values in the quote's selection order.
 */
export interface AzSnpVtpmEvidence {
  readonly version: 0 | 1 | 2;
  readonly hclReport: Uint8Array;
  readonly quote: {
    readonly message: Uint8Array;
    readonly signature: Uint8Array;
    readonly pcrs: readonly Uint8Array[];
  };
  /** The VCEK, DER. */
  readonly vcek: Uint8Array;
}

/** Limits: a TPMS_ATTEST is ~150 bytes, an RSA-4096 signature 512, a VCEK ~1.4 KiB, 24 PCRs. */
const MAX_MESSAGE = 1024;
const MAX_SIGNATURE = 1024;
const MAX_VCEK = 8 * 1024;
const MAX_PCRS = 24;
const PCR_BYTES = 32;

const shape = (why: string): never => {
  throw new MalformedEvidence('azure.evidence.shape', `az-snp-vtpm evidence: ${why}`);
};

function onlyKeys(o: { [k: string]: unknown }, allowed: readonly string[], where: string): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) shape(`unknown field ${where}${k.slice(0, 32)}`);
}

function size(b: Uint8Array, max: number, field: string): Uint8Array {
  if (b.length === 0 || b.length > max) {
    throw new MalformedEvidence('azure.evidence.size', `${field}: ${b.length} bytes (1..${max})`);
  }
  return b;
}

/** v0: a JSON array of byte values. */
function byteArray(v: unknown, max: number, field: string): Uint8Array {
  if (!Array.isArray(v)) return shape(`${field} must be an array of bytes`);
  if (v.length > max) size(new Uint8Array(0), max, field);
  const out = new Uint8Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const x = v[i];
    if (typeof x !== 'number' || !Number.isInteger(x) || x < 0 || x > 255)
      shape(`${field}[${i}] is not a byte`);
    out[i] = x as number;
  }
  return size(out, max, field);
}

function hexField(v: unknown, max: number, field: string): Uint8Array {
  if (typeof v !== 'string' || v.length > 2 * max || !/^(?:[0-9a-fA-F]{2})*$/.test(v)) {
    return shape(`${field} must be hex of at most ${max} bytes`);
  }
  return size(fromHex(v)!, max, field);
}

const B64URL_PADDED = /^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2}==|[A-Za-z0-9_-]{3}=)?$/;

/**
 * Base64url with padding, canonical. Not the JOSE form (no padding, src/kbs/base64.ts) nor standard base64:
 * serde_with's `Base64<UrlSafe>` pads, so this variant exists only for these two fields.
 */
function b64urlPadded(v: unknown, max: number, field: string): Uint8Array {
  if (typeof v !== 'string' || v.length > Math.ceil(max / 3) * 4 || !B64URL_PADDED.test(v)) {
    return shape(`${field} must be padded base64url of at most ${max} bytes`);
  }
  const b = Buffer.from(v, 'base64url');
  const canonical = b.toString('base64url');
  if (canonical + '='.repeat((4 - (canonical.length % 4)) % 4) !== v) {
    throw new MalformedEvidence('azure.evidence.base64', `${field}: non-canonical base64url`);
  }
  return size(new Uint8Array(b.buffer, b.byteOffset, b.byteLength), max, field);
}

function pcrList(v: unknown, item: (x: unknown, i: number) => Uint8Array): Uint8Array[] {
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_PCRS) {
    return shape(`pcrs must be an array of 1..${MAX_PCRS} values`);
  }
  return v.map((x, i) => {
    const b = item(x, i);
    if (b.length !== PCR_BYTES) shape(`pcrs[${i}] must be ${PCR_BYTES} bytes (SHA-256)`);
    return b;
  });
}

/**
 * Decodes `az-snp-vtpm` evidence JSON (v0, v1 or v2; the version is `version`'s value, v0 when absent).
 * Checks shapes, encodings and sizes only. Throws MalformedEvidence `azure.evidence.shape`, `.size`,
 * `.base64`, `.json` (JSON form only), `azure.evidence.vcek.pem` (the v0 VCEK); NotSupported `azure.evidence.version` (a version other than 1 or 2).
 */
export function decodeAzSnpVtpmEvidence(v: unknown): AzSnpVtpmEvidence {
  if (!isObject(v)) return shape('not a JSON object');
  if (!('version' in v)) {
    onlyKeys(v, ['quote', 'report', 'vcek'], '');
    const q = v.quote;
    if (!isObject(q)) return shape('quote must be an object');
    onlyKeys(q, ['signature', 'message', 'pcrs'], 'quote.');
    if (typeof v.vcek !== 'string' || v.vcek.length > 2 * MAX_VCEK) return shape('vcek must be a PEM string');
    return {
      version: 0,
      hclReport: byteArray(v.report, MAX_HCL_REPORT_BYTES, 'report'),
      quote: {
        message: byteArray(q.message, MAX_MESSAGE, 'quote.message'),
        signature: byteArray(q.signature, MAX_SIGNATURE, 'quote.signature'),
        pcrs: pcrList(q.pcrs, (x, i) => byteArray(x, PCR_BYTES, `quote.pcrs[${i}]`)),
      },
      vcek: size(decodePemBlock(v.vcek, 'azure.evidence.vcek', ['CERTIFICATE']).der, MAX_VCEK, 'vcek'),
    };
  }
  if (v.version !== 1 && v.version !== 2) {
    throw new NotSupported('azure.evidence.version', `az-snp-vtpm evidence version ${shown(v.version, 16)}`);
  }
  onlyKeys(v, ['version', 'tpm_quote', 'hcl_report', 'vcek'], '');
  const q = v.tpm_quote;
  if (!isObject(q)) return shape('tpm_quote must be an object');
  onlyKeys(q, ['signature', 'message', 'pcrs'], 'tpm_quote.');
  return {
    version: v.version,
    hclReport: b64urlPadded(v.hcl_report, MAX_HCL_REPORT_BYTES, 'hcl_report'),
    quote: {
      message: hexField(q.message, MAX_MESSAGE, 'tpm_quote.message'),
      signature: hexField(q.signature, MAX_SIGNATURE, 'tpm_quote.signature'),
      pcrs: pcrList(q.pcrs, (x, i) => hexField(x, PCR_BYTES, `tpm_quote.pcrs[${i}]`)),
    },
    vcek: b64urlPadded(v.vcek, MAX_VCEK, 'vcek'),
  };
}

/** The evidence as UTF-8 JSON bytes (how the broker carries it): parses, then {@link decodeAzSnpVtpmEvidence}. */
export function parseAzSnpVtpmEvidenceJson(bytes: Uint8Array): AzSnpVtpmEvidence {
  // v0 spells bytes as decimal arrays (~4 characters a byte): 64 KiB of report alone can reach 256 KiB.
  if (bytes.length > 512 * 1024)
    throw new MalformedEvidence('azure.evidence.size', 'evidence JSON too large');
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    throw new MalformedEvidence('azure.evidence.json', 'az-snp-vtpm evidence is not UTF-8 JSON', {
      cause: e,
    });
  }
  return decodeAzSnpVtpmEvidence(v);
}
