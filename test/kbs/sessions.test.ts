/**
 * RCAR sessions over a real socket: a flood of /auth calls from one client address must not evict the pending
 * session of a client at another address (src/kbs/sessions.ts). The broker behind the routes is a stub: only
 * /auth and the session lookup of /attest are exercised. Clients bind distinct loopback addresses
 * (127.0.0.1, 127.0.0.2) so the server sees two sources.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Agent, request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import type { KbsDeps } from '../../src/kbs/deps.js';
import { registerKbsRoutes } from '../../src/kbs/routes.js';

const refuse = () => {
  throw new Error('not used by these tests');
};

const deps = (o: Partial<KbsDeps>): KbsDeps => ({
  broker: {
    issueChallenge: async () => ({
      challenge: new Uint8Array(randomBytes(32)),
      expiresAt: Date.now() + 60_000,
    }),
    attest: refuse,
    readResource: refuse,
  },
  tokens: { issueSnp: refuse, verify: refuse, jwks: refuse },
  ...o,
});

interface Reply {
  status: number;
  cookie?: string;
  json: { reason?: string };
}

/** One HTTP call from `localAddress`, over a keep-alive agent of that address. */
function call(
  port: number,
  agent: Agent,
  localAddress: string,
  path: string,
  body: unknown,
  cookie?: string,
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        agent,
        localAddress,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(data),
          ...(cookie ? { cookie: `kbs-session-id=${cookie}` } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const set = res.headers['set-cookie']?.[0];
          const m = set ? /^kbs-session-id=([0-9a-f]{64});/.exec(set) : null;
          resolve({
            status: res.statusCode ?? 0,
            ...(m ? { cookie: m[1]! } : {}),
            json: JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}'),
          });
        });
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

const AUTH = { version: '0.4.0', tee: 'snp', 'extra-params': '' };

describe('KBS sessions are bounded per client address', () => {
  let app: FastifyInstance;
  let port: number;
  const agents = [new Agent({ keepAlive: true }), new Agent({ keepAlive: true })];
  const [victimAgent, floodAgent] = agents as [Agent, Agent];

  before(async () => {
    app = Fastify({ logger: false });
    // A small store, so that a global LRU would evict the victim within the flood.
    await app.register(async (scope) =>
      registerKbsRoutes(scope, deps({ maxSessions: 50, maxPendingSessionsPerSource: 8 })),
    );
    await app.listen({ host: '127.0.0.1', port: 0 });
    port = (app.server.address() as { port: number }).port;
  });
  after(async () => {
    for (const a of agents) a.destroy();
    await app?.close();
  });

  /** The reason /attest refuses an empty body with: `kbs.session.unknown` if the session is gone. */
  const lookup = async (agent: Agent, from: string, cookie: string) =>
    (await call(port, agent, from, '/kbs/v0/attest', {}, cookie)).json.reason;

  it("a flood of /auth from one address leaves another address's pending session alone", async () => {
    const victim = await call(port, victimAgent, '127.0.0.1', '/kbs/v0/auth', AUTH);
    assert.equal(victim.status, 200);
    assert.ok(victim.cookie);

    let firstFlood: string | undefined;
    for (let i = 0; i < 200; i++) {
      const r = await call(port, floodAgent, '127.0.0.2', '/kbs/v0/auth', AUTH);
      assert.equal(r.status, 200, JSON.stringify(r.json));
      firstFlood ??= r.cookie;
    }
    // Still known: /attest gets past the session lookup and refuses the empty body.
    assert.equal(await lookup(victimAgent, '127.0.0.1', victim.cookie), 'kbs.request.shape');
    // The flooding address lost its own oldest sessions instead.
    assert.equal(await lookup(floodAgent, '127.0.0.2', firstFlood!), 'kbs.session.unknown');
  });

  it('an address that floods evicts its own pending sessions, oldest first', async () => {
    const mine = await call(port, victimAgent, '127.0.0.1', '/kbs/v0/auth', AUTH);
    for (let i = 0; i < 8; i++) await call(port, victimAgent, '127.0.0.1', '/kbs/v0/auth', AUTH);
    assert.equal(await lookup(victimAgent, '127.0.0.1', mine.cookie!), 'kbs.session.unknown');
  });
});
