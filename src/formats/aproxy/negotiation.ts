import { InvalidArgument, MalformedEvidence } from '../../errors.js';
import { encodeBase64 } from '../../util/base64.js';
import { encodeJson } from './encode.js';
import { parseErrorReply } from './error-reply.js';
import { bytesField, checkLength, LIMITS, parseVersionTuple } from './fields.js';
import { expectArray, expectObject, expectString, type JsonValue, parseJson } from './json.js';
import {
  type ErrorReply,
  KBS_TEES,
  type KbsTee,
  type NegotiationParam,
  type NegotiationRequest,
  type NegotiationResponse,
  type ProtocolVersion,
  VERSION_TUPLES,
  versionFromTuple,
} from './types.js';

/**
 * NegotiationRequest (SVSM -> proxy), reference svsm-protocol.md §2: `{"version":[0,1,0],"tee":"snp"}`.
 * The version is parsed but not judged here (the proxy decides what to do with one it does not speak).
 * Other fields are ignored, as serde does, and their paths appended to `unknown` (for the proxy's log).
 * Throws MalformedEvidence `aproxy.json.*`, `aproxy.field.*`.
 */
export function parseNegotiationRequest(
  payload: Uint8Array | JsonValue,
  unknown: string[] = [],
): NegotiationRequest {
  const v = payload instanceof Uint8Array ? parseJson(payload) : payload;
  const o = expectObject(v, 'NegotiationRequest', ['version', 'tee'], [], unknown);
  return {
    version: parseVersionTuple(o.get('version'), 'version'),
    tee: parseTee(o.get('tee') ?? null, 'tee'),
  };
}

export function encodeNegotiationRequest(req: NegotiationRequest): Uint8Array {
  return encodeJson({ version: [req.version[0], req.version[1], req.version[2]], tee: req.tee });
}

/**
 * NegotiationResponse (proxy -> SVSM): `{"challenge":b64,"params":[...]}`; 0.2.0 appends
 * `"version":[0,2,0]` and may list `StateCounter`, and the proxy may send an {@link ErrorReply} instead.
 */
export function parseNegotiationResponse(
  payload: Uint8Array,
  version: ProtocolVersion,
): NegotiationResponse | ErrorReply {
  const v = parseJson(payload);
  if (version === '0.2.0' && v instanceof Map && v.has('error')) return parseErrorReply(v);
  const o =
    version === '0.1.0'
      ? expectObject(v, 'NegotiationResponse', ['challenge', 'params'])
      : expectObject(v, 'NegotiationResponse', ['challenge', 'params', 'version']);
  if (version === '0.2.0') {
    const t = parseVersionTuple(o.get('version'), 'version');
    if (versionFromTuple(t) !== '0.2.0') {
      throw new MalformedEvidence(
        'aproxy.version',
        `NegotiationResponse: version ${t.join('.')} is not 0.2.0`,
      );
    }
  }
  const [cmin, cmax] = LIMITS.challenge;
  return {
    challenge: bytesField(o.get('challenge'), 'challenge', cmin, cmax),
    params: parseParams(o.get('params') ?? null, version),
  };
}

export function encodeNegotiationResponse(resp: NegotiationResponse, version: ProtocolVersion): Uint8Array {
  checkLength(resp.challenge, 'challenge', ...LIMITS.challenge);
  const allowed = allowedParams(version);
  if (resp.params.length > LIMITS.params[1] || resp.params.some((p) => !allowed.includes(p))) {
    throw new InvalidArgument(
      'aproxy.encode.param',
      `params not valid for ${version}: ${resp.params.join(',')}`,
    );
  }
  const body: Record<string, unknown> = {
    challenge: encodeBase64(resp.challenge),
    params: [...resp.params],
  };
  if (version === '0.2.0') body.version = [...VERSION_TUPLES['0.2.0']];
  return encodeJson(body);
}

function allowedParams(version: ProtocolVersion): readonly NegotiationParam[] {
  return version === '0.1.0'
    ? ['Challenge', 'EcPublicKeyBytes']
    : ['Challenge', 'EcPublicKeyBytes', 'StateCounter', 'Domain', 'StateDigest'];
}

function parseParams(v: ReturnType<typeof parseJson>, version: ProtocolVersion): NegotiationParam[] {
  const a = expectArray(v, 'params');
  if (a.length > LIMITS.params[1]) {
    throw new MalformedEvidence(
      'aproxy.field.length',
      `params: ${a.length} entries, at most ${LIMITS.params[1]}`,
    );
  }
  const allowed = allowedParams(version);
  return a.map((p, i) => {
    const s = expectString(p, `params[${i}]`);
    if (!(allowed as readonly string[]).includes(s)) {
      throw new MalformedEvidence('aproxy.param', `params[${i}]: unknown parameter for ${version}`);
    }
    return s as NegotiationParam;
  });
}

export function parseTee(v: ReturnType<typeof parseJson>, field: string): KbsTee {
  const s = expectString(v, field);
  if (!(KBS_TEES as readonly string[]).includes(s)) {
    throw new MalformedEvidence('aproxy.field.value', `${field}: unknown TEE`);
  }
  return s as KbsTee;
}
