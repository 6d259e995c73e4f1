/**
 * The HTTP server's socket limits (src/api/http-limits.ts): a half-sent request is closed by the server at
 * its header deadline, sockets over the connection cap are closed on accept, and unusable values are
 * refused. Tiny deadlines keep the run short; every wait is on a socket event, never a sleep.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { resolveHttpLimits } from '../../src/api/http-limits.js';
import { throwsCode } from '../helpers/assert-error.js';
import { startTestBroker, type TestBroker } from './helpers.js';

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

/** Resolves with everything the server sent once it closes the socket. */
function closed(s: Socket): Promise<string> {
  let got = '';
  s.on('data', (d) => {
    got += d.toString('latin1');
  });
  s.on('error', () => {});
  return new Promise((resolve) => s.once('close', () => resolve(got)));
}

describe('HTTP server limits', () => {
  let b: TestBroker;
  before(async () => {
    b = await startTestBroker({
      httpLimits: { headersTimeoutMs: 50, requestTimeoutMs: 100, maxConnections: 2 },
    });
  });
  after(() => b.close());

  it('closes a half-sent request (headers never finished) with 408', async () => {
    const s = await open(b.b.port);
    const done = closed(s);
    s.write('POST /v1/attest HTTP/1.1\r\nHost: x\r\nContent-Type: appl');
    const got = await done;
    assert.match(got, /^HTTP\/1\.1 408 /);
  });

  it('closes a request whose body never completes', async () => {
    const s = await open(b.b.port);
    const done = closed(s);
    s.write(
      'POST /v1/attest HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{',
    );
    const got = await done;
    assert.match(got, /^HTTP\/1\.1 408 /);
  });

  it('closes sockets over maxConnections on accept and serves again once one goes', async () => {
    const held = [await open(b.b.port), await open(b.b.port)];
    // Wait until the server has accepted both (the cap counts accepted sockets).
    await new Promise<void>((resolve) => {
      const check = () =>
        b.b.app.server.getConnections((_e, n) => (n >= 2 ? resolve() : setImmediate(check)));
      check();
    });
    const third = await open(b.b.port);
    const got = await closed(third);
    assert.equal(got, '', 'the refused socket is closed without a response');
    const gone = held.map((s) => closed(s));
    for (const s of held) s.destroy();
    await Promise.all(gone);
    await new Promise<void>((resolve) => {
      const check = () =>
        b.b.app.server.getConnections((_e, n) => (n === 0 ? resolve() : setImmediate(check)));
      check();
    });
    const r = await b.call('GET', '/healthz');
    assert.equal(r.status, 200);
  });

  it('refuses unusable limits', () => {
    throwsCode(() => resolveHttpLimits({ headersTimeoutMs: 0 }), 'ERR_INVALID_ARGUMENT', 'api.http_limits');
    throwsCode(() => resolveHttpLimits({ maxConnections: 1.5 }), 'ERR_INVALID_ARGUMENT', 'api.http_limits');
    throwsCode(
      () => resolveHttpLimits({ headersTimeoutMs: 200, requestTimeoutMs: 100 }),
      'ERR_INVALID_ARGUMENT',
      'api.http_limits',
    );
    assert.equal(resolveHttpLimits({ maxRequestsPerSocket: 0 }).maxRequestsPerSocket, 0);
  });
});
