import type { Static, TSchema } from '@sinclair/typebox';
import { createHttpClient, type HttpRequest } from '../util/http-client.js';
import { errorFromReply, replyAs } from '../wire/decode.js';
import {
  AuditPage,
  AuditVerification,
  InstanceList,
  InstanceView,
  OkResponse,
  ResetResponse,
  RotateResponse,
  TokenKeyRotationResponse,
} from '../wire/schemas.js';
import type { AdminApi, AuditVerificationJson } from './types.js';

export interface HttpAdminOptions {
  /** The broker's base URL, e.g. https://broker.example:8443 */
  readonly url: string;
  readonly token: string;
  /** PEM CA an https broker's certificate must chain to. */
  readonly ca?: string | Uint8Array;
  /** Deadline of each call, connect to last byte (default 30 000 ms). */
  readonly timeoutMs?: number;
  /** Deadline of the TCP connect and TLS handshake (default 10 000 ms). */
  readonly connectTimeoutMs?: number;
}

/** Largest admin reply read (an audit page of 1000 entries is well under this). */
const MAX_ADMIN_REPLY = 8 << 20;

/** The Unavailable reasons of the admin client: the broker's admin API could not be asked. */
export const ADMIN_UNAVAILABLE = {
  unreachable: 'admin.unreachable',
  timeout: 'admin.timeout',
  badResponse: 'admin.bad_response',
} as const;

/** One admin call: sends the JSON body with the bearer token, returns the reply checked against `schema`. */
export type AdminCall = <S extends TSchema>(
  method: HttpRequest['method'],
  path: string,
  schema: S,
  body?: unknown,
) => Promise<Static<S>>;

/**
 * Admin API calls over the one HTTP client (src/util/http-client.ts: pinned CA, deadlines, bounded
 * replies). A 2xx reply is checked against the route's schema (wire/schemas.ts); a refusal becomes the
 * broker's typed error (wire/decode.ts). Throws InvalidArgument `admin.url` for a bad URL or CA; Unavailable
 * `admin.unreachable`, `admin.timeout`, `admin.bad_response` when the broker cannot be asked.
 */
export function adminCaller(o: HttpAdminOptions): { call: AdminCall; close: () => void } {
  const client = createHttpClient({
    baseUrl: o.url,
    ...(o.ca !== undefined ? { ca: o.ca } : {}),
    ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
    ...(o.connectTimeoutMs !== undefined ? { connectTimeoutMs: o.connectTimeoutMs } : {}),
    maxReplyBytes: MAX_ADMIN_REPLY,
    reasons: ADMIN_UNAVAILABLE,
    configReason: 'admin.url',
  });
  const headers = { authorization: `Bearer ${o.token}` };
  const call: AdminCall = async (method, path, schema, body) => {
    const r = await client.json(method, path, body, { headers });
    const err = errorFromReply(r.status, r.body, ADMIN_UNAVAILABLE.badResponse);
    if (err) throw err;
    return replyAs(schema, r.body, ADMIN_UNAVAILABLE.badResponse);
  };
  return { call, close: () => client.close() };
}

/** The admin API over HTTP(S); errors as {@link adminCaller}. */
export function httpAdmin(o: HttpAdminOptions): AdminApi {
  const { call, close } = adminCaller(o);
  const id = (s: string) => encodeURIComponent(s);
  return {
    register: (r) => call('POST', '/v1/admin/instances', InstanceView, r),
    list: async () => (await call('GET', '/v1/admin/instances', InstanceList)).instances,
    show: (i) => call('GET', `/v1/admin/instances/${id(i)}`, InstanceView),
    setPolicy: async (i, policy) => {
      await call('PUT', `/v1/admin/instances/${id(i)}/policy`, OkResponse, { policy });
    },
    setNewLaunch: async (i, newLaunch) => {
      await call('PUT', `/v1/admin/instances/${id(i)}/new-launch`, OkResponse, { newLaunch });
    },
    rotateKey: (i) => call('POST', `/v1/admin/instances/${id(i)}/rotate-key`, RotateResponse),
    resetBoot: (i, note) =>
      call(
        'POST',
        `/v1/admin/instances/${id(i)}/reset-boot`,
        ResetResponse,
        note === undefined ? {} : { note },
      ),
    readAudit: async (after, limit) =>
      call('GET', `/v1/admin/audit?after=${after}&limit=${limit}`, AuditPage),
    verifyAudit: async () =>
      (await call('GET', '/v1/admin/audit/verify', AuditVerification)) as AuditVerificationJson,
    close: async () => close(),
  };
}

/**
 * Calls a running broker's `POST /v1/admin/token-keys/rotate` (what `vouchsafe token-keys rotate` does).
 * Throws the broker's refusal as an AttestationError with its code and reason; otherwise as
 * {@link adminCaller}.
 */
export async function rotateTokenKeyOverHttp(
  o: HttpAdminOptions,
): Promise<Static<typeof TokenKeyRotationResponse>> {
  const { call, close } = adminCaller(o);
  try {
    return await call('POST', '/v1/admin/token-keys/rotate', TokenKeyRotationResponse);
  } finally {
    close();
  }
}
