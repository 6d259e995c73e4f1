import { MalformedEvidence } from '../errors.js';
import { decodeBase64, encodeBase64 } from '../util/base64.js';

/**
 * The project's one PEM reader and writer (RFC 7468). Reading follows the RFC's strict grammar as AMD's
 * KDS, OpenSSL and node:crypto emit it: BEGIN and END lines with the same label, base64 lines between
 * them, blank lines between blocks, trailing spaces and CRLF tolerated. Explanatory text, headers, bad
 * base64 (checked by re-encoding: Buffer.from silently drops bad characters and misplaced padding) and a
 * missing END are refused, so a proxy's HTML error page can never be mistaken for a certificate.
 *
 * Every refusal is MalformedEvidence `<context>.pem`, `context` naming the caller (`kds.cert_chain`,
 * `snp.cert`, `cli`).
 */

/** One PEM block: its label (`CERTIFICATE`, `X509 CRL`) and decoded contents. */
export interface PemBlock {
  readonly label: string;
  readonly der: Uint8Array;
}

/**
 * Bounds on what is read: the whole text, the number of blocks and a base64 line (the RFC's generators
 * write 64 characters; twice that is accepted).
 */
export const PEM_LIMITS = { maxLength: 4 << 20, maxBlocks: 64, maxLineLength: 128 } as const;

export type PemLimits = { readonly [K in keyof typeof PEM_LIMITS]: number };

const BASE64_LINE = /^[A-Za-z0-9+/]*={0,2}$/;
const BEGIN = /^-----BEGIN ([^-]+)-----$/;
const LABEL = /^[A-Z0-9 ]{1,32}$/;

/** Decodes every PEM block of `text`, in order (none for blank text). Throws MalformedEvidence `<context>.pem`. */
export function decodePem(text: string, context: string, limits: PemLimits = PEM_LIMITS): PemBlock[] {
  const reason = `${context}.pem`;
  if (text.length > limits.maxLength) {
    throw new MalformedEvidence(reason, `PEM text over ${limits.maxLength} characters`);
  }
  const blocks: PemBlock[] = [];
  let label: string | undefined;
  let body: string[] = [];
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.replace(/[ \t]+$/, '');
    if (label === undefined) {
      if (line === '') continue;
      const m = BEGIN.exec(line);
      if (!m || !LABEL.test(m[1]!)) {
        throw new MalformedEvidence(reason, `line ${i + 1}: expected a PEM BEGIN line`);
      }
      if (blocks.length === limits.maxBlocks) {
        throw new MalformedEvidence(reason, `more than ${limits.maxBlocks} PEM blocks`);
      }
      label = m[1]!;
      body = [];
      continue;
    }
    if (line === `-----END ${label}-----`) {
      const b64 = body.join('');
      const der = decodeBase64(b64, reason, `PEM block ${blocks.length + 1} (${label})`);
      if (der.length === 0)
        throw new MalformedEvidence(reason, `PEM block ${blocks.length + 1} (${label}) is empty`);
      blocks.push({ label, der });
      label = undefined;
      continue;
    }
    if (!BASE64_LINE.test(line) || line.length > limits.maxLineLength) {
      throw new MalformedEvidence(reason, `line ${i + 1}: not a base64 line inside a PEM block`);
    }
    body.push(line);
  }
  if (label !== undefined) throw new MalformedEvidence(reason, `PEM block ${label} has no END line`);
  return blocks;
}

/**
 * Decodes text that must hold exactly one PEM block, with one of `labels` when given. Throws
 * MalformedEvidence `<context>.pem`.
 */
export function decodePemBlock(text: string, context: string, labels?: readonly string[]): PemBlock {
  const blocks = decodePem(text, context);
  const want = labels === undefined ? 'one PEM block' : `one PEM ${labels.join(' or ')} block`;
  if (blocks.length !== 1) {
    throw new MalformedEvidence(`${context}.pem`, `expected ${want}, found ${blocks.length}`);
  }
  const block = blocks[0]!;
  if (labels !== undefined && !labels.includes(block.label)) {
    throw new MalformedEvidence(`${context}.pem`, `expected ${want}, found ${block.label}`);
  }
  return block;
}

/** Bytes as text for the PEM reader: latin1, one character per byte, so no byte is lost or replaced. */
export function pemText(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

/** True when the bytes look like PEM text (start, after optional whitespace, with `-----BEGIN `). */
export function looksLikePem(bytes: Uint8Array): boolean {
  return pemText(bytes.subarray(0, 64)).trimStart().startsWith('-----BEGIN ');
}

/** Encodes DER as PEM with 64-character lines and a final newline (RFC 7468 §2). */
export function encodePem(label: string, der: Uint8Array): string {
  const b64 = encodeBase64(der);
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}
