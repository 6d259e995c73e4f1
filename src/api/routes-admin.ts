import type { FastifyInstance } from 'fastify';
import type { Broker } from '../broker/broker.js';
import { InvalidArgument } from '../errors.js';
import { checkTeePolicy } from '../policy/tees.js';
import type { JsonValue } from '../store/types.js';
import { fromHex } from '../util/bytes.js';
import { instanceJson } from '../wire/instance.js';
import {
  AuditPage,
  AuditQuery,
  AuditVerification,
  InstanceList,
  InstanceParams,
  InstanceView,
  NewLaunchRequest,
  OkResponse,
  PolicyRequest,
  RegisterRequest,
  ResetRequest,
  ResetResponse,
  RotateResponse,
} from '../wire/schemas.js';
import { bodyProjectScope, canSee, instanceScope, visibleProjects } from './route-auth.js';
import type { RouteBook } from './route-book.js';

const tags = ['admin'];

/**
 * The admin API (control plane): the instance registry, policies, key rotation, boot reset and the audit
 * log. Each route declares the role it needs and how it is scoped to projects (src/api/route-auth.ts,
 * docs/access.md): an instance in a project the credential does not cover is answered as a missing one.
 */
export function registerAdminRoutes(
  app: FastifyInstance,
  book: RouteBook,
  broker: Broker,
  checkPolicy: (policy: unknown) => void,
): void {
  const instance = instanceScope(broker);
  book.add(
    app,
    {
      method: 'POST',
      url: '/v1/admin/instances',
      operationId: 'registerInstance',
      summary:
        'Register an instance; returns the HOST_DATA (SNP) or MRCONFIGID (TDX) its VMM must set at launch',
      tags,
      auth: { role: 'operate', project: bodyProjectScope() },
      schema: { body: RegisterRequest, response: { 201: InstanceView } },
    },
    async (req, reply) => {
      const { policy, tee, hostData, ...identity } = req.body;
      checkRegistrationPolicy(checkPolicy, tee ?? 'snp', policy);
      const v = await broker.registerInstance({
        ...identity,
        policy: policy as JsonValue,
        ...(tee !== undefined ? { tee } : {}),
        ...(hostData !== undefined ? { hostData: fromHex(hostData) ?? new Uint8Array(0) } : {}),
      });
      return reply.code(201).send(instanceJson(v));
    },
  );

  book.add(
    app,
    {
      method: 'GET',
      url: '/v1/admin/instances',
      operationId: 'listInstances',
      summary: 'List registered instances',
      tags,
      auth: { role: 'read', project: 'listed' },
      schema: { response: { 200: InstanceList } },
    },
    async (req) => ({
      instances: (await broker.listInstances()).filter((i) => canSee(req.raw, i.project)).map(instanceJson),
    }),
  );

  book.add(
    app,
    {
      method: 'GET',
      url: '/v1/admin/instances/:id',
      operationId: 'showInstance',
      summary: 'Show one instance, with its sealing-key versions (no key material)',
      tags,
      auth: { role: 'read', project: instance },
      schema: { params: InstanceParams, response: { 200: InstanceView } },
    },
    async (req) => {
      const v = await broker.getInstance(req.params.id);
      if (!v) throw new InvalidArgument('broker.instance_not_found', `no instance ${req.params.id}`);
      return { ...instanceJson(v), keyVersions: await broker.keyVersions(v.id) };
    },
  );

  book.add(
    app,
    {
      method: 'PUT',
      url: '/v1/admin/instances/:id/policy',
      operationId: 'setPolicy',
      summary: "Replace an instance's appraisal policy (for its TEE)",
      tags,
      auth: { role: 'operate', project: instance },
      schema: { params: InstanceParams, body: PolicyRequest, response: { 200: OkResponse } },
    },
    async (req) => {
      const inst = await broker.getInstance(req.params.id);
      checkRegistrationPolicy(checkPolicy, inst?.tee ?? 'snp', req.body.policy);
      await broker.setInstancePolicy(req.params.id, req.body.policy as JsonValue);
      return { ok: true as const };
    },
  );

  book.add(
    app,
    {
      method: 'PUT',
      url: '/v1/admin/instances/:id/new-launch',
      operationId: 'setNewLaunch',
      summary: 'Set what a new launch does while another launch holds a live lease',
      description: 'takeover (default), refuse or allow; docs/broker.md "Leases" says what each protects.',
      tags,
      auth: { role: 'operate', project: instance },
      schema: { params: InstanceParams, body: NewLaunchRequest, response: { 200: OkResponse } },
    },
    async (req) => {
      await broker.setNewLaunch(req.params.id, req.body.newLaunch);
      return { ok: true as const };
    },
  );

  book.add(
    app,
    {
      method: 'POST',
      url: '/v1/admin/instances/:id/rotate-key',
      operationId: 'rotateKey',
      summary: 'Add a new sealing-key version (older versions are kept)',
      description:
        'Releases seal new state under the newest version. A 0.2.0 guest states the version its state file ' +
        'was sealed with and receives that key too, so it can open the old state and re-seal it under the ' +
        'newest (docs/protocol.md). 0.1.0 guests cannot name a version: rotate only instances on 0.2.0.',
      tags,
      auth: { role: 'operate', project: instance },
      schema: { params: InstanceParams, response: { 200: RotateResponse } },
    },
    async (req) => broker.rotateKey(req.params.id),
  );

  book.add(
    app,
    {
      method: 'POST',
      url: '/v1/admin/instances/:id/reset-boot',
      operationId: 'resetBoot',
      summary: "End the instance's active boot (the VM is known to be stopped)",
      description:
        "The host's call: the VMM backend makes it, with its host credential, when the VM stops, so that " +
        'a new launch never waits for the lease even under the `refuse` new-launch policy. It never comes ' +
        'through the guest path (docs/broker.md "Leases").',
      tags,
      auth: { role: 'host', project: instance },
      schema: { params: InstanceParams, body: ResetRequest, response: { 200: ResetResponse } },
    },
    async (req) => broker.resetBoot(req.params.id, req.body.note),
  );

  book.add(
    app,
    {
      method: 'GET',
      url: '/v1/admin/audit',
      operationId: 'readAudit',
      summary: 'Read the audit log (hash-chained), oldest first',
      description:
        "A credential for some projects sees only the entries of its projects' instances; `next` pages on " +
        'through entries it does not see.',
      tags,
      auth: { role: 'read', project: 'listed' },
      schema: { querystring: AuditQuery, response: { 200: AuditPage } },
    },
    async (req) => {
      const after = Number(req.query.after ?? '0');
      const limit = Number(req.query.limit ?? '100');
      if (limit < 1 || limit > 1000) throw new InvalidArgument('api.limit', 'limit must be 1..1000');
      const entries = await broker.readAudit(after, limit);
      const seen = visibleProjects(req.raw);
      let shown = entries;
      if (seen !== '*') {
        const mine = new Set(
          (await broker.listInstances()).filter((i) => seen.has(i.project)).map((i) => i.id),
        );
        shown = entries.filter((e) => e.instance !== null && mine.has(e.instance));
      }
      return {
        entries: shown.map((e) => ({ ...e, reasons: [...e.reasons], details: { ...e.details } })),
        next: entries.length === limit ? entries[entries.length - 1]!.seq : null,
      };
    },
  );

  book.add(
    app,
    {
      method: 'GET',
      url: '/v1/admin/audit/verify',
      operationId: 'verifyAudit',
      summary: 'Recompute the whole audit hash chain',
      tags,
      auth: { role: 'read', project: 'all' },
      schema: { response: { 200: AuditVerification } },
    },
    async () => broker.verifyAuditChain(),
  );
}

/**
 * Checks a policy for the TEE an instance is registered for: the deployment's SEV-SNP check for `snp`, the
 * TEE table's parser for the others (a TDX policy is not an SNP one). Throws InvalidArgument `policy.invalid`.
 */
function checkRegistrationPolicy(checkSnp: (policy: unknown) => void, tee: string, policy: unknown): void {
  if (tee === 'snp') checkSnp(policy);
  else checkTeePolicy(tee, policy);
}
