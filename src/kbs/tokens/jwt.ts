import { verify } from 'node:crypto';
import { InvalidArgument, MalformedEvidence, SignatureInvalid } from '../../errors.js';
import { decodeBase64Url, encodeBase64Url } from '../../util/base64.js';
import { shown } from '../../util/shown.js';
import { TOKEN_ALGS, type TokenAlg, type TokenKey } from './key-ring.js';

/**
 * Compact JWS JWTs (RFC 7515 §7.1, RFC 7519) signed with ECDSA (RFC 7518 §3.4: the signature is r || s,
 * fixed width, i.e. IEEE P1363). node:crypto directly: this is on the attestation hot path.
 */

/** Tokens longer than this are refused before any parsing (an EAR with SNP claims is ~4 KiB). */
export const MAX_TOKEN_LENGTH = 64 * 1024;

const b64urlJson = (v: unknown): string => encodeBase64Url(Buffer.from(JSON.stringify(v), 'utf8'));

/**
 * Signs `payload` with `key`: header `{"alg","typ":"JWT","kid"}`. The signature is low-S (s <= n/2): OpenSSL
 * returns either of the two valid s values, and verifyJwt accepts only the low one, so that a token has
 * exactly one valid encoding.
 */
export function signJwt(key: TokenKey, payload: object): string {
  return signJwtJson(key, JSON.stringify(payload));
}

/** signJwt for a payload already serialized: `payloadJson` must be one JSON object. */
export function signJwtJson(key: TokenKey, payloadJson: string): string {
  const header = { alg: key.alg, typ: 'JWT', kid: key.kid };
  const input = `${b64urlJson(header)}.${encodeBase64Url(Buffer.from(payloadJson, 'utf8'))}`;
  // The key's signer: a KeyObject in memory or a PKCS#11 token's CKM_ECDSA (src/keys), both r || s.
  const sig = Buffer.from(
    key.signer.sign(TOKEN_ALGS[key.alg].hash as 'sha256' | 'sha384', Buffer.from(input, 'ascii')),
  );
  return `${input}.${encodeBase64Url(toLowS(key.alg, sig))}`;
}

const toBigInt = (b: Uint8Array): bigint =>
  b.length === 0 ? 0n : BigInt(`0x${Buffer.from(b).toString('hex')}`);

/** s of an IEEE P1363 signature r || s, as a number. */
const sOf = (alg: TokenAlg, sig: Uint8Array): bigint => toBigInt(sig.subarray(TOKEN_ALGS[alg].scalarBytes));

/**
 * The low-S twin of `sig` (s' = n - s when s > n/2; SEC 1 v2 §4.1.4 accepts both). ECDSA is malleable:
 * (r, s) and (r, n - s) verify alike, so a verifier that accepts both lets anyone turn one of our tokens
 * into a second, different token string that also verifies: whatever is keyed by a token's bytes (a cache,
 * a replay or revocation list, a digest in a log) then sees two tokens where we issued one.
 */
function toLowS(alg: TokenAlg, sig: Buffer): Buffer {
  const { scalarBytes, order } = TOKEN_ALGS[alg];
  const s = sOf(alg, sig);
  if (s <= order >> 1n) return sig;
  const twin = Buffer.from((order - s).toString(16).padStart(scalarBytes * 2, '0'), 'hex');
  return Buffer.concat([sig.subarray(0, scalarBytes), twin]);
}

export interface JwtHeader {
  readonly alg: string;
  readonly kid?: string;
  readonly typ?: string;
  readonly [k: string]: unknown;
}

export interface VerifiedJwt {
  readonly header: JwtHeader;
  readonly payload: { readonly [k: string]: unknown };
  readonly key: TokenKey;
}

function decodeJsonPart(part: string, what: string): { [k: string]: unknown } {
  if (part.length === 0) throw new MalformedEvidence('token.format', `${what} is empty`);
  const bytes = decodeBase64Url(part, 'token.format', what);
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (cause) {
    throw new MalformedEvidence('token.format', `${what} is not JSON`, { cause });
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new MalformedEvidence('token.format', `${what} is not a JSON object`);
  }
  return v as { [k: string]: unknown };
}

export interface VerifyJwtOptions {
  /** Finds a published key by kid (TokenKeyRing.find). */
  readonly findKey: (kid: string) => TokenKey | undefined;
  /** Current time, ms. */
  readonly now: number;
  /** Required `iss`. */
  readonly issuer: string;
  /** Leeway for `exp`/`nbf`/`iat`, seconds (default 0: the broker checks its own tokens with its own clock). */
  readonly clockSkewSec?: number;
}

/**
 * Verifies a compact JWT signed by one of our keys: structure, `alg` (must be the key's; `none` and
 * anything else refused), `kid` (must be published), no `crit`, the signature, then `iss`, `exp`, `nbf`
 * and `iat`. The signature must be low-S (s <= n/2, what signJwt produces). Throws MalformedEvidence
 * `token.format`; SignatureInvalid `token.alg`, `token.kid`, `token.signature`, `token.signature_high_s`;
 * InvalidArgument `token.issuer`, `token.expired`, `token.not_yet_valid`.
 */
export function verifyJwt(token: unknown, o: VerifyJwtOptions): VerifiedJwt {
  if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH) {
    throw new MalformedEvidence('token.format', 'token must be a non-empty string of bounded length');
  }
  const parts = token.split('.');
  if (parts.length !== 3) throw new MalformedEvidence('token.format', 'a JWS compact token has three parts');
  const [h, p, s] = parts as [string, string, string];
  const header = decodeJsonPart(h, 'header') as JwtHeader;
  if (typeof header.alg !== 'string' || !Object.hasOwn(TOKEN_ALGS, header.alg)) {
    throw new SignatureInvalid('token.alg', `token algorithm ${shown(header.alg)} is not accepted`);
  }
  if ('crit' in header)
    throw new SignatureInvalid('token.alg', 'critical header parameters are not supported');
  if (typeof header.kid !== 'string') throw new SignatureInvalid('token.kid', 'token has no kid');
  const key = o.findKey(header.kid);
  if (!key) throw new SignatureInvalid('token.kid', 'token is signed by a key that is not published');
  if (key.alg !== (header.alg as TokenAlg))
    throw new SignatureInvalid('token.alg', 'alg does not match the key');
  if (s.length === 0) throw new MalformedEvidence('token.format', 'signature is empty');
  // Canonical base64url only: with set trailing bits allowed, one signature would have several spellings.
  const sig = Buffer.from(decodeBase64Url(s, 'token.format', 'signature'));
  const { scalarBytes, order } = TOKEN_ALGS[key.alg];
  if (sig.length !== 2 * scalarBytes) {
    throw new SignatureInvalid('token.signature', 'token signature has the wrong length');
  }
  // Low-S only (see toLowS): the high-S twin of a valid signature is refused before it is verified.
  if (sOf(key.alg, sig) > order >> 1n) {
    throw new SignatureInvalid('token.signature_high_s', 'token signature is not in low-S form');
  }
  const ok = verify(
    TOKEN_ALGS[key.alg].hash,
    Buffer.from(`${h}.${p}`, 'ascii'),
    { key: key.publicKey, dsaEncoding: 'ieee-p1363' },
    sig,
  );
  if (!ok) throw new SignatureInvalid('token.signature', 'token signature does not verify');
  const payload = decodeJsonPart(p, 'payload');
  checkIssuerAndTimes(payload, o);
  return { header, payload, key };
}

/**
 * The checks of a verified token's claims: `iss`, then `exp`, `nbf` and `iat` (codes as verifyJwt's). Also
 * applied to a token of our own taken without its signature check (EarTokens.verify).
 */
export function checkIssuerAndTimes(
  payload: { readonly [k: string]: unknown },
  o: Pick<VerifyJwtOptions, 'now' | 'issuer' | 'clockSkewSec'>,
): void {
  const skew = o.clockSkewSec ?? 0;
  const nowSec = o.now / 1000;
  if (payload.iss !== o.issuer) throw new InvalidArgument('token.issuer', 'token has another issuer');
  if (typeof payload.exp !== 'number' || !(nowSec < payload.exp + skew)) {
    throw new InvalidArgument('token.expired', 'token has expired');
  }
  if (payload.nbf !== undefined && (typeof payload.nbf !== 'number' || nowSec + skew < payload.nbf)) {
    throw new InvalidArgument('token.not_yet_valid', 'token is not valid yet');
  }
  if (typeof payload.iat !== 'number' || nowSec + skew < payload.iat) {
    throw new InvalidArgument('token.not_yet_valid', 'token was issued in the future');
  }
}
