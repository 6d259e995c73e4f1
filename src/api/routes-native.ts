import type { FastifyInstance, FastifyReply } from 'fastify';
import type { NativeService } from '../native/service.js';
import { decodeBase64, encodeBase64 } from '../util/base64.js';
import {
  AttestRequest,
  AttestResponse,
  BootRequest,
  BrokerKeyResponse,
  ChallengeRequest,
  ChallengeResponse,
  CommitRequest,
  CommitResponse,
  EndResponse,
  HeartbeatResponse,
} from '../wire/schemas.js';
import { counter } from './codec.js';
import { RateLimited, type RefusalLimiter } from './refusal-limiter.js';
import type { RouteBook } from './route-book.js';

const tags = ['guest'];

/**
 * The native guest API (docs/api.md): what the host proxy's native backend calls for each guest session.
 * Handlers decode, call {@link NativeService} (which calls the broker), and encode.
 */
export function registerNativeRoutes(
  app: FastifyInstance,
  book: RouteBook,
  svc: NativeService,
  brokerKey: { spki: Uint8Array; pem: string; sha256: string },
  limiter?: RefusalLimiter,
): void {
  /**
   * The guest operations a stranger can call for free: a source whose refusals that name no instance or
   * boot (not audited) exceed the limiter's budget gets 429 with Retry-After before the broker is asked.
   */
  const guarded = async <R>(
    operation: string,
    req: { readonly raw: { readonly ip: string } },
    reply: FastifyReply,
    fn: () => Promise<R>,
  ): Promise<R> => {
    if (!limiter) return fn();
    try {
      limiter.check(req.raw.ip);
    } catch (e) {
      if (e instanceof RateLimited) {
        reply.header('retry-after', String(e.retryAfterSeconds));
        svc.countRateLimited(operation);
      }
      throw e;
    }
    try {
      return await fn();
    } catch (e) {
      if (svc.isUnattributedRefusal(e)) limiter.charge(req.raw.ip);
      throw e;
    }
  };

  book.add(
    app,
    {
      method: 'POST',
      url: '/v1/challenge',
      operationId: 'issueChallenge',
      summary: 'Issue a single-use challenge and the REPORT_DATA params for a protocol version',
      tags,
      auth: 'public',
      rateLimit: 'challenge',
      schema: { body: ChallengeRequest, response: { 200: ChallengeResponse } },
    },
    async (req) => {
      const c = await svc.challenge(req.body.tee, req.body.version);
      return {
        challenge: encodeBase64(c.challenge),
        params: [...c.params],
        version: c.version,
        expiresAt: c.expiresAt,
      };
    },
  );

  book.add(
    app,
    {
      method: 'POST',
      url: '/v1/attest',
      operationId: 'attest',
      summary: 'Verify evidence, decide, and release the sealing key sealed to the guest key',
      description:
        'REPORT_DATA must be SHA-512 over the params of /v1/challenge for this version. 0.2.0: the ciphertext ' +
        'seals the secret payload (key, boot id, commit token) and the response is signed by the broker key.',
      tags,
      auth: 'public',
      rateLimit: 'attest',
      schema: { body: AttestRequest, response: { 200: AttestResponse } },
    },
    async (req, reply) =>
      guarded('attest', req, reply, async () => {
        const b = req.body;
        const r = await svc.attest({
          tee: b.tee,
          version: b.version,
          report: decodeBase64(b.report, 'api.base64', 'report'),
          ...(b.certTable !== undefined
            ? { certTable: decodeBase64(b.certTable, 'api.base64', 'certTable') }
            : {}),
          challenge: decodeBase64(b.challenge, 'api.base64', 'challenge'),
          key: {
            x: decodeBase64(b.key.x, 'api.base64', 'key.x'),
            y: decodeBase64(b.key.y, 'api.base64', 'key.y'),
          },
          ...(b.stateCounter !== undefined
            ? { stateCounter: b.stateCounter === null ? null : counter(b.stateCounter, 'stateCounter') }
            : {}),
          ...(b.stateDigest !== undefined
            ? {
                stateDigest:
                  b.stateDigest === null ? null : decodeBase64(b.stateDigest, 'api.base64', 'stateDigest'),
              }
            : {}),
          ...(b.stateKeyVersion !== undefined ? { stateKeyVersion: b.stateKeyVersion } : {}),
        });
        const d = r.sealed.decryption;
        return {
          version: r.version,
          ciphertext: encodeBase64(r.sealed.ciphertext),
          decryption: {
            epk: { x: encodeBase64(d.epk.x), y: encodeBase64(d.epk.y) },
            wrappedCek: encodeBase64(d.wrappedCek),
            aad: encodeBase64(d.aad),
            iv: encodeBase64(d.iv),
            tag: encodeBase64(d.tag),
          },
          identity: r.identity,
          signature: r.signature ? encodeBase64(r.signature) : null,
          instance: r.instance,
          keyVersion: r.keyVersion,
          bootId: r.bootId,
          committedCounter: r.committedCounter,
          leaseExpiresAt: r.leaseExpiresAt,
        };
      }),
  );

  book.add(
    app,
    {
      method: 'POST',
      url: '/v1/commit',
      operationId: 'commit',
      summary: 'Commit the state counter the guest has durably written (0.2.0)',
      tags,
      auth: 'public',
      schema: { body: CommitRequest, response: { 200: CommitResponse } },
    },
    async (req, reply) =>
      guarded('commit', req, reply, async () => {
        const b = req.body;
        const r = await svc.commit(
          b.bootId,
          decodeBase64(b.commitToken, 'api.base64', 'commitToken'),
          counter(b.counter, 'counter'),
          decodeBase64(b.stateDigest, 'api.base64', 'stateDigest'),
          decodeBase64(b.challenge, 'api.base64', 'challenge'),
        );
        return { ...r, signature: encodeBase64(r.signature) };
      }),
  );

  book.add(
    app,
    {
      method: 'POST',
      url: '/v1/heartbeat',
      operationId: 'heartbeat',
      summary: "Renew the boot's lease",
      description:
        'With a nonce (what the aproxy 0.2.0 Heartbeat carries), the answer is signed by the broker key over ' +
        'the nonce, the boot id and the new expiry. broker.boot_unknown (409): another boot took over; the ' +
        'guest must halt.',
      tags,
      auth: 'public',
      schema: { body: BootRequest, response: { 200: HeartbeatResponse } },
    },
    async (req, reply) =>
      guarded('heartbeat', req, reply, async () => {
        const b = req.body;
        const r = await svc.heartbeat(
          b.bootId,
          decodeBase64(b.commitToken, 'api.base64', 'commitToken'),
          nonceOf(b.nonce),
        );
        return {
          leaseExpiresAt: r.leaseExpiresAt,
          ...(r.signature ? { signature: encodeBase64(r.signature) } : {}),
        };
      }),
  );

  book.add(
    app,
    {
      method: 'POST',
      url: '/v1/end',
      operationId: 'endBoot',
      summary: 'End the boot (clean shutdown), so the next boot is not refused as a clone',
      tags,
      auth: 'public',
      schema: { body: BootRequest, response: { 200: EndResponse } },
    },
    async (req, reply) =>
      guarded('end', req, reply, async () => {
        const b = req.body;
        const r = await svc.end(
          b.bootId,
          decodeBase64(b.commitToken, 'api.base64', 'commitToken'),
          nonceOf(b.nonce),
        );
        return { ended: true as const, ...(r.signature ? { signature: encodeBase64(r.signature) } : {}) };
      }),
  );

  book.add(
    app,
    {
      method: 'GET',
      url: '/v1/broker-key',
      operationId: 'brokerKey',
      summary: "The broker's response-signing public key (ECDSA P-384), which 0.2.0 guests pin",
      description: 'Convenience only: distribute the pin over a channel you trust, not from this endpoint.',
      tags,
      auth: 'public',
      schema: { response: { 200: BrokerKeyResponse } },
    },
    async () => ({
      algorithm: 'ECDSA-P384-SHA384' as const,
      spki: encodeBase64(brokerKey.spki),
      pem: brokerKey.pem,
      sha256: brokerKey.sha256,
    }),
  );
}

function nonceOf(n: string | undefined): Uint8Array | undefined {
  return n === undefined ? undefined : decodeBase64(n, 'api.base64', 'nonce');
}
