import { InvalidArgument, MalformedEvidence } from '../../errors.js';
import { type DialectBinding, formatHashAlgo, parseHashAlgo, parsePayloadFormat } from './dialect-binding.js';
import { encodeJson } from './encode.js';
import {
  expectBoundedString,
  expectObject,
  expectString,
  JsonNumber,
  type JsonValue,
  parseJson,
} from './json.js';

/**
 * svsm PR #1203 (head bdf46eda, "aproxy as an HTTP forwarder"; reference svsm-protocol.md §8). After main's
 * opening message (here called ConfigRequest, same shape and version `[0,1,0]`):
 * - ConfigResponse `{"hash_algo":"sha384"|"sha512"|"sha256","payload_format":"JwsJson"|"RawBinary",
 *   "auth_endpoint","attest_endpoint","resource_endpoint"}` (hash_algo is kbs_types' lower-case spelling);
 * - then, until EOF, ProxyRequest `{"endpoint":"/kbs/v0/...","method":"GET"|"POST","body":<JSON>}` and
 *   ProxyResponse `{"status":<u16>,"body":"<raw text>"}`.
 * Decoders throw MalformedEvidence `aproxy.json.*`, `aproxy.field.*`.
 */
export interface ConfigResponse extends DialectBinding {
  readonly authEndpoint: string;
  readonly attestEndpoint: string;
  readonly resourceEndpoint: string;
}

export type HttpMethod = 'GET' | 'POST';

export interface ProxyRequest {
  readonly endpoint: string;
  readonly method: HttpMethod;
  /** The JSON body as parsed (strict, depth-capped); {@link stringifyJsonValue} writes it back. */
  readonly body: JsonValue;
}

export interface ProxyResponse {
  /** The HTTP status, or 500 for a transport error (as the PR's aproxy). */
  readonly status: number;
  /** The response body as text. */
  readonly body: string;
}

/** Bounds: endpoint paths and forwarded bodies (the KBS messages are a few KiB; reports 1.2 KiB). */
export const PR1203_LIMITS = {
  endpoint: 256,
  /** A ProxyResponse body, bytes of UTF-8. */
  responseBody: 256 * 1024,
} as const;

/** An absolute path of URL-safe characters, no `..`, no query or fragment: what may follow the KBS base URL. */
const ENDPOINT = /^\/(?:[A-Za-z0-9._~-]+\/)*[A-Za-z0-9._~-]+$/;

/** Checks an endpoint path; throws MalformedEvidence `aproxy.field.value` (decode) or the caller's error. */
export function isSafeEndpoint(s: string): boolean {
  return s.length <= PR1203_LIMITS.endpoint && ENDPOINT.test(s) && !s.split('/').includes('..');
}

function endpointField(v: JsonValue | undefined, field: string): string {
  const s = expectBoundedString(v, field, 1, PR1203_LIMITS.endpoint);
  if (!isSafeEndpoint(s))
    throw new MalformedEvidence('aproxy.field.value', `${field}: not a plain absolute path`);
  return s;
}

export function parseConfigResponse(payload: Uint8Array): ConfigResponse {
  const o = expectObject(parseJson(payload), 'ConfigResponse', [
    'hash_algo',
    'payload_format',
    'auth_endpoint',
    'attest_endpoint',
    'resource_endpoint',
  ]);
  return {
    hashAlgo: parseHashAlgo(expectString(o.get('hash_algo'), 'hash_algo'), 'hash_algo', 'lower'),
    payloadFormat: parsePayloadFormat(
      expectString(o.get('payload_format'), 'payload_format'),
      'payload_format',
    ),
    authEndpoint: endpointField(o.get('auth_endpoint'), 'auth_endpoint'),
    attestEndpoint: endpointField(o.get('attest_endpoint'), 'attest_endpoint'),
    resourceEndpoint: endpointField(o.get('resource_endpoint'), 'resource_endpoint'),
  };
}

export function encodeConfigResponse(c: ConfigResponse): Uint8Array {
  for (const e of [c.authEndpoint, c.attestEndpoint, c.resourceEndpoint]) {
    if (!isSafeEndpoint(e))
      throw new InvalidArgument('aproxy.encode.endpoint', 'endpoint: not a plain absolute path');
  }
  return encodeJson({
    hash_algo: formatHashAlgo(c.hashAlgo, 'lower'),
    payload_format: c.payloadFormat,
    auth_endpoint: c.authEndpoint,
    attest_endpoint: c.attestEndpoint,
    resource_endpoint: c.resourceEndpoint,
  });
}

export function parseProxyRequest(payload: Uint8Array | JsonValue): ProxyRequest {
  const v = payload instanceof Uint8Array ? parseJson(payload) : payload;
  const o = expectObject(v, 'ProxyRequest', ['endpoint', 'method', 'body']);
  const method = expectString(o.get('method'), 'method');
  if (method !== 'GET' && method !== 'POST') {
    throw new MalformedEvidence('aproxy.field.value', 'method: GET or POST');
  }
  return { endpoint: endpointField(o.get('endpoint'), 'endpoint'), method, body: o.get('body')! };
}

/** `body` is plain JSON data (objects, arrays, strings, finite numbers, booleans, null). */
export function encodeProxyRequest(r: { endpoint: string; method: HttpMethod; body: unknown }): Uint8Array {
  if (!isSafeEndpoint(r.endpoint))
    throw new InvalidArgument('aproxy.encode.endpoint', 'endpoint: not a plain absolute path');
  if (r.method !== 'GET' && r.method !== 'POST')
    throw new InvalidArgument('aproxy.encode.method', 'GET or POST');
  return encodeJson({ endpoint: r.endpoint, method: r.method, body: r.body ?? null });
}

export function parseProxyResponse(payload: Uint8Array): ProxyResponse {
  const o = expectObject(parseJson(payload), 'ProxyResponse', ['status', 'body']);
  const st = o.get('status');
  if (!(st instanceof JsonNumber))
    throw new MalformedEvidence('aproxy.field.type', 'status: expected an integer');
  if (!/^[1-9][0-9]{0,4}$/.test(st.text) || Number(st.text) > 0xffff) {
    throw new MalformedEvidence('aproxy.field.value', 'status: not a u16');
  }
  return {
    status: Number(st.text),
    body: expectBoundedString(o.get('body'), 'body', 0, PR1203_LIMITS.responseBody),
  };
}

export function encodeProxyResponse(r: ProxyResponse): Uint8Array {
  if (!Number.isInteger(r.status) || r.status < 100 || r.status > 999) {
    throw new InvalidArgument('aproxy.encode.status', 'status: an HTTP status code');
  }
  if (typeof r.body !== 'string' || Buffer.byteLength(r.body, 'utf8') > PR1203_LIMITS.responseBody) {
    throw new InvalidArgument('aproxy.encode.length', `body: at most ${PR1203_LIMITS.responseBody} bytes`);
  }
  return encodeJson({ status: r.status, body: r.body });
}

/**
 * Writes a parsed JSON value back as compact JSON text (numbers as they were written, object members in
 * their order), so a forwarded body says exactly what the guest sent.
 */
export function stringifyJsonValue(v: JsonValue): string {
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return JSON.stringify(v);
  if (v instanceof JsonNumber) return v.text;
  if (Array.isArray(v)) return `[${v.map(stringifyJsonValue).join(',')}]`;
  return `{${[...v].map(([k, x]) => `${JSON.stringify(k)}:${stringifyJsonValue(x)}`).join(',')}}`;
}
