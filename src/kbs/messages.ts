import { InvalidArgument, MalformedEvidence, NotSupported } from '../errors.js';
import { isObject } from '../util/json-object.js';
import { type KbsServedTee, kbsTeeOf } from './tees.js';

/**
 * RCAR request bodies (kbs_types 0.14 `Request`, `Attestation`; Trustee kbs_attestation_protocol.md).
 * Unknown members are ignored, as serde (without deny_unknown_fields) ignores them. Shape errors have
 * reasons under `kbs.request.` (problem type `bad-request`).
 */

/** The KBS protocol version this server speaks; Trustee requires exactly this (`VersionReq "=0.4.0"`). */
export const KBS_PROTOCOL_VERSION = '0.4.0';

/** kbs_types `Tee` names and which of them this server attests: src/kbs/tees.ts. */
export { KBS_TEE_NAMES, type KbsServedTee, kbsTeeOf, SUPPORTED_KBS_TEES } from './tees.js';

export interface AuthRequest {
  readonly version: string;
  readonly tee: KbsServedTee;
  readonly extraParams: unknown;
}

export interface AttestationBody {
  readonly runtimeData: { readonly nonce: string; readonly teePubkey: unknown };
  readonly primaryEvidence: unknown;
  readonly additionalEvidence: string;
}

const shape = (message: string) => new MalformedEvidence('kbs.request.shape', message);

/**
 * `POST /kbs/v0/auth` body `{version, tee, extra-params}`. Throws MalformedEvidence `kbs.request.shape`,
 * NotSupported `kbs.version` (not 0.4.0), NotSupported `kbs.tee` (a TEE name unknown, or known and not
 * attested here: src/kbs/tees.ts).
 */
export function parseAuthRequest(body: unknown): AuthRequest {
  if (!isObject(body)) throw shape('Request must be a JSON object');
  if (typeof body.version !== 'string') throw shape('Request.version must be a string');
  if (typeof body.tee !== 'string') throw shape('Request.tee must be a string');
  if (!('extra-params' in body)) throw shape('Request.extra-params is required');
  if (body.version !== KBS_PROTOCOL_VERSION) {
    throw new NotSupported(
      'kbs.version',
      `KBS protocol version ${body.version.slice(0, 32)} is not supported; this server speaks ${KBS_PROTOCOL_VERSION}`,
    );
  }
  return { version: body.version, tee: kbsTeeOf(body.tee), extraParams: body['extra-params'] };
}

/**
 * `POST /kbs/v0/attest` body `{init-data?, runtime-data: {nonce, tee-pubkey}, tee-evidence:
 * {primary_evidence, additional_evidence}}`. Throws MalformedEvidence `kbs.request.shape`; NotSupported
 * `kbs.init_data` when init-data is given (HOST_DATA is the broker's instance name here, so an init-data
 * digest cannot be bound to it; refusing beats silently ignoring a binding the client relies on).
 */
export function parseAttestationBody(body: unknown): AttestationBody {
  if (!isObject(body)) throw shape('Attestation must be a JSON object');
  const init = body['init-data'];
  if (init !== undefined && init !== null) {
    throw new NotSupported(
      'kbs.init_data',
      'init-data is not supported: HOST_DATA names the registered instance',
    );
  }
  const rd = body['runtime-data'];
  if (!isObject(rd)) throw shape('Attestation.runtime-data must be an object');
  if (typeof rd.nonce !== 'string') throw shape('runtime-data.nonce must be a string');
  if (!('tee-pubkey' in rd)) throw shape('runtime-data.tee-pubkey is required');
  const te = body['tee-evidence'];
  if (!isObject(te)) throw shape('Attestation.tee-evidence must be an object');
  if (!('primary_evidence' in te)) throw shape('tee-evidence.primary_evidence is required');
  if (typeof te.additional_evidence !== 'string')
    throw shape('tee-evidence.additional_evidence must be a string');
  return {
    runtimeData: { nonce: rd.nonce, teePubkey: rd['tee-pubkey'] },
    primaryEvidence: te.primary_evidence,
    additionalEvidence: te.additional_evidence,
  };
}

/** `<repository>/<type>/<tag>` of a resource request. */
export interface ResourcePath {
  readonly repository: string;
  readonly type: string;
  readonly tag: string;
}

const SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

/** Validates the three path segments. Throws InvalidArgument `kbs.resource.path`. */
export function parseResourcePath(p: { repository?: unknown; type?: unknown; tag?: unknown }): ResourcePath {
  for (const k of ['repository', 'type', 'tag'] as const) {
    const v = p[k];
    if (typeof v !== 'string' || !SEGMENT.test(v)) {
      throw new InvalidArgument('kbs.resource.path', `resource ${k} must match ${SEGMENT.source}`);
    }
  }
  return { repository: p.repository as string, type: p.type as string, tag: p.tag as string };
}

export const formatResourcePath = (p: ResourcePath): string => `${p.repository}/${p.type}/${p.tag}`;
