/**
 * The one HTTP client (src/util/http-client.ts) and the one /v1 reply decoder (src/wire/decode.ts), which the
 * admin client and both proxy backends use: deadlines, bounded replies, no redirects, pinned-CA options,
 * and outages as ERR_UNAVAILABLE with the caller's reasons.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { httpAdmin } from '../../src/admin/http.js';
import { createHttpClient } from '../../src/util/http-client.js';
import { errorFromReply, replyAs } from '../../src/wire/decode.js';
import { RotateResponse } from '../../src/wire/schemas.js';

const reasons = { unreachable: 't.unreachable', timeout: 't.timeout', badResponse: 't.bad_response' };
const servers: { close(): void }[] = [];
after(() => {
  for (const s of servers) s.close();
});

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server: Server = createServer(handler);
  servers.push({
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

describe('createHttpClient', () => {
  it('refuses a declared reply over the bound before reading it, and a streamed one while reading', async () => {
    const declared = await serve((_q, res) => {
      res.writeHead(200, { 'content-length': '2000' });
      res.end('x'.repeat(2000));
    });
    const streamed = await serve((_q, res) => {
      res.writeHead(200);
      res.write('x'.repeat(600));
      res.end('x'.repeat(600));
    });
    for (const baseUrl of [declared, streamed]) {
      const c = createHttpClient({ baseUrl, maxReplyBytes: 1000, reasons });
      await assert.rejects(c.request({ method: 'GET', path: '/' }), {
        code: 'ERR_UNAVAILABLE',
        reason: 't.bad_response',
      });
      c.close();
    }
  });

  it('bounds the injected-fetch transport the same way', async () => {
    const fetchBig: typeof fetch = async () => new Response('y'.repeat(5000));
    const c = createHttpClient({ baseUrl: 'http://x.test', fetch: fetchBig, maxReplyBytes: 100, reasons });
    await assert.rejects(c.request({ method: 'GET', path: '/' }), { reason: 't.bad_response' });
  });

  it('returns a 3xx as it is: a redirect is never followed', async () => {
    let hits = 0;
    const url = await serve((req, res) => {
      hits++;
      if (req.url === '/moved') res.writeHead(302, { location: '/target' }).end();
      else res.writeHead(200).end('followed');
    });
    const c = createHttpClient({ baseUrl: url, reasons });
    const r = await c.request({ method: 'GET', path: '/moved' });
    assert.equal(r.status, 302);
    assert.equal(hits, 1);
    c.close();
  });

  it('a TLS handshake that never completes hits the connect deadline, not the (long) total one', async () => {
    const silent = createTcpServer((s: Socket) => s.on('error', () => {}));
    const sockets: Socket[] = [];
    silent.on('connection', (s) => sockets.push(s));
    servers.push({
      close: () => {
        for (const s of sockets) s.destroy();
        silent.close();
      },
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const port = (silent.address() as { port: number }).port;
    const c = createHttpClient({
      baseUrl: `https://127.0.0.1:${port}`,
      connectTimeoutMs: 50,
      timeoutMs: 600_000,
      reasons,
    });
    await assert.rejects(c.request({ method: 'GET', path: '/' }), (e: Error & { reason?: string }) => {
      assert.equal(e.reason, 't.timeout');
      assert.match(e.message, /no connection/);
      return true;
    });
    c.close();
  });

  it('a server that accepts and never answers hits the total deadline; a refused connection is unreachable', async () => {
    const hang = await serve(() => {});
    const c = createHttpClient({ baseUrl: hang, timeoutMs: 100, reasons });
    await assert.rejects(c.request({ method: 'GET', path: '/' }), {
      code: 'ERR_UNAVAILABLE',
      reason: 't.timeout',
    });
    c.close();
    const gone = createTcpServer();
    await new Promise<void>((r) => gone.listen(0, '127.0.0.1', () => r()));
    const port = (gone.address() as { port: number }).port;
    await new Promise<void>((r) => gone.close(() => r()));
    const d = createHttpClient({ baseUrl: `http://127.0.0.1:${port}`, reasons });
    await assert.rejects(d.request({ method: 'GET', path: '/' }), { reason: 't.unreachable' });
  });

  it('opens at most maxSockets connections; the requests beyond wait for one and all complete', async () => {
    const sockets = new Set<unknown>();
    let inFlight = 0;
    let peak = 0;
    const held: (() => void)[] = [];
    const url = await serve((req, res) => {
      sockets.add(req.socket);
      inFlight++;
      peak = Math.max(peak, inFlight);
      held.push(() => {
        inFlight--;
        res.end('ok');
      });
    });
    const c = createHttpClient({ baseUrl: url, maxSockets: 3, reasons });
    const replies = Array.from({ length: 10 }, () => c.request({ method: 'GET', path: '/' }));
    let answered = 0;
    while (answered < 10) {
      while (held.length === 0) await new Promise((r) => setImmediate(r));
      held.shift()!();
      answered++;
    }
    for (const r of await Promise.all(replies)) assert.equal(r.status, 200);
    assert.ok(peak <= 3, `at most three requests at a time, saw ${peak}`);
    // All ten were asked for at once: without the bound the agent opens a connection for each.
    assert.equal(sockets.size, 3, 'the waiting requests reused the three connections');
    c.close();
  });

  it('refuses unusable options with the caller’s config reason', () => {
    for (const o of [
      { baseUrl: 'ftp://x' },
      { baseUrl: 'http://u:p@x' },
      { baseUrl: 'http://x/#f' },
      { baseUrl: 'http://x', ca: 'pem' },
      { baseUrl: 'https://x', ca: 'pem', fetch: globalThis.fetch },
      { baseUrl: 'http://x', timeoutMs: 0 },
      { baseUrl: 'http://x', connectTimeoutMs: -1 },
      { baseUrl: 'http://x', maxReplyBytes: 1.5 },
    ]) {
      assert.throws(() => createHttpClient({ ...o, reasons, configReason: 'x.config' }), {
        code: 'ERR_INVALID_ARGUMENT',
        reason: 'x.config',
      });
    }
  });
});

describe('wire/decode: one decoder of /v1 replies', () => {
  it('passes the API refusal through typed; a 5xx, a missing route or a foreign body is an outage', () => {
    assert.equal(errorFromReply(200, {}, 'r.bad'), undefined);
    const refused = errorFromReply(
      409,
      { code: 'ERR_REFUSED', reason: 'broker.clone', message: 'm' },
      'r.bad',
    );
    assert.deepEqual([refused?.code, refused?.reason], ['ERR_REFUSED', 'broker.clone']);
    const policy = errorFromReply(
      403,
      {
        code: 'ERR_POLICY_REJECTED',
        reason: 'snp.debug',
        message: 'm',
        failures: [{ code: 'snp.debug', message: 'debug' }],
      },
      'r.bad',
    ) as { failures?: unknown[] } | undefined;
    assert.equal(policy?.failures?.length, 1);
    for (const [status, body] of [
      [500, { code: 'ERR_INTERNAL', reason: 'api.internal', message: 'internal error' }],
      [404, { code: 'ERR_INVALID_ARGUMENT', reason: 'api.not_found', message: 'no route' }],
      [403, { code: 'ERR_MADE_UP', reason: 'x.y', message: 'm' }],
      [403, { code: 'ERR_REFUSED', reason: 'Not Dotted', message: 'm' }],
      [403, '<html>proxy page</html>'],
      [302, undefined],
    ] as const) {
      const e = errorFromReply(status, body, 'r.bad');
      assert.deepEqual(
        [e?.code, e?.reason],
        ['ERR_UNAVAILABLE', 'r.bad'],
        `${status} ${JSON.stringify(body)}`,
      );
    }
  });

  it('checks a 2xx reply against the route schema', () => {
    assert.deepEqual(replyAs(RotateResponse, { keyVersion: 2 }, 'r.bad'), { keyVersion: 2 });
    assert.throws(() => replyAs(RotateResponse, { keyVersion: '2' }, 'r.bad'), {
      code: 'ERR_UNAVAILABLE',
      reason: 'r.bad',
    });
  });
});

describe('admin client over HTTP', () => {
  it('an unreachable broker is ERR_UNAVAILABLE admin.unreachable; a reply off the schema admin.bad_response', async () => {
    const gone = createTcpServer();
    await new Promise<void>((r) => gone.listen(0, '127.0.0.1', () => r()));
    const port = (gone.address() as { port: number }).port;
    await new Promise<void>((r) => gone.close(() => r()));
    const token = 't'.repeat(40);
    const down = httpAdmin({ url: `http://127.0.0.1:${port}`, token });
    await assert.rejects(down.list(), { code: 'ERR_UNAVAILABLE', reason: 'admin.unreachable' });
    let auth: string | undefined;
    const odd = await serve((req, res) => {
      auth = req.headers.authorization;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"instances":"nope"}');
    });
    const admin = httpAdmin({ url: odd, token });
    await assert.rejects(admin.list(), { code: 'ERR_UNAVAILABLE', reason: 'admin.bad_response' });
    assert.equal(auth, `Bearer ${token}`);
    await admin.close();
  });
});
