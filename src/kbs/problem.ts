import { AttestationError, PolicyRejected } from '../errors.js';

/**
 * RFC 7807 problem documents for the KBS routes. Each refusal has a stable `type` URI (a tag URI, RFC 4151,
 * so it is stable without depending on a web site), a status, a title, and the AttestationError's `code`
 * and `reason` as extension members; policy refusals add `failures` (the failed check codes, never the
 * values). Trustee clients read `{type, detail}` (kbs_types `ErrorInformation`): both are always present.
 * The table is documented in docs/kbs.md.
 */

export const PROBLEM_TYPE_BASE = 'tag:vouchsafe.dev,2026:problem/kbs/';
export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export const PROBLEMS = {
  'bad-request': { status: 400, title: 'Malformed request' },
  'version-unsupported': { status: 400, title: 'KBS protocol version not supported' },
  'tee-unsupported': { status: 400, title: 'TEE not supported' },
  unsupported: { status: 400, title: 'Feature not supported' },
  'tee-pubkey-invalid': { status: 400, title: 'Invalid tee-pubkey' },
  'evidence-malformed': { status: 400, title: 'Malformed evidence encoding' },
  'session-missing': { status: 401, title: 'No kbs-session-id cookie' },
  'session-unknown': { status: 401, title: 'Unknown session' },
  'session-expired': { status: 401, title: 'Session expired' },
  'session-not-attested': { status: 401, title: 'Session has not attested' },
  'nonce-mismatch': { status: 401, title: 'Nonce does not match the session' },
  'challenge-invalid': { status: 401, title: 'Challenge unknown, used or expired' },
  'evidence-invalid': { status: 401, title: 'Evidence did not verify' },
  'report-data-mismatch': { status: 401, title: 'Runtime data does not match REPORT_DATA' },
  'unknown-instance': { status: 401, title: 'No registered instance for this HOST_DATA' },
  'policy-rejected': { status: 401, title: 'Appraisal policy rejected the evidence' },
  'attestation-refused': { status: 401, title: 'Broker refused the release' },
  'token-invalid': { status: 401, title: 'Attestation token invalid' },
  'resource-forbidden': { status: 403, title: 'Resource not allowed by policy' },
  'resource-not-found': { status: 404, title: 'Resource not found' },
  'grant-gone': { status: 410, title: 'Released key no longer held' },
  'too-many-sessions': { status: 503, title: 'Too many sessions' },
  // A per-source or per-instance rate limit (src/api/rate-limits.ts): retry after the Retry-After seconds.
  'rate-limited': { status: 429, title: 'Too many requests' },
  'collateral-unavailable': { status: 503, title: 'Collateral unavailable' },
  // The store or another dependency is down (ERR_UNAVAILABLE): the client may retry; nothing was decided.
  unavailable: { status: 503, title: 'Service unavailable' },
  internal: { status: 500, title: 'Internal error' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ProblemSlug = keyof typeof PROBLEMS;

export interface ProblemDocument {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail: string;
  readonly code?: string;
  readonly reason?: string;
  readonly failures?: readonly string[];
}

/** Exact reasons with their own problem type. */
const BY_REASON: Readonly<Record<string, ProblemSlug>> = {
  'kbs.version': 'version-unsupported',
  'kbs.tee': 'tee-unsupported',
  'kbs.session.missing': 'session-missing',
  'kbs.session.unknown': 'session-unknown',
  'kbs.session.expired': 'session-expired',
  'kbs.session.not_attested': 'session-not-attested',
  'kbs.sessions_full': 'too-many-sessions',
  'kbs.nonce': 'nonce-mismatch',
  'kbs.resource.not_found': 'resource-not-found',
  'kbs.resource.forbidden': 'resource-forbidden',
  'kbs.resource.gone': 'grant-gone',
  'kbs.resource.path': 'bad-request',
  'kbs.evidence.format': 'unsupported',
  'kbs.init_data': 'unsupported',
  'kbs.additional_evidence': 'unsupported',
  'broker.challenge_unknown': 'challenge-invalid',
  'broker.challenge_expired': 'challenge-invalid',
  'broker.report_data_mismatch': 'report-data-mismatch',
  'broker.unknown_instance': 'unknown-instance',
  'api.rate_limited': 'rate-limited',
};

/** Reason prefixes, checked after exact reasons. */
const BY_PREFIX: readonly (readonly [string, ProblemSlug])[] = [
  // The server's own configuration (secret files, token keys): not the client's problem.
  ['kbs.secrets.', 'internal'],
  ['kbs.token_keys.', 'internal'],
  ['kbs.request.', 'bad-request'],
  ['kbs.resource.', 'resource-forbidden'],
  ['kbs.tee_pubkey.', 'tee-pubkey-invalid'],
  ['kbs.evidence.', 'evidence-malformed'],
  // Trustee's struct form that does not say exactly one report (src/formats/snp/sev-json.ts).
  ['snp.sev_json.', 'evidence-malformed'],
  // az-snp-vtpm evidence JSON that is not one of Trustee's three forms (src/formats/azure/evidence-json.ts).
  ['azure.evidence.', 'evidence-malformed'],
  ['token.', 'token-invalid'],
  ['broker.kek.', 'internal'],
  ['broker.config', 'internal'],
  ['broker.', 'attestation-refused'],
];

const BY_CODE: Readonly<Record<string, ProblemSlug>> = {
  ERR_MALFORMED: 'evidence-invalid',
  ERR_SIGNATURE_INVALID: 'evidence-invalid',
  ERR_CHAIN_INVALID: 'evidence-invalid',
  ERR_BINDING_MISMATCH: 'evidence-invalid',
  ERR_POLICY_REJECTED: 'policy-rejected',
  ERR_NOT_SUPPORTED: 'unsupported',
  ERR_COLLATERAL_UNAVAILABLE: 'collateral-unavailable',
  ERR_REFUSED: 'attestation-refused',
  ERR_UNAVAILABLE: 'unavailable',
};

function slugOf(e: AttestationError): ProblemSlug {
  const exact = BY_REASON[e.reason];
  if (exact) return exact;
  for (const [prefix, slug] of BY_PREFIX) if (e.reason.startsWith(prefix)) return slug;
  const byCode = BY_CODE[e.code];
  if (byCode) return byCode;
  // InvalidArgument from below the API (configuration, KEK) is the server's problem, not the client's.
  return e.reason.startsWith('kbs.') ? 'bad-request' : 'internal';
}

/** A problem document for `slug` with `detail`. */
export function problem(
  slug: ProblemSlug,
  detail: string,
  extra: Partial<ProblemDocument> = {},
): ProblemDocument {
  const p = PROBLEMS[slug];
  return { type: PROBLEM_TYPE_BASE + slug, title: p.title, status: p.status, detail, ...extra };
}

/**
 * The problem document for a thrown value. AttestationErrors keep their code, reason and message (messages
 * carry no secrets by convention); anything else becomes an opaque `internal` problem.
 */
export function problemFromError(e: unknown): ProblemDocument {
  if (!(e instanceof AttestationError)) return problem('internal', 'internal error');
  const slug = slugOf(e);
  if (slug === 'internal') return problem('internal', 'internal error', { code: e.code, reason: e.reason });
  return problem(slug, e.message, {
    code: e.code,
    reason: e.reason,
    ...(e instanceof PolicyRejected ? { failures: e.failures.map((f) => f.code) } : {}),
  });
}
