import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { certificatePem } from '../ca/ca-files.js';
import type { PlatformCa } from '../ca/platform-ca.js';
import type { RegistryLookup } from '../ca/registry.js';
import type { RelayedCertificate } from '../ca/relayed.js';
import { decodeBase64, encodeBase64 } from '../util/base64.js';
import {
  CaCertifyAkRequest,
  CaCertifyEkRequest,
  CaCertifyResponse,
  type CaCertifyResponseJson,
  CaNonceRequest,
  CaNonceResponse,
} from '../wire/ca.js';
import { RateLimited, RefusalLimiter, type RefusalLimitOptions } from './refusal-limiter.js';
import { canSee, principalOf } from './route-auth.js';
import type { RouteBook } from './route-book.js';

/** What the CA service needs from the process that serves it (`vouchsafe serve --ca-dir`). */
export interface CaServiceDeps {
  readonly ca: PlatformCa;
  /** The broker's registry: the instance a report's HOST_DATA names. */
  readonly registry: RegistryLookup;
  /**
   * The caller's name, its nonce scope and rate-limit bucket. Default: the id of the credential the request
   * was authenticated with (docs/access.md: one `host` credential per VMM host; the admin token is
   * `bootstrap`).
   */
  readonly callerOf?: (req: FastifyRequest) => string;
  /**
   * Requests per caller and source address: a token bucket (default burst 120, 600 a minute; a CERTIFY is a
   * nonce and a certify). `false`: none.
   */
  readonly rateLimit?: RefusalLimitOptions | false;
}

const tags = ['ca'];
/** The chain and the CRL are public (docs/access.md). */
const PUBLIC = { auth: 'public' } as const;
/**
 * The relayed routes: a VMM host's `host` credential (or any stronger role); the instance's project is
 * checked against the credential once the report names it (`registryFor`).
 */
const HOST = { role: 'host', project: 'listed' } as const;

/**
 * The platform CA as a service (docs/ca.md "The CA as a service"): nonces and the relayed CERTIFY_EK /
 * CERTIFY_AK routes for authenticated relays (the VMM's device, src/cli/commands/vmm-device.ts), and the
 * CA chain and CRL for anyone. Every issued and refused certificate is an entry in the CA's issuance log
 * (the operations log it); the relay chooses nothing: the instance is found by the report's HOST_DATA.
 */
export function registerCaRoutes(app: FastifyInstance, book: RouteBook, deps: CaServiceDeps): void {
  const { ca, registry } = deps;
  const callerOf = deps.callerOf ?? ((req: FastifyRequest) => principalOf(req).id);
  /**
   * The registry as this caller may see it: an instance of a project its credential does not cover is
   * unregistered to it (`ca.instance_unregistered`), as another project's instance is 404 on the admin
   * routes, so a host credential of project A cannot have B's instances certified or learn they exist.
   */
  const registryFor =
    (req: FastifyRequest): RegistryLookup =>
    async (hostData) => {
      const r = await registry(hostData);
      return r && canSee(req, r.identity.project) ? r : undefined;
    };
  const limiter =
    deps.rateLimit === false
      ? undefined
      : new RefusalLimiter({ burst: 120, perMinute: 600, ...(deps.rateLimit ?? {}) });
  /**
   * Every CA request spends one from its bucket; over it, 429 with Retry-After. The bucket is the caller's
   * at its source address: while every host relays with the one admin credential, each host (address) still
   * has a bucket of its own, so a fleet restart is not throttled as one caller.
   */
  const limited = (req: FastifyRequest, reply: FastifyReply): string => {
    const caller = callerOf(req);
    if (limiter) {
      const key = `${caller}|${req.ip}`;
      try {
        limiter.check(key);
      } catch (e) {
        if (e instanceof RateLimited) reply.header('retry-after', String(e.retryAfterSeconds));
        throw e;
      }
      limiter.charge(key);
    }
    return caller;
  };
  const answer = (c: RelayedCertificate, format: 'x509' | 'c509'): CaCertifyResponseJson => ({
    serial: c.serial,
    format,
    certificate: encodeBase64(c.c509 ?? c.der),
    x509: encodeBase64(c.der),
    chain: ca.chain.map((d) => encodeBase64(d)),
    instance: { id: c.instance.id, identity: c.instance.identity },
    reused: c.reused,
  });
  const evidence = (b: {
    nonce: string;
    report: string;
    certTable?: string;
    manifest: string;
    format: 'x509' | 'c509';
    claimedIdentity?: CaCertifyResponseJson['instance']['identity'];
  }) => ({
    nonce: decodeBase64(b.nonce, 'api.base64', 'nonce'),
    report: decodeBase64(b.report, 'api.base64', 'report'),
    ...(b.certTable !== undefined ? { certTable: decodeBase64(b.certTable, 'api.base64', 'certTable') } : {}),
    manifest: decodeBase64(b.manifest, 'api.base64', 'manifest'),
    format: b.format === 'c509' ? ('c509-type2' as const) : ('x509' as const),
    ...(b.claimedIdentity ? { claimedIdentity: b.claimedIdentity } : {}),
  });

  book.add(
    app,
    {
      method: 'POST',
      url: '/v1/ca/nonce',
      operationId: 'caNonce',
      summary: 'A single-use nonce for a relayed CERTIFY_EK / CERTIFY_AK, bound to the calling credential',
      tags,
      auth: HOST,
      schema: { body: CaNonceRequest, response: { 200: CaNonceResponse } },
    },
    async (req, reply) => {
      const { nonce, expiresAt } = await ca.createRelayNonce(limited(req.raw, reply));
      return { nonce: encodeBase64(nonce), expiresAt: expiresAt.getTime() };
    },
  );
  book.add(
    app,
    {
      method: 'POST',
      url: '/v1/ca/certify-ek',
      operationId: 'caCertifyEk',
      summary: "CERTIFY_EK: the vTPM's EK certificate, the instance found by the report's HOST_DATA",
      tags,
      auth: HOST,
      schema: { body: CaCertifyEkRequest, response: { 200: CaCertifyResponse } },
    },
    async (req, reply) => {
      const caller = limited(req.raw, reply);
      const c = await ca.certifyEkFromTee({ caller, ...evidence(req.body) }, registryFor(req.raw));
      return answer(c, req.body.format);
    },
  );
  book.add(
    app,
    {
      method: 'POST',
      url: '/v1/ca/certify-ak',
      operationId: 'caCertifyAk',
      summary:
        'CERTIFY_AK: an AK certificate for the AK a report-covered manifest lists (C509 or PKCS#10 request)',
      tags,
      auth: HOST,
      schema: { body: CaCertifyAkRequest, response: { 200: CaCertifyResponse } },
    },
    async (req, reply) => {
      const caller = limited(req.raw, reply);
      const c = await ca.certifyAkFromTee(
        { caller, ...evidence(req.body), csr: decodeBase64(req.body.csr, 'api.base64', 'csr') },
        registryFor(req.raw),
      );
      return answer(c, req.body.format);
    },
  );
  book.add(
    app,
    {
      method: 'GET',
      url: '/v1/ca/chain',
      operationId: 'caChain',
      summary: "The platform CA's certificate, then its issuers (PEM)",
      tags,
      ...PUBLIC,
      produces: 'application/pem-certificate-chain',
      schema: { response: { 200: Type.String() } },
    },
    async (_req, reply) =>
      reply.type('application/pem-certificate-chain').send(ca.chain.map((d) => certificatePem(d)).join('')),
  );
  book.add(
    app,
    {
      method: 'GET',
      url: '/v1/ca/crl',
      operationId: 'caCrl',
      summary: "The platform CA's current CRL (DER); a new one is signed when the last is past nextUpdate",
      tags,
      ...PUBLIC,
      produces: 'application/pkix-crl',
      schema: { response: { 200: Type.String() } },
    },
    async (_req, reply) => {
      const last = await ca.repository.latestCrl();
      const crl = last && last.nextUpdate > Date.now() ? last : await ca.generateCrl();
      return reply.type('application/pkix-crl').send(Buffer.from(crl.der));
    },
  );
}
