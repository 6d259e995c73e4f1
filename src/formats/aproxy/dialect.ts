import { type JsonValue, parseJson } from './json.js';

/**
 * The message sets ("dialects") that all open with `{"version":[0,1,0],"tee":"snp"}` (reference
 * svsm-protocol.md §8): `main` (svsm main today, plus Vouchsafe's 0.2.0), `pr1122` (svsm PR #1122) and
 * `pr1203` (svsm PR #1203, the HTTP forwarder). The opening message cannot tell them apart, so the operator
 * names the dialect; a mismatch shows in the next message, which {@link sniffDialect} recognises.
 */
export type Dialect = 'main' | 'pr1122' | 'pr1203';
export const DIALECTS: readonly Dialect[] = ['main', 'pr1122', 'pr1203'];

export function isDialect(s: unknown): s is Dialect {
  return typeof s === 'string' && (DIALECTS as readonly string[]).includes(s);
}

const has = (v: JsonValue | undefined, ...keys: string[]): boolean =>
  v instanceof Map && keys.every((k) => v.has(k));

/**
 * Which dialect a message looks like, by its member names only (no value is validated): a guest's second
 * message (AttestationRequest of main or PR #1122, or a PR #1203 ProxyRequest) or a proxy's first reply
 * (NegotiationResponse of main or PR #1122, or a PR #1203 ConfigResponse). Undefined when it looks like
 * none or the bytes are not JSON. Never throws.
 */
export function sniffDialect(payload: Uint8Array): Dialect | undefined {
  let v: JsonValue;
  try {
    v = parseJson(payload);
  } catch {
    return undefined;
  }
  if (!(v instanceof Map)) return undefined;
  if (has(v, 'endpoint', 'method') || has(v, 'auth_endpoint')) return 'pr1203';
  if (has(v, 'hash_algo', 'payload_format', 'challenge')) return 'pr1122';
  if (has(v, 'challenge', 'params')) return 'main';
  const ev = v.get('evidence');
  const snp = ev instanceof Map ? ev.get('Snp') : undefined;
  if (has(snp, 'attestation_report')) return 'pr1122';
  if (has(snp, 'report')) return 'main';
  return undefined;
}
