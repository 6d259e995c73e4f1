import { InvalidArgument, MalformedEvidence } from '../../errors.js';
import { encodeBase64 } from '../../util/base64.js';
import { encodeJson } from './encode.js';
import { parseErrorReply } from './error-reply.js';
import {
  bytesField,
  checkEcKey,
  checkKeyVersion,
  checkLength,
  expectBoundedString,
  formatCounter,
  LIMITS,
  parseCounter,
  parseEcKey,
  parseKeyVersion,
} from './fields.js';
import { identityToWire, parseIdentity } from './identity.js';
import { expectBool, expectObject, type JsonValue, parseJson } from './json.js';
import { parseTee } from './negotiation.js';
import {
  type AesGcmData,
  type AttestationRequest,
  type AttestationResponse,
  type AttestationToken,
  type EcPublicKey,
  type ErrorReply,
  GCM_IV_SIZE,
  GCM_TAG_SIZE,
  P384_SIGNATURE_SIZE,
  type ProtocolVersion,
  STATE_DIGEST_SIZE,
  WRAPPED_CEK_SIZE,
} from './types.js';

/**
 * AttestationRequest (SVSM -> proxy), reference svsm-protocol.md §2, fields in libaproxy's order:
 * `{"tee":"snp","evidence":{"Snp":{"report":b64[,"certs_buf":b64]}},"challenge":b64,"key":{"x":b64,"y":b64}}`.
 * 0.2.0 appends `"stateCounter":"<decimal u64>"|null`, `"stateDigest":"<b64 32 B>"|null` (null exactly
 * when the counter is) and, optionally, `"stateKeyVersion":<u32 >= 1>|null` (absent: the guest predates key
 * versions and reads secret payload version 1 only). Other fields are ignored, as serde does, and their paths
 * appended to `unknown` (for the proxy's log) — except the 0.2.0 state fields in a 0.1.0 request, which
 * are refused (`aproxy.field.unknown`): a guest that states a counter in a version that cannot carry it
 * would otherwise believe it was checked. `evidence` is an enum: another variant is refused, as serde does.
 * Throws MalformedEvidence `aproxy.*`.
 */
export function parseAttestationRequest(
  payload: Uint8Array,
  version: ProtocolVersion,
  unknown: string[] = [],
): AttestationRequest {
  const base = ['tee', 'evidence', 'challenge', 'key'];
  const o = expectObject(
    parseJson(payload),
    'AttestationRequest',
    version === '0.1.0' ? base : [...base, 'stateCounter', 'stateDigest'],
    version === '0.1.0' ? [] : ['stateKeyVersion'],
    unknown,
  );
  if (version === '0.1.0') {
    for (const k of STATE_FIELDS) {
      if (o.has(k)) {
        throw new MalformedEvidence('aproxy.field.unknown', `AttestationRequest: ${k} is a 0.2.0 field`);
      }
    }
  }
  const ev = expectObject(o.get('evidence'), 'evidence', [], ['Snp']);
  if (ev.size !== 1)
    throw new MalformedEvidence('aproxy.field.missing', 'evidence: expected exactly one variant');
  const snp = expectObject(ev.get('Snp'), 'evidence.Snp', ['report'], ['certs_buf'], unknown);
  const certs = snp.get('certs_buf');
  const req: AttestationRequest = {
    tee: parseTee(o.get('tee') ?? null, 'tee'),
    evidence: {
      report: bytesField(snp.get('report'), 'evidence.Snp.report', ...LIMITS.report),
      // serde's Option accepts null as None; the SVSM omits the field.
      ...(certs === undefined || certs === null
        ? {}
        : { certsBuf: bytesField(certs, 'evidence.Snp.certs_buf', ...LIMITS.certsBuf) }),
    },
    challenge: bytesField(o.get('challenge'), 'challenge', ...LIMITS.challenge),
    key: parseEcKey(o.get('key'), 'key', unknown),
  };
  if (version === '0.1.0') return req;
  const sc = o.get('stateCounter');
  const sd = o.get('stateDigest');
  const kv = o.get('stateKeyVersion');
  if ((sc === null) !== (sd === null)) {
    throw new MalformedEvidence('aproxy.field.value', 'stateDigest: null exactly when stateCounter is');
  }
  return {
    ...req,
    stateCounter: sc === null ? null : parseCounter(sc, 'stateCounter'),
    stateDigest: sd === null ? null : bytesField(sd, 'stateDigest', STATE_DIGEST_SIZE, STATE_DIGEST_SIZE),
    ...(kv === undefined
      ? {}
      : { stateKeyVersion: kv === null ? null : parseKeyVersion(kv, 'stateKeyVersion') }),
  };
}

/** The fields 0.2.0 adds to the AttestationRequest; refused in a 0.1.0 one. */
const STATE_FIELDS = ['stateCounter', 'stateDigest', 'stateKeyVersion'] as const;

export function encodeAttestationRequest(req: AttestationRequest, version: ProtocolVersion): Uint8Array {
  checkLength(req.evidence.report, 'evidence.report', ...LIMITS.report);
  checkLength(req.challenge, 'challenge', ...LIMITS.challenge);
  checkEcKey(req.key, 'key');
  const snp: Record<string, string> = { report: encodeBase64(req.evidence.report) };
  if (req.evidence.certsBuf !== undefined) {
    checkLength(req.evidence.certsBuf, 'evidence.certsBuf', ...LIMITS.certsBuf);
    snp.certs_buf = encodeBase64(req.evidence.certsBuf);
  }
  const body: Record<string, unknown> = {
    tee: req.tee,
    evidence: { Snp: snp },
    challenge: encodeBase64(req.challenge),
    key: keyToWire(req.key),
  };
  if (version === '0.2.0') {
    if (req.stateCounter === undefined) {
      throw new InvalidArgument('aproxy.encode.state_counter', '0.2.0 requests state the counter (or null)');
    }
    body.stateCounter = req.stateCounter === null ? null : formatCounter(req.stateCounter, 'stateCounter');
    const digest = req.stateDigest ?? null;
    if ((req.stateCounter === null) !== (digest === null)) {
      throw new InvalidArgument(
        'aproxy.encode.state_digest',
        'stateDigest: null exactly when stateCounter is',
      );
    }
    if (digest !== null) checkLength(digest, 'stateDigest', STATE_DIGEST_SIZE, STATE_DIGEST_SIZE);
    body.stateDigest = digest === null ? null : encodeBase64(digest);
    if (req.stateKeyVersion !== undefined) {
      body.stateKeyVersion =
        req.stateKeyVersion === null ? null : checkKeyVersion(req.stateKeyVersion, 'stateKeyVersion');
    }
  } else if (req.stateKeyVersion !== undefined) {
    throw new InvalidArgument('aproxy.encode.state_key_version', '0.1.0 requests carry no key version');
  }
  return encodeJson(body);
}

/**
 * AttestationResponse (proxy -> SVSM): `{"success":bool[,"secret":b64],"decryption":null|{"epk":{"x","y"},
 * "wrapped_cek","aad","iv","tag"},"token":null|{"Jwt":s}|{"Cwt":s}}`. `secret` is omitted when absent
 * (explicit null is refused, as libaproxy refuses it); a missing `decryption`/`token` reads as null as serde's
 * Option does. 0.2.0 successes carry all fields plus `"identity"` and `"signature"`; 0.2.0 failures are
 * ErrorReplies.
 */
export function parseAttestationResponse(
  payload: Uint8Array,
  version: ProtocolVersion,
): AttestationResponse | ErrorReply {
  const v = parseJson(payload);
  if (version === '0.2.0') {
    if (v instanceof Map && v.has('error')) return parseErrorReply(v);
    const o = expectObject(v, 'AttestationResponse', [
      'success',
      'secret',
      'decryption',
      'token',
      'identity',
      'signature',
    ]);
    if (expectBool(o.get('success'), 'success') !== true) {
      throw new MalformedEvidence(
        'aproxy.field.value',
        '0.2.0 AttestationResponse without error must succeed',
      );
    }
    const decryption = parseAesGcmData(o.get('decryption'));
    const identity = o.get('identity');
    const signature = o.get('signature');
    return {
      success: true,
      secret: bytesField(o.get('secret'), 'secret', ...LIMITS.secret),
      decryption,
      token: parseToken(o.get('token')),
      identity: identity === null ? null : parseIdentity(identity, 'identity'),
      signature:
        signature === null
          ? null
          : bytesField(signature, 'signature', P384_SIGNATURE_SIZE, P384_SIGNATURE_SIZE),
    };
  }
  const o = expectObject(v, 'AttestationResponse', ['success'], ['secret', 'decryption', 'token']);
  const secret = o.get('secret');
  const dec = o.get('decryption');
  const tok = o.get('token');
  return {
    success: expectBool(o.get('success'), 'success'),
    ...(secret === undefined ? {} : { secret: bytesField(secret, 'secret', ...LIMITS.secret) }),
    decryption: dec === undefined || dec === null ? null : parseAesGcmData(dec),
    token: tok === undefined || tok === null ? null : parseToken(tok),
  };
}

export function encodeAttestationResponse(resp: AttestationResponse, version: ProtocolVersion): Uint8Array {
  const body: Record<string, unknown> = { success: resp.success };
  if (resp.secret !== undefined) {
    checkLength(resp.secret, 'secret', ...LIMITS.secret);
    body.secret = encodeBase64(resp.secret);
  }
  body.decryption = resp.decryption === null ? null : aesGcmToWire(resp.decryption);
  body.token = resp.token === null ? null : tokenToWire(resp.token);
  if (version === '0.2.0') {
    if (!resp.success || resp.secret === undefined || resp.decryption === null) {
      throw new InvalidArgument(
        'aproxy.encode.response',
        '0.2.0 responses succeed with a secret or are ErrorReplies',
      );
    }
    body.identity = resp.identity ? identityToWire(resp.identity) : null;
    if (resp.signature) checkLength(resp.signature, 'signature', P384_SIGNATURE_SIZE, P384_SIGNATURE_SIZE);
    body.signature = resp.signature ? encodeBase64(resp.signature) : null;
  }
  return encodeJson(body);
}

function parseAesGcmData(v: JsonValue | undefined): AesGcmData {
  const o = expectObject(v, 'decryption', ['epk', 'wrapped_cek', 'aad', 'iv', 'tag']);
  return {
    epk: parseEcKey(o.get('epk'), 'decryption.epk'),
    wrappedCek: bytesField(
      o.get('wrapped_cek'),
      'decryption.wrapped_cek',
      WRAPPED_CEK_SIZE,
      WRAPPED_CEK_SIZE,
    ),
    aad: bytesField(o.get('aad'), 'decryption.aad', ...LIMITS.aad),
    iv: bytesField(o.get('iv'), 'decryption.iv', GCM_IV_SIZE, GCM_IV_SIZE),
    tag: bytesField(o.get('tag'), 'decryption.tag', GCM_TAG_SIZE, GCM_TAG_SIZE),
  };
}

function aesGcmToWire(d: AesGcmData): Record<string, unknown> {
  checkEcKey(d.epk, 'decryption.epk');
  checkLength(d.wrappedCek, 'decryption.wrappedCek', WRAPPED_CEK_SIZE, WRAPPED_CEK_SIZE);
  checkLength(d.aad, 'decryption.aad', ...LIMITS.aad);
  checkLength(d.iv, 'decryption.iv', GCM_IV_SIZE, GCM_IV_SIZE);
  checkLength(d.tag, 'decryption.tag', GCM_TAG_SIZE, GCM_TAG_SIZE);
  return {
    epk: keyToWire(d.epk),
    wrapped_cek: encodeBase64(d.wrappedCek),
    aad: encodeBase64(d.aad),
    iv: encodeBase64(d.iv),
    tag: encodeBase64(d.tag),
  };
}

function keyToWire(k: EcPublicKey): Record<string, string> {
  return { x: encodeBase64(k.x), y: encodeBase64(k.y) };
}

function parseToken(v: JsonValue | undefined): AttestationToken | null {
  if (v === null) return null;
  const o = expectObject(v, 'token', [], ['Jwt', 'Cwt']);
  if (o.size !== 1)
    throw new MalformedEvidence('aproxy.field.missing', 'token: expected exactly one variant');
  const [kind, value] = [...o.entries()][0]!;
  return { kind: kind as 'Jwt' | 'Cwt', value: expectBoundedString(value, `token.${kind}`, ...LIMITS.token) };
}

function tokenToWire(t: AttestationToken): Record<string, string> {
  if (t.kind !== 'Jwt' && t.kind !== 'Cwt') throw new InvalidArgument('aproxy.encode.token', 'token kind');
  return { [t.kind]: t.value };
}
