import { MalformedEvidence } from '../errors.js';

/** One PEM block: its label (`CERTIFICATE`, `X509 CRL`) and decoded body. */
export interface PemBlock {
  readonly label: string;
  readonly der: Uint8Array;
}

const BASE64_LINE = /^[A-Za-z0-9+/]*={0,2}$/;
const LABEL = /^[A-Z0-9 ]{1,32}$/;

/**
 * Strict PEM decoding (RFC 7468 "strict" grammar, as KDS emits it): only BEGIN/END blocks with matching
 * labels, base64 lines between them, and blank lines between blocks. Explanatory text, headers, bad base64
 * or a missing END are rejected, so a proxy's HTML error page can never be mistaken for a certificate.
 *
 * Throws MalformedEvidence `<context>.pem` with `context` naming the caller (e.g. `kds.cert_chain`).
 */
export function decodePem(text: string, context: string): PemBlock[] {
  const reason = `${context}.pem`;
  const lines = text.split(/\r?\n/);
  const blocks: PemBlock[] = [];
  let label: string | undefined;
  let body: string[] = [];
  for (const [i, raw] of lines.entries()) {
    const line = raw.replace(/[ \t]+$/, '');
    if (label === undefined) {
      if (line === '') continue;
      const m = /^-----BEGIN ([^-]+)-----$/.exec(line);
      if (!m || !LABEL.test(m[1]!))
        throw new MalformedEvidence(reason, `line ${i + 1}: expected a PEM BEGIN line`);
      label = m[1]!;
      body = [];
      continue;
    }
    if (line === `-----END ${label}-----`) {
      const b64 = body.join('');
      const der = new Uint8Array(Buffer.from(b64, 'base64'));
      // Round-trip check: Buffer.from silently drops bad characters and misplaced padding.
      if (der.length === 0 || Buffer.from(der).toString('base64') !== b64) {
        throw new MalformedEvidence(reason, `PEM block ${blocks.length + 1} (${label}) has invalid base64`);
      }
      blocks.push({ label, der });
      label = undefined;
      continue;
    }
    if (!BASE64_LINE.test(line) || line.length > 128) {
      throw new MalformedEvidence(reason, `line ${i + 1}: not a base64 line inside a PEM block`);
    }
    body.push(line);
  }
  if (label !== undefined) throw new MalformedEvidence(reason, `PEM block ${label} has no END line`);
  return blocks;
}

/** Encodes DER as PEM with 64-character lines and a final newline. */
export function encodePem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** True when the bytes look like PEM text (start, after optional whitespace, with `-----BEGIN `). */
export function looksLikePem(bytes: Uint8Array): boolean {
  const head = Buffer.from(bytes.subarray(0, 64)).toString('latin1').trimStart();
  return head.startsWith('-----BEGIN ');
}
