import { MalformedEvidence } from '../errors.js';
import { decodePem } from '../formats/pem.js';
import { parseTdQeIdentity, parseTdxTcbInfo } from '../formats/tdx/collateral-json.js';
import { parseCertificateList } from '../formats/x509/crl.js';
import { commonName, formatName, parseName } from '../formats/x509/name.js';
import { fromHex } from '../util/bytes.js';
import { decodeAscii } from './kds-bodies.js';

/**
 * Shape checks for what Intel PCS v4 serves for TDX (Intel "Provisioning Certification Service for ECDSA
 * Attestation" API v4): the signed JSON responses (`{"tcbInfo": {...}, "signature": "<hex>"}`,
 * `{"enclaveIdentity": {...}, "signature": "<hex>"}`), the issuer chains from the response headers
 * (URL-encoded PEM) and the DER CRLs. As for AMD KDS (kds-bodies.ts), these checks only make sure a body is
 * the item asked for, so garbage is never cached; signatures, chains, dates and revocation are checked by
 * src/evidence/tdx against Intel's pinned root.
 */

/** Largest PCS body accepted (TCB Info and CRLs are a few KiB; a processor-CA CRL grows with revocations). */
export const MAX_PCS_BODY = 1 << 20;

/** The signed member of each PCS JSON response. */
export type PcsSignedField = 'tcbInfo' | 'enclaveIdentity';

/** A signed PCS JSON response split into the exact signed bytes and the signature. */
export interface PcsSignedBody {
  /** The exact bytes of the signed member's value, as Intel signed them. */
  readonly body: Uint8Array;
  /** 64 bytes, r||s. */
  readonly signature: Uint8Array;
}

const WS = new Set([0x20, 0x09, 0x0a, 0x0d]);

/** A tiny byte-level JSON scanner: just enough to find the byte span of each top-level member's value. */
class Scan {
  i = 0;
  constructor(
    readonly b: Uint8Array,
    readonly reason: string,
  ) {}
  fail(what: string): never {
    throw new MalformedEvidence(this.reason, `${this.reason}: ${what} at byte ${this.i}`);
  }
  ws(): void {
    while (this.i < this.b.length && WS.has(this.b[this.i]!)) this.i++;
  }
  expect(c: number): void {
    this.ws();
    if (this.b[this.i] !== c) this.fail(`expected ${String.fromCharCode(c)}`);
    this.i++;
  }
  /** A string; returns its raw bytes between the quotes (escapes left as written). */
  string(): Uint8Array {
    this.expect(0x22);
    const start = this.i;
    for (;;) {
      const c = this.b[this.i];
      if (c === undefined) this.fail('unterminated string');
      if (c === 0x5c) this.i += 2;
      else if (c === 0x22) break;
      else this.i++;
    }
    const s = this.b.subarray(start, this.i);
    this.i++;
    return s;
  }
  /** Skips one value of any kind, with nesting bounded. */
  value(depth = 0): void {
    if (depth > 64) this.fail('nesting too deep');
    this.ws();
    const c = this.b[this.i];
    if (c === 0x22) {
      this.string();
    } else if (c === 0x7b || c === 0x5b) {
      const close = c === 0x7b ? 0x7d : 0x5d;
      this.i++;
      this.ws();
      if (this.b[this.i] === close) {
        this.i++;
        return;
      }
      for (;;) {
        if (c === 0x7b) {
          this.string();
          this.expect(0x3a);
        }
        this.value(depth + 1);
        this.ws();
        const d = this.b[this.i++];
        if (d === close) return;
        if (d !== 0x2c) this.fail('expected , or a closing bracket');
      }
    } else {
      const start = this.i;
      while (this.i < this.b.length && /[-+.0-9a-zA-Z]/.test(String.fromCharCode(this.b[this.i]!))) this.i++;
      if (this.i === start) this.fail('expected a value');
    }
  }
}

/**
 * The byte spans of a JSON object's top-level members' values. The whole body must also be valid JSON
 * (JSON.parse), and a repeated member name is refused: two readers could otherwise pick different ones.
 * Throws MalformedEvidence `reason`.
 */
export function jsonMemberSpans(body: Uint8Array, reason: string): Map<string, Uint8Array> {
  if (body.length > MAX_PCS_BODY) throw new MalformedEvidence(reason, `${reason}: body is too large`);
  try {
    JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch (e) {
    throw new MalformedEvidence(reason, `${reason}: not JSON`, { cause: e });
  }
  const s = new Scan(body, reason);
  const out = new Map<string, Uint8Array>();
  s.expect(0x7b);
  s.ws();
  if (body[s.i] === 0x7d) s.i++;
  else
    for (;;) {
      const key = Buffer.from(s.string()).toString('latin1');
      s.expect(0x3a);
      s.ws();
      const start = s.i;
      s.value();
      if (out.has(key)) s.fail(`member ${JSON.stringify(key)} is repeated`);
      out.set(key, body.subarray(start, s.i));
      s.ws();
      const d = body[s.i++];
      if (d === 0x7d) break;
      if (d !== 0x2c) s.fail('expected , or }');
    }
  s.ws();
  if (s.i !== body.length) s.fail('trailing bytes');
  return out;
}

/**
 * Splits a signed PCS response into the exact bytes of `field` (what Intel signed: PCS API v4 "the
 * signature is calculated over the ... tcbInfo / enclaveIdentity body") and the 64-byte signature (hex in
 * `signature`). Exactly those two members. Throws MalformedEvidence `reason`.
 */
export function splitSignedResponse(body: Uint8Array, field: PcsSignedField, reason: string): PcsSignedBody {
  const spans = jsonMemberSpans(body, reason);
  const value = spans.get(field);
  const sig = spans.get('signature');
  if (spans.size !== 2 || !value || !sig)
    throw new MalformedEvidence(reason, `${reason}: expected exactly "${field}" and "signature"`);
  const text = Buffer.from(sig).toString('latin1');
  const m = /^"([0-9a-fA-F]{128})"$/.exec(text);
  const signature = m ? fromHex(m[1]!) : undefined;
  if (!signature) throw new MalformedEvidence(reason, `${reason}: signature is not 64 bytes of hex`);
  return { body: new Uint8Array(value), signature };
}

/** Builds the response PCS would serve for a signed body (used to file an offline directory's pieces). */
export function joinSignedResponse(field: PcsSignedField, s: PcsSignedBody): Uint8Array {
  return new Uint8Array(
    Buffer.concat([
      Buffer.from(`{"${field}":`, 'latin1'),
      s.body,
      Buffer.from(`,"signature":"${Buffer.from(s.signature).toString('hex')}"}`, 'latin1'),
    ]),
  );
}

/**
 * Decodes an issuer-chain header (PCS: `TCB-Info-Issuer-Chain`, `SGX-Enclave-Identity-Issuer-Chain`,
 * `SGX-PCK-CRL-Issuer-Chain`: URL-encoded PEM, signer first) or the same PEM from a file: 2 to 4
 * CERTIFICATE blocks, returned as DER. Throws MalformedEvidence `reason`.
 */
export function readIssuerChain(
  value: string | Uint8Array | null,
  reason: string,
  encoded: boolean,
): Uint8Array[] {
  if (value === null) throw new MalformedEvidence(reason, `${reason}: the issuer chain is missing`);
  let text = typeof value === 'string' ? value : decodeAscii(value, reason);
  if (text.length > 64 * 1024) throw new MalformedEvidence(reason, `${reason}: issuer chain is too large`);
  if (encoded) {
    try {
      text = decodeURIComponent(text);
    } catch (e) {
      throw new MalformedEvidence(reason, `${reason}: issuer chain is not URL-encoded`, { cause: e });
    }
  }
  const blocks = decodePem(text, reason);
  if (blocks.length < 2 || blocks.length > 4 || blocks.some((b) => b.label !== 'CERTIFICATE'))
    throw new MalformedEvidence(reason, `${reason}: issuer chain must hold 2-4 certificates`);
  return blocks.map((b) => b.der);
}

/** Issuer CNs of the CRLs PCS serves, by item. */
export const INTEL_CRL_ISSUERS = {
  platform: 'Intel SGX PCK Platform CA',
  processor: 'Intel SGX PCK Processor CA',
  root: 'Intel SGX Root CA',
} as const;
export type IntelCrlIssuer = keyof typeof INTEL_CRL_ISSUERS;

/** An Intel CRL's issuer and dates (signature not verified here). */
export interface IntelCrlShape {
  readonly der: Uint8Array;
  readonly issuer: IntelCrlIssuer;
  readonly thisUpdate: Date;
  readonly nextUpdate?: Date;
}

/**
 * Reads an Intel CRL (DER CertificateList) and names its issuer by CN; `want`, when given, must match.
 * Throws MalformedEvidence `reason`.
 */
export function parseIntelCrl(der: Uint8Array, reason: string, want?: IntelCrlIssuer): IntelCrlShape {
  if (der.length === 0 || der.length > MAX_PCS_BODY || der[0] !== 0x30)
    throw new MalformedEvidence(reason, `${reason}: CRL is not a DER SEQUENCE`);
  const crl = parseCertificateList(der, { der: reason, extensions: reason, duplicateExtension: reason });
  const name = parseName(crl.issuer, reason);
  const cn = commonName(name);
  const issuer = (Object.keys(INTEL_CRL_ISSUERS) as IntelCrlIssuer[]).find(
    (k) => INTEL_CRL_ISSUERS[k] === cn,
  );
  if (!issuer || (want && issuer !== want))
    throw new MalformedEvidence(
      reason,
      `${reason}: CRL issuer ${formatName(name)} is not ${want ? INTEL_CRL_ISSUERS[want] : 'an Intel SGX CA'}`,
    );
  const { thisUpdate, nextUpdate } = crl;
  return nextUpdate ? { der, issuer, thisUpdate, nextUpdate } : { der, issuer, thisUpdate };
}

/** The identity and dates of a signed body, for filing and cache freshness. */
export interface SignedBodyShape {
  readonly fmspc?: string;
  readonly issueDate: Date;
  readonly nextUpdate: Date;
}

/**
 * Shape-checks a signed body: TDX TCB Info (its FMSPC, lower-case hex, must equal `fmspc` when given) or
 * TD QE Identity. Throws MalformedEvidence (`tdx.tcb_info.json`, `tdx.qe_identity.json`, or `reason` for a
 * FMSPC mismatch).
 */
export function checkSignedBody(
  field: PcsSignedField,
  body: Uint8Array,
  reason: string,
  fmspc?: string,
): SignedBodyShape {
  if (field === 'enclaveIdentity') {
    const q = parseTdQeIdentity(body);
    return { issueDate: q.issueDate, nextUpdate: q.nextUpdate };
  }
  const t = parseTdxTcbInfo(body);
  const have = Buffer.from(t.fmspc).toString('hex');
  if (fmspc !== undefined && have !== fmspc)
    throw new MalformedEvidence(reason, `${reason}: TCB Info is for FMSPC ${have}, not ${fmspc}`);
  return { fmspc: have, issueDate: t.issueDate, nextUpdate: t.nextUpdate };
}
