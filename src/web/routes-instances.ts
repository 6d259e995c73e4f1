import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { InvalidArgument } from '../errors.js';
import { checkTeePolicy } from '../policy/tees.js';
import type { JsonValue } from '../store/types.js';
import { fromHex } from '../util/bytes.js';
import { instanceJson } from '../wire/instance.js';
import { InstanceParams, PolicyRequest, RegisterRequest, ResetRequest } from '../wire/schemas.js';
import { actAs, type DashboardContext, notFound, principalOf, requireRole, visible } from './context.js';
import { decisionView, type InstanceNames } from './decisions.js';

/** How far back an instance page looks for its last decisions (entries of the whole log). */
const RECENT_WINDOW = 2000;
const RECENT_SHOWN = 20;

/**
 * Instances: list, one instance with key versions and last decisions, register, rotate a key, end a boot,
 * replace the policy. The same broker calls and wire shapes as the admin routes (src/api/routes-admin.ts),
 * behind the session instead of the bearer token, and filtered to the principal's projects.
 */
export function registerInstanceRoutes(app: FastifyInstance, ctx: DashboardContext): void {
  const { broker } = ctx.parts;

  const visibleInstance = async (req: Parameters<typeof principalOf>[0], id: string) => {
    const v = await broker.getInstance(id);
    if (!v || !visible(principalOf(req), v.project)) throw notFound(id);
    return v;
  };

  app.get('/api/instances', async (req) => {
    const p = principalOf(req);
    const all = await broker.listInstances();
    return { instances: all.filter((v) => visible(p, v.project)).map(instanceJson) };
  });

  app.get('/api/instances/:id', { schema: { params: InstanceParams } }, async (req) => {
    const { id } = req.params as { id: string };
    const v = await visibleInstance(req, id);
    const head = (await ctx.parts.store.auditHead()).seq;
    const window = await broker.readAudit(Math.max(0, head - RECENT_WINDOW), RECENT_WINDOW);
    const names = new Map<string, InstanceNames>([
      [v.id, { project: v.project, instanceName: v.instanceName }],
    ]);
    const recent = window
      .filter((e) => e.instance === v.id)
      .slice(-RECENT_SHOWN)
      .reverse()
      .map((e) => decisionView(e, names));
    return { ...instanceJson(v), keyVersions: await broker.keyVersions(v.id), recent };
  });

  app.post('/api/instances', { schema: { body: RegisterRequest } }, async (req, reply) => {
    const p = principalOf(req);
    requireRole(p, 'operate');
    const { policy, tee, hostData, ...identity } = req.body as typeof RegisterRequest.static;
    if (!visible(p, identity.project)) {
      throw new InvalidArgument(
        'web.project',
        `this credential cannot register in project ${identity.project}`,
      );
    }
    checkTeePolicy(tee ?? 'snp', policy);
    const v = await actAs(req, () =>
      broker.registerInstance({
        ...identity,
        policy: policy as JsonValue,
        ...(tee !== undefined ? { tee } : {}),
        ...(hostData !== undefined ? { hostData: fromHex(hostData) ?? new Uint8Array(0) } : {}),
      }),
    );
    req.log.info(
      { event: 'dashboard_register', instance: v.id, by: p.name },
      'instance registered from the dashboard',
    );
    return reply.code(201).send(instanceJson(v));
  });

  app.post(
    '/api/instances/:id/rotate-key',
    { schema: { params: InstanceParams, body: Type.Object({}, { additionalProperties: false }) } },
    async (req) => {
      const p = principalOf(req);
      requireRole(p, 'operate');
      const v = await visibleInstance(req, (req.params as { id: string }).id);
      const r = await actAs(req, () => broker.rotateKey(v.id));
      req.log.info(
        { event: 'dashboard_rotate', instance: v.id, by: p.name },
        'key rotated from the dashboard',
      );
      return r;
    },
  );

  app.post(
    '/api/instances/:id/reset-boot',
    { schema: { params: InstanceParams, body: ResetRequest } },
    async (req) => {
      const p = principalOf(req);
      requireRole(p, 'operate');
      const v = await visibleInstance(req, (req.params as { id: string }).id);
      const note = (req.body as { note?: string }).note;
      const r = await actAs(req, () => broker.resetBoot(v.id, note ?? `dashboard: ${p.name}`));
      req.log.info(
        { event: 'dashboard_reset_boot', instance: v.id, by: p.name },
        'boot ended from the dashboard',
      );
      return r;
    },
  );

  app.put(
    '/api/instances/:id/policy',
    { schema: { params: InstanceParams, body: PolicyRequest } },
    async (req) => {
      const p = principalOf(req);
      requireRole(p, 'admin');
      const v = await visibleInstance(req, (req.params as { id: string }).id);
      const policy = (req.body as { policy: unknown }).policy;
      // The validation messages are the CLI's: the TEE table's parser throws policy.invalid naming the field.
      checkTeePolicy(v.tee, policy);
      await actAs(req, () => broker.setInstancePolicy(v.id, policy as JsonValue));
      req.log.info(
        { event: 'dashboard_policy', instance: v.id, by: p.name },
        'policy replaced from the dashboard',
      );
      return { ok: true as const };
    },
  );
}
