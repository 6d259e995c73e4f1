/**
 * The native backend's Heartbeat and End (POST /v1/heartbeat, /v1/end) and the key version it forwards at
 * /v1/attest, against a fake broker: what it sends, what it accepts back, refusals and nonsense.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { after, describe, it } from 'node:test';
import type { AttestInput, LeaseInput } from '../../src/proxy/backend.js';
import { createNativeBackend } from '../../src/proxy/backends/native/index.js';

const ctx = () => ({ sessionId: 's', peer: 'test', signal: new AbortController().signal });
const lease: LeaseInput = {
  version: '0.2.0',
  bootId: 'boot-1',
  commitToken: new Uint8Array(32).fill(1),
  nonce: new Uint8Array(16).fill(2),
};
const sig = Buffer.alloc(96, 9).toString('base64');

const servers: Server[] = [];
after(() => {
  for (const s of servers) s.close();
});

/** A fake broker answering with `reply(path)`; records each request's path and JSON body. */
async function fake(reply: (path: string) => [number, unknown]) {
  const seen: { path: string; body: Record<string, unknown> }[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      seen.push({ path: req.url ?? '', body: JSON.parse(body) });
      const [status, out] = reply(req.url ?? '');
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(out));
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return { backend: createNativeBackend({ brokerUrl: url, timeoutMs: 2000 }), seen };
}

async function unavailable(p: Promise<unknown>, reason: string): Promise<void> {
  await assert.rejects(p, { code: 'ERR_UNAVAILABLE', reason });
}

describe('native backend: heartbeat and end', () => {
  it('posts the boot id, token and nonce; returns the expiry and the signature', async () => {
    const { backend, seen } = await fake((path) =>
      path === '/v1/heartbeat'
        ? [200, { leaseExpiresAt: 1700000000123, signature: sig }]
        : [200, { ended: true }],
    );
    const hb = await backend.heartbeat!(lease, ctx());
    assert.deepEqual(hb, {
      outcome: 'renewed',
      leaseExpiresAt: 1700000000123,
      signature: new Uint8Array(Buffer.alloc(96, 9)),
    });
    assert.deepEqual(seen[0], {
      path: '/v1/heartbeat',
      body: {
        bootId: 'boot-1',
        commitToken: Buffer.alloc(32, 1).toString('base64'),
        nonce: Buffer.alloc(16, 2).toString('base64'),
      },
    });
    assert.deepEqual(await backend.end!(lease, ctx()), { outcome: 'ended', signature: null });
    assert.equal(seen[1]!.path, '/v1/end');
    assert.deepEqual(Object.keys(seen[1]!.body), ['bootId', 'commitToken', 'nonce']);
  });

  it("passes the broker's refusal through (boot_unknown: the guest must halt)", async () => {
    const { backend } = await fake(() => [
      409,
      { code: 'ERR_REFUSED', reason: 'broker.boot_unknown', message: 'refused: broker.boot_unknown' },
    ]);
    assert.deepEqual(await backend.heartbeat!(lease, ctx()), {
      outcome: 'refused',
      error: { code: 'ERR_REFUSED', reason: 'broker.boot_unknown', message: 'refused: broker.boot_unknown' },
    });
    assert.equal((await backend.end!(lease, ctx())).outcome, 'refused');
  });

  it('a reply that is not the API reply is native.bad_response', async () => {
    for (const body of [
      { leaseExpiresAt: '1700000000123' },
      { leaseExpiresAt: 1.5 },
      { leaseExpiresAt: 1, signature: 'AAAA' },
      {},
    ]) {
      const { backend } = await fake(() => [200, body]);
      await unavailable(backend.heartbeat!(lease, ctx()), 'native.bad_response');
    }
    for (const body of [{ ended: false }, {}, { ended: true, signature: 'x' }]) {
      const { backend } = await fake(() => [200, body]);
      await unavailable(backend.end!(lease, ctx()), 'native.bad_response');
    }
  });
});

describe('native backend: the state key version at /v1/attest', () => {
  const attest: AttestInput = {
    tee: 'snp',
    version: '0.2.0',
    evidence: { report: new Uint8Array(1184) },
    challenge: new Uint8Array(32),
    key: { x: new Uint8Array(66), y: new Uint8Array(66) },
    stateCounter: 4n,
  };
  it('forwards it when the guest stated it (a number or null), and leaves it out when not', async () => {
    const { backend, seen } = await fake(() => [
      409,
      { code: 'ERR_REFUSED', reason: 'broker.clone', message: 'm' },
    ]);
    await backend.attest({ ...attest, stateKeyVersion: 3 }, ctx());
    await backend.attest({ ...attest, stateKeyVersion: null }, ctx());
    await backend.attest(attest, ctx());
    assert.equal(seen[0]!.body.stateKeyVersion, 3);
    assert.equal(seen[1]!.body.stateKeyVersion, null);
    assert.equal('stateKeyVersion' in seen[2]!.body, false);
    assert.equal(seen[2]!.body.stateCounter, '4');
  });
});
