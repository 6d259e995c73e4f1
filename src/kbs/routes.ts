import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  InvalidArgument,
  isAttestationError,
  MalformedEvidence,
  NotSupported,
  SignatureInvalid,
} from '../errors.js';
import { parseReport } from '../formats/snp/report.js';
import { encodeBase64 } from '../util/base64.js';
import { toHex } from '../util/bytes.js';
import { NO_COUNTERS } from '../util/metrics.js';
import { type BindingCandidate, bindingCandidates, matchBinding, trusteeRuntimeData } from './binding.js';
import { sourceOf } from './client-source.js';
import { readCookie, SESSION_COOKIE, sessionCookie } from './cookie.js';
import type { KbsBroker, KbsDeps } from './deps.js';
import { parseSnpPrimaryEvidence } from './evidence.js';
import { parseAzurePrimaryEvidence } from './evidence-azure.js';
import { parseTdxPrimaryEvidence } from './evidence-tdx.js';
import { sealToTeeKey } from './jwe.js';
import { parseAttestationBody, parseAuthRequest, parseResourcePath } from './messages.js';
import { PROBLEM_CONTENT_TYPE, type ProblemDocument, problem, problemFromError } from './problem.js';
import { SessionStore } from './sessions.js';
import { type KbsSessions, memorySessions } from './store-sessions.js';
import { parseTeePubkey } from './tee-pubkey.js';
import type { KbsServedTee } from './tees.js';
import { readSnpEarSubject } from './tokens/ear-tokens.js';

export const KBS_AUTH_PATH = '/kbs/v0/auth';
export const KBS_ATTEST_PATH = '/kbs/v0/attest';
export const KBS_RESOURCE_PATH = '/kbs/v0/resource/:repository/:type/:tag';
/** Where the token verification keys are published (the lead may also mount jwksHandler elsewhere). */
export const KBS_JWKS_PATH = '/kbs/v0/.well-known/jwks';

const AUTH_BODY_LIMIT = 64 * 1024;
/** A report, a certificate table (VCEK + ASK + ARK, < 8 KiB) and the JWK, base64: 2 MiB is generous. */
const ATTEST_BODY_LIMIT = 2 * 1024 * 1024;

function sendProblem(reply: FastifyReply, p: ProblemDocument): FastifyReply {
  return reply.code(p.status).header('content-type', PROBLEM_CONTENT_TYPE).send(JSON.stringify(p));
}

/**
 * Answers a refusal with its problem document and logs it as the /v1 routes do (src/api/server.ts): an
 * untyped error is ours and is logged in full at error level; a typed refusal is logged at info with its
 * code, reason and status only. Not the message, not a policy failure's expected/actual values, never the
 * request body: the log must not hold secrets or what a caller would need to aim for.
 */
function refuse(req: FastifyRequest, reply: FastifyReply, e: unknown): FastifyReply {
  const p = problemFromError(e);
  // A rate limit (the API's RateLimited, e.g. the per-instance one inside the broker) says when to retry.
  const retry = (e as { retryAfterSeconds?: unknown } | null)?.retryAfterSeconds;
  if (p.status === 429 && typeof retry === 'number') reply.header('retry-after', String(retry));
  if (!isAttestationError(e)) {
    req.log.error({ err: e, route: req.routeOptions?.url, status: p.status }, 'internal error');
  } else {
    req.log.info({ code: e.code, reason: e.reason, status: p.status }, 'kbs request refused');
  }
  return sendProblem(reply, p);
}

/**
 * Registers the RCAR routes (reference kbs-and-peers.md §1; docs/kbs.md) on `app`, with full paths
 * (register without a prefix). Handlers only decode, call `deps`, and encode; every refusal is an RFC 7807
 * problem document.
 */
export async function registerKbsRoutes(app: FastifyInstance, deps: KbsDeps): Promise<void> {
  const now = deps.now ?? Date.now;
  const metrics = deps.metrics ?? NO_COUNTERS;
  const sessions =
    deps.sessions ??
    memorySessions(
      new SessionStore({
        ttlMs: deps.sessionTtlMs ?? 300_000,
        maxSessions: deps.maxSessions ?? 10_000,
        ...(deps.maxPendingSessionsPerSource !== undefined
          ? { maxPendingPerSource: deps.maxPendingSessionsPerSource }
          : {}),
        now,
      }),
    );
  const syncKeys = deps.syncTokenKeys ?? (() => Promise.resolve());

  // Body-parser failures (bad JSON, wrong content type, too large) become problems too. Registered through
  // the kbsRoutes plugin, this handler is scoped to the plugin's encapsulation context and does not touch
  // other routes; call registerKbsRoutes directly only on a context of its own.
  app.setErrorHandler((err: { statusCode?: number; code?: string; message?: string }, req, reply) => {
    const status = typeof err.statusCode === 'number' ? err.statusCode : 500;
    if (status >= 400 && status < 500) {
      req.log.info({ code: err.code ?? 'FST_ERR', status }, 'kbs request refused');
      return sendProblem(reply, {
        ...problem('bad-request', `${err.code ?? 'FST_ERR'}: ${String(err.message ?? '').slice(0, 200)}`),
        status,
      });
    }
    return refuse(req, reply, err);
  });

  app.post(KBS_AUTH_PATH, { bodyLimit: AUTH_BODY_LIMIT }, async (req, reply) => {
    try {
      // The session keeps the TEE: /attest decodes that TEE's evidence (Trustee's session does the same).
      const { tee } = parseAuthRequest(req.body);
      const { challenge } = await deps.broker.issueChallenge();
      const nonce = encodeBase64(challenge);
      // Counted against the client's address (req.ip: the socket's peer unless fastify trusts a proxy).
      const s = await sessions.create(sourceOf(req.ip), nonce, challenge, tee);
      return reply
        .header('set-cookie', sessionCookie(s.id, s.expiresAt))
        .header('content-type', 'application/json')
        .send(JSON.stringify({ nonce, 'extra-params': '' }));
    } catch (e) {
      return refuse(req, reply, e);
    }
  });

  app.post(KBS_ATTEST_PATH, { bodyLimit: ATTEST_BODY_LIMIT }, async (req, reply) => {
    try {
      const id = readCookie(req.headers.cookie, SESSION_COOKIE);
      if (id === undefined) throw new InvalidArgument('kbs.session.missing', 'no kbs-session-id cookie');
      const found = await sessions.get(id);
      if (found.status === 'unknown')
        throw new InvalidArgument('kbs.session.unknown', 'unknown kbs-session-id');
      if (found.status === 'expired') throw new InvalidArgument('kbs.session.expired', 'the session expired');
      const s = found.session;
      if (s.phase === 'attested') {
        // Trustee returns the session's token again rather than attesting twice.
        return reply.header('content-type', 'application/json').send(JSON.stringify({ token: s.token }));
      }

      const body = parseAttestationBody(req.body);
      if (body.runtimeData.nonce !== s.nonce) {
        throw new InvalidArgument('kbs.nonce', 'runtime-data.nonce is not the nonce of this session');
      }
      const tee = parseTeePubkey(body.runtimeData.teePubkey);
      const evidence = primaryEvidenceOf(s.tee, body.primaryEvidence);
      if (body.additionalEvidence !== '') {
        throw new NotSupported('kbs.additional_evidence', 'additional (device) evidence is not supported');
      }
      const candidates = bindingCandidates(s.nonce, s.challenge, tee, body.additionalEvidence);
      const binding = chooseBinding(s.tee, evidence.report, candidates);

      // Timed where the broker decides, the same span the native /v1/attest histogram covers.
      const started = performance.now();
      const decided = (outcome: 'released' | 'refused') =>
        metrics.observe('vouchsafe_release_duration_seconds', (performance.now() - started) / 1000, {
          api: 'kbs',
          outcome,
        });
      let att: Awaited<ReturnType<KbsBroker['attest']>>;
      try {
        att = await deps.broker.attest({
          tee: s.tee,
          report: evidence.report,
          ...(evidence.certTable ? { certTable: evidence.certTable } : {}),
          challenge: s.challenge,
          expectedReportData: binding.reportData,
        });
      } catch (e) {
        decided('refused');
        throw e;
      }
      decided('released');
      // Signed with the key every replica now signs with (a rotation elsewhere is taken first).
      await syncKeys();
      const { token } = deps.tokens.issueSnp({
        jti: att.grant,
        nonce: s.nonce,
        identity: { brokerInstanceId: att.instance.id, ...identityOf(att.instance), source: 'registry' },
        ...(att.claims ? { snp: att.claims } : {}),
        ...(att.teeClaims ? { teeClaims: att.teeClaims } : {}),
        reportData: toHex(binding.reportData),
        runtimeData: trusteeRuntimeData(s.nonce, tee, body.additionalEvidence),
        binding: binding.name,
        policyId: att.policyId,
        appraisal: att.appraisal,
      });
      // False only when the session expired meanwhile: the token is valid all the same.
      await sessions.attest(id, token);
      return reply
        .header('set-cookie', sessionCookie(id, s.expiresAt))
        .header('content-type', 'application/json')
        .send(JSON.stringify({ token }));
    } catch (e) {
      return refuse(req, reply, e);
    }
  });

  app.get(KBS_RESOURCE_PATH, async (req, reply) => {
    try {
      const token = await tokenOf(req, sessions);
      const path = parseResourcePath(req.params as { [k: string]: unknown });
      const subject = readSnpEarSubject(await verifyToken(deps, syncKeys, token));
      const teeKey = parseTeePubkey(subject.teePubkey);
      const bytes = await deps.broker.readResource({ path, subject });
      try {
        const jwe = await sealToTeeKey(teeKey, bytes);
        return reply.header('content-type', 'application/json').send(JSON.stringify(jwe));
      } finally {
        bytes.fill(0);
      }
    } catch (e) {
      return refuse(req, reply, e);
    }
  });

  app.get(KBS_JWKS_PATH, async (_req, reply) => jwksHandler(deps, reply));
}

/**
 * Verifies a token; one signed by a key this replica does not hold yet (a rotation made by another
 * replica since its last sync) is verified again after taking the stored keys.
 */
async function verifyToken(deps: KbsDeps, syncKeys: () => Promise<void>, token: string) {
  try {
    return deps.tokens.verify(token);
  } catch (e) {
    if (!(e instanceof SignatureInvalid && e.reason === 'token.kid')) throw e;
    await syncKeys();
    return deps.tokens.verify(token);
  }
}

/** GET handler body for a JWKS endpoint (for mounting at /.well-known/jwks.json too). */
export async function jwksHandler(
  deps: Pick<KbsDeps, 'tokens' | 'syncTokenKeys'>,
  reply: FastifyReply,
): Promise<FastifyReply> {
  await deps.syncTokenKeys?.();
  return reply
    .header('content-type', 'application/jwk-set+json')
    .header('cache-control', 'public, max-age=60')
    .send(JSON.stringify(deps.tokens.jwks()));
}

const identityOf = (i: { project: string; zone: string; instanceId: string; instanceName: string }) => ({
  project: i.project,
  zone: i.zone,
  instanceId: i.instanceId,
  instanceName: i.instanceName,
});

/** The session's TEE's primary evidence: the broker's evidence bytes (and SNP's certificate table). */
function primaryEvidenceOf(
  tee: KbsServedTee,
  v: unknown,
): { readonly report: Uint8Array; readonly certTable?: Uint8Array } {
  if (tee === 'tdx') {
    // The quote is the evidence; the CCEL log travels where SNP's certificate table does (the tdx row).
    const { quote, ccel } = parseTdxPrimaryEvidence(v);
    return { report: quote, ...(ccel ? { certTable: ccel } : {}) };
  }
  return tee === 'az-snp-vtpm'
    ? { report: parseAzurePrimaryEvidence(v).evidence }
    : parseSnpPrimaryEvidence(v);
}

/**
 * The binding rule REPORT_DATA follows. Choosing by looking at the (not yet verified) report is safe: the
 * broker then checks, after verifying the signature, that REPORT_DATA equals the chosen value, and every
 * candidate commits to the nonce and the tee-pubkey. When none matches (or the report does not parse), the
 * first rule is passed on and the broker refuses with its own, audited reason. `az-snp-vtpm` and `tdx`
 * follow Trustee's rule only (the CoCo Azure attester puts that digest in the quote's nonce, the TDX
 * attester in REPORTDATA's first 48 bytes, zero-padded: Trustee deps/verifier/src/tdx; aproxy's rule is
 * SVSM's), so it is always the one passed on.
 */
function chooseBinding(
  tee: KbsServedTee,
  report: Uint8Array,
  candidates: readonly BindingCandidate[],
): BindingCandidate {
  if (tee !== 'snp') return candidates.find((c) => c.name === 'trustee-jcs-sha384') ?? candidates[0]!;
  let reportData: Uint8Array | undefined;
  try {
    reportData = parseReport(report).reportData;
  } catch {
    reportData = undefined;
  }
  return (reportData && matchBinding(reportData, candidates)) ?? candidates[0]!;
}

/** The bearer token (Authorization wins) or the attested session's token. */
async function tokenOf(req: FastifyRequest, sessions: KbsSessions): Promise<string> {
  const auth = req.headers.authorization;
  if (auth !== undefined) {
    const m = /^Bearer ([A-Za-z0-9_.-]+)$/.exec(auth);
    if (!m) throw new MalformedEvidence('token.format', 'Authorization must be "Bearer <token>"');
    return m[1]!;
  }
  const id = readCookie(req.headers.cookie, SESSION_COOKIE);
  if (id === undefined)
    throw new InvalidArgument('kbs.session.missing', 'no kbs-session-id cookie or bearer token');
  const found = await sessions.get(id);
  if (found.status === 'unknown') throw new InvalidArgument('kbs.session.unknown', 'unknown kbs-session-id');
  if (found.status === 'expired') throw new InvalidArgument('kbs.session.expired', 'the session expired');
  if (found.session.phase !== 'attested') {
    throw new InvalidArgument('kbs.session.not_attested', 'the session has not attested yet');
  }
  return found.session.token;
}
