import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../api/http-errors.js';
import { crlPem } from '../ca/ca-files.js';
import { listCollateralDir } from '../collateral/listing.js';
import { AttestationError, ErrorCode, InvalidArgument } from '../errors.js';
import { appraiseEvidence, checkTeePolicy } from '../policy/tees.js';
import { certificateDetail, certificateProject, certificateSummary } from './certificates.js';
import { type DashboardContext, principalOf, requireAllProjects, requireRole, visible } from './context.js';
import { summarizeMetrics } from './metrics-view.js';
import { seesAll } from './principal.js';

const Base64 = Type.String({ pattern: '^[A-Za-z0-9+/]*={0,2}$', maxLength: 48_000 });
const PolicyCheck = Type.Object(
  {
    tee: Type.Optional(Type.String({ pattern: '^[a-z0-9-]{1,16}$' })),
    report: Base64,
    certTable: Type.Optional(Base64),
    policy: Type.Object({}, { additionalProperties: true }),
  },
  { additionalProperties: false },
);
const Serial = Type.Object({ serial: Type.String({ pattern: '^[0-9a-f]{1,64}$' }) });
const RevokeBody = Type.Object(
  { reason: Type.Integer({ minimum: 0, maximum: 10 }) },
  { additionalProperties: false },
);

/**
 * Platform pages: health figures, the KDS collateral cache, "what would this report get", and the platform
 * CA's certificates and CRL (when the broker was given the CA).
 */
export function registerPlatformRoutes(app: FastifyInstance, ctx: DashboardContext): void {
  app.get('/api/metrics', async (req) => {
    // Counters span every project: only a credential for all projects sees them.
    requireAllProjects(principalOf(req));
    return summarizeMetrics(ctx.parts.metrics.snapshot(), ctx.now());
  });

  app.get('/api/collateral', async () => {
    const dir = ctx.parts.kdsCacheDir;
    if (!dir) return { dir: null, files: [], crlRefresh: null };
    const files = await listCollateralDir(dir, ctx.now());
    const delay = ctx.parts.crl?.nextDelay();
    return { dir, files, crlRefresh: delay === undefined ? null : { nextCheckAt: ctx.now() + delay } };
  });

  // "What would this report get": the deployment's own verifier (roots, KDS, CRLs), then the given policy
  // with every rule checked and not checked. Nothing is stored, audited or released.
  app.post('/api/policy/check', { schema: { body: PolicyCheck } }, async (req) => {
    principalOf(req);
    const b = req.body as typeof PolicyCheck.static;
    const tee = b.tee ?? 'snp';
    checkTeePolicy(tee, b.policy);
    const report = new Uint8Array(Buffer.from(b.report, 'base64'));
    const table = b.certTable ? new Uint8Array(Buffer.from(b.certTable, 'base64')) : undefined;
    let verified: Awaited<ReturnType<typeof ctx.parts.verifyEvidence>>;
    try {
      verified = await ctx.parts.verifyEvidence(tee, report, table);
    } catch (e) {
      if (!(e instanceof AttestationError)) throw e;
      return {
        verdict: 'unverified',
        error: { code: e.code, reason: e.reason, message: e.message },
        claims: null,
      };
    }
    const a = appraiseEvidence(verified, b.policy);
    return {
      verdict: a.failures.length === 0 ? 'accepted' : 'rejected',
      // The operator's own tool: the expected and actual values are shown (the guest API never sends them).
      failures: a.failures.map((f) => ({
        code: f.code,
        message: f.message,
        expected: f.expected ?? null,
        actual: f.actual ?? null,
      })),
      checked: a.checked,
      unchecked: a.unchecked,
      claims: verified.claims.details,
    };
  });

  const caOf = () => {
    if (!ctx.ca)
      throw new ApiError(
        ErrorCode.NotSupported,
        'web.ca_unconfigured',
        'this broker was not given the platform CA (serve --ca-dir)',
      );
    return ctx.ca;
  };

  app.get('/api/certificates', async (req) => {
    const p = principalOf(req);
    if (!ctx.ca) return { configured: false, certificates: [] };
    const all = await ctx.ca.repository.listCertificates();
    return {
      configured: true,
      certificates: all
        .filter((r) => r.kind === 'ek' || r.kind === 'ak' || seesAll(p))
        .filter((r) => visible(p, certificateProject(r)))
        .map(certificateSummary),
    };
  });

  app.get('/api/certificates/:serial', { schema: { params: Serial } }, async (req) => {
    const p = principalOf(req);
    const { serial } = req.params as { serial: string };
    const r = await caOf().repository.getCertificate(serial);
    if (!r || !visible(p, certificateProject(r))) {
      throw new InvalidArgument('ca.serial_unknown', `no certificate ${serial}`);
    }
    return certificateDetail(r);
  });

  app.post(
    '/api/certificates/:serial/revoke',
    { schema: { params: Serial, body: RevokeBody } },
    async (req) => {
      const p = principalOf(req);
      requireRole(p, 'admin');
      const ca = caOf();
      const { serial } = req.params as { serial: string };
      const r = await ca.repository.getCertificate(serial);
      if (!r || !visible(p, certificateProject(r)) || (r.kind !== 'ek' && r.kind !== 'ak')) {
        throw new InvalidArgument('ca.serial_unknown', `no certificate ${serial}`);
      }
      const result = await ca.revoke(serial, (req.body as { reason: number }).reason);
      // A revocation takes effect for relying parties with the next CRL: issue it now.
      const crl = await ca.generateCrl();
      req.log.info(
        { event: 'dashboard_revoke', serial, by: p.name, crl: crl.number },
        'certificate revoked from the dashboard',
      );
      return { result, crlNumber: crl.number };
    },
  );

  app.get('/api/crl', async (req) => {
    principalOf(req);
    if (!ctx.ca) return { configured: false, crl: null };
    const c = await ctx.ca.repository.latestCrl();
    const revoked = (await ctx.ca.repository.listRevoked()).filter((r) =>
      visible(principalOf(req), certificateProject(r)),
    );
    return {
      configured: true,
      crl: c
        ? { number: c.number, thisUpdate: c.thisUpdate, nextUpdate: c.nextUpdate, pem: crlPem(c.der) }
        : null,
      revoked: revoked.map((r) => ({ serial: r.serial, revokedAt: r.revokedAt, reason: r.revocationReason })),
    };
  });
}
