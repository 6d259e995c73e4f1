import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { AuditEntry } from '../store/types.js';
import { type DashboardContext, principalOf, requireAllProjects, sessionOf, visible } from './context.js';
import { decisionView, type InstanceNames, isFeedEntry } from './decisions.js';
import { SECURITY_HEADERS } from './headers.js';

const AuditFilter = Type.Object(
  {
    after: Type.Optional(Type.String({ pattern: '^[0-9]{1,15}$' })),
    limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,3}$' })),
    decision: Type.Optional(Type.Union([Type.Literal('accept'), Type.Literal('refuse')])),
    kind: Type.Optional(Type.String({ pattern: '^[a-z_]{1,32}$' })),
    instance: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    reason: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  },
  { additionalProperties: false },
);

/** Entries scanned per request at most, however selective the filter (the next request goes on from there). */
const SCAN_LIMIT = 10_000;
const KEEPALIVE_MS = 15_000;

/**
 * The audit log for the browser: filtered pages, the chain verification, and the live feed (SSE) of
 * releases and refusals. Entries of instances outside the principal's projects (and entries naming no
 * instance, for a scoped principal) are never sent.
 */
export function registerAuditRoutes(app: FastifyInstance, ctx: DashboardContext): void {
  const { broker, store } = ctx.parts;

  const namesNow = async (): Promise<Map<string, InstanceNames>> =>
    new Map(
      (await broker.listInstances()).map((v) => [v.id, { project: v.project, instanceName: v.instanceName }]),
    );

  app.get('/api/audit', { schema: { querystring: AuditFilter } }, async (req) => {
    const p = principalOf(req);
    const q = req.query as typeof AuditFilter.static;
    const limit = Math.min(Math.max(Number(q.limit ?? '100'), 1), 500);
    const names = await namesNow();
    const head = (await store.auditHead()).seq;
    const match = (e: AuditEntry) =>
      (q.decision === undefined || e.decision === q.decision) &&
      (q.kind === undefined || e.kind === q.kind) &&
      (q.instance === undefined || e.instance === q.instance) &&
      (q.reason === undefined || e.reasons.some((r) => r.includes(q.reason!)));
    const out = [];
    let after = Number(q.after ?? '0');
    let scanned = 0;
    let more = false;
    while (out.length < limit) {
      if (scanned >= SCAN_LIMIT) {
        more = after < head;
        break;
      }
      const page = await broker.readAudit(after, 500);
      if (page.length === 0) break;
      for (const e of page) {
        scanned++;
        after = e.seq;
        const v = decisionView(e, names);
        if (match(e) && visible(p, v.project)) out.push(v);
        if (out.length >= limit) {
          more = after < head;
          break;
        }
      }
      if (page.length < 500) break;
    }
    return { entries: out, next: more ? after : null, head };
  });

  app.get('/api/audit/verify', async (req) => {
    // The chain spans every project: its length and the place of a break are platform-wide facts.
    requireAllProjects(principalOf(req));
    return broker.verifyAuditChain();
  });

  app.get('/api/events', async (req, reply) => {
    const session = sessionOf(req);
    const from = (await store.auditHead()).seq;
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-type': 'text/event-stream; charset=utf-8',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write(`event: ready\ndata: ${JSON.stringify({ from })}\n\n`);
    let chain = Promise.resolve();
    let closed = false;
    const stop = () => {
      if (closed) return;
      closed = true;
      unsubscribe();
      clearInterval(keepalive);
      res.end();
    };
    const unsubscribe = ctx.feed.subscribe(from, (entries) => {
      chain = chain
        .then(async () => {
          if (closed) return;
          // A session that ended (sign-out, idle, max age) ends its stream.
          if (!sessionStillLive(ctx, session)) return stop();
          const wanted = entries.filter(isFeedEntry);
          if (wanted.length === 0) return;
          const names = await namesNow();
          for (const e of wanted) {
            const v = decisionView(e, names);
            if (!visible(session.principal, v.project)) continue;
            res.write(`id: ${e.seq}\nevent: decision\ndata: ${JSON.stringify(v)}\n\n`);
          }
        })
        .catch((err) => {
          req.log.warn({ event: 'dashboard_feed_failed', err }, 'dashboard feed write failed');
          stop();
        });
    });
    const keepalive = setInterval(() => {
      if (!sessionStillLive(ctx, session)) return stop();
      res.write(': keepalive\n\n');
    }, KEEPALIVE_MS);
    keepalive.unref();
    req.raw.on('close', stop);
  });
}

function sessionStillLive(ctx: DashboardContext, s: ReturnType<typeof sessionOf>): boolean {
  return ctx.sessions.isLive(s);
}
