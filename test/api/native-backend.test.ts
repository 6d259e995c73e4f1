/**
 * The proxy's native backend against fake brokers (refusals, outages, nonsense, timeouts) and against a
 * real broker over TLS with a pinned CA.
 */
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { webcrypto } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as x509 from '@peculiar/x509';
import { pino } from 'pino';
import { startBroker } from '../../src/api/index.js';
import { REPORT_DATA_PARAMS } from '../../src/native/service.js';
import type { AttestInput } from '../../src/proxy/backend.js';
import { createNativeBackend } from '../../src/proxy/backends/native/index.js';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const ctx = (signal = new AbortController().signal) => ({ sessionId: 's', peer: 'test', signal });
const attestInput: AttestInput = {
  tee: 'snp',
  version: '0.2.0',
  evidence: { report: new Uint8Array(1184) },
  challenge: new Uint8Array(32),
  key: { x: new Uint8Array(66), y: new Uint8Array(66) },
  stateCounter: null,
};

/** A fake broker answering every request with `handler`. */
async function fakeBroker(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<{ url: string; server: Server; seen: string[] }> {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      seen.push(`${req.method} ${req.url} ${body}`);
      handler(req, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, server, seen };
}

const json = (status: number, body: unknown) => (_req: IncomingMessage, res: ServerResponse) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
};

async function unavailable(p: Promise<unknown>, reason: string): Promise<void> {
  await assert.rejects(p, { code: 'ERR_UNAVAILABLE', reason });
}

describe('native backend', () => {
  const servers: Server[] = [];
  after(() => {
    for (const s of servers) s.close();
  });
  const fake = async (h: (req: IncomingMessage, res: ServerResponse) => void) => {
    const f = await fakeBroker(h);
    servers.push(f.server);
    return f;
  };

  it("passes the broker's refusal through with its code and reason", async () => {
    const f = await fake(
      json(409, { code: 'ERR_REFUSED', reason: 'broker.clone', message: 'refused: broker.clone' }),
    );
    const b = createNativeBackend({ brokerUrl: `${f.url}/prefix/`, timeoutMs: 2000 });
    const r = await b.attest(attestInput, ctx());
    assert.deepEqual(r, {
      outcome: 'refused',
      error: { code: 'ERR_REFUSED', reason: 'broker.clone', message: 'refused: broker.clone' },
    });
    // The request went to the path under the URL's prefix, with the counter as the API wants it.
    assert.match(f.seen[0]!, /^POST \/prefix\/v1\/attest \{.*"stateCounter":null/);
    const c = await b.commit(
      {
        version: '0.2.0',
        bootId: 'b',
        commitToken: new Uint8Array(32),
        stateDigest: new Uint8Array(32),
        counter: 3n,
        challenge: new Uint8Array(32),
      },
      ctx(),
    );
    assert.equal(c.outcome, 'refused');
    assert.match(f.seen[1]!, /"counter":"3"/);
    await assert.rejects(b.negotiate({ tee: 'snp', version: '0.2.0' }, ctx()), {
      code: 'ERR_REFUSED',
      reason: 'broker.clone',
    });
  });

  it('a 5xx, a wrong URL (404) or an unknown error code is an outage, not a refusal', async () => {
    for (const [status, body] of [
      [500, { code: 'ERR_INTERNAL', reason: 'api.internal', message: 'internal error' }],
      [404, { code: 'ERR_INVALID_ARGUMENT', reason: 'api.not_found', message: 'no such route' }],
      [502, '<html>bad gateway</html>'],
      [403, { code: 'ERR_SOMETHING', reason: 'x.y', message: 'm' }],
    ] as const) {
      const f = await fake(json(status, body));
      const b = createNativeBackend({ brokerUrl: f.url, timeoutMs: 2000 });
      await unavailable(b.attest(attestInput, ctx()), 'native.broker_error');
    }
  });

  it('a 200 that is not the API reply is native.bad_response', async () => {
    for (const body of [
      'not json',
      { ciphertext: 'AAAA' },
      { challenge: 'AAAA', params: ['Nonsense'] },
      'x'.repeat(1024 * 1024 + 10),
    ]) {
      const f = await fake(json(200, body));
      const b = createNativeBackend({ brokerUrl: f.url, timeoutMs: 2000 });
      await unavailable(b.attest(attestInput, ctx()), 'native.bad_response');
      await unavailable(b.negotiate({ tee: 'snp', version: '0.2.0' }, ctx()), 'native.bad_response');
    }
  });

  it('a broker that never answers times out; an aborted call stops at once', async () => {
    const f = await fake(() => {});
    const b = createNativeBackend({ brokerUrl: f.url, timeoutMs: 300 });
    // The timeout reason is the event: the call ended by its own deadline, not by the test's (no wall-clock bound).
    await unavailable(b.attest(attestInput, ctx()), 'native.broker_timeout');
    const ac = new AbortController();
    const p = b.negotiate({ tee: 'snp', version: '0.1.0' }, ctx(ac.signal));
    setTimeout(() => ac.abort(), 20);
    await unavailable(p, 'native.broker_timeout');
  });

  it('a broker that is down is native.broker_unreachable', async () => {
    const f = await fake(() => {});
    f.server.close();
    await new Promise((r) => setTimeout(r, 20));
    const b = createNativeBackend({ brokerUrl: f.url, timeoutMs: 2000 });
    await unavailable(b.negotiate({ tee: 'snp', version: '0.2.0' }, ctx()), 'native.broker_unreachable');
  });

  it('refuses unusable options', () => {
    for (const o of [
      { brokerUrl: 'ftp://x', timeoutMs: 1 },
      { brokerUrl: 'http://u:p@x', timeoutMs: 1 },
      { brokerUrl: 'http://x/?q=1', timeoutMs: 1 },
      { brokerUrl: 'not a url', timeoutMs: 1 },
      { brokerUrl: 'http://x', timeoutMs: 0 },
      { brokerUrl: 'http://x', timeoutMs: 1.5 },
      { brokerUrl: 'http://x', timeoutMs: 1, brokerCa: 'pem' },
      { brokerUrl: 'https://x', timeoutMs: 1, brokerCa: 'pem', fetch: globalThis.fetch },
    ]) {
      assert.throws(() => createNativeBackend(o), { code: 'ERR_INVALID_ARGUMENT', reason: 'native.config' });
    }
  });

  describe('TLS to the broker with a pinned CA', () => {
    let dir: string;
    let broker: Awaited<ReturnType<typeof startBroker>>;
    let caPem: string;
    let otherCaPem: string;
    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'vouchsafe-tls-'));
      const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
      const mk = async (cn: string) => {
        const keys = (await webcrypto.subtle.generateKey(alg, true, [
          'sign',
          'verify',
        ])) as webcrypto.CryptoKeyPair;
        const cert = await x509.X509CertificateGenerator.createSelfSigned({
          serialNumber: '01',
          name: `CN=${cn}`,
          notBefore: new Date(Date.now() - 60_000),
          notAfter: new Date(Date.now() + 3_600_000),
          keys,
          signingAlgorithm: alg,
          extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'ip', value: '127.0.0.1' }])],
        });
        const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)).toString(
          'base64',
        );
        return {
          cert: cert.toString('pem'),
          key: `-----BEGIN PRIVATE KEY-----\n${pkcs8.replace(/.{64}/g, '$&\n')}\n-----END PRIVATE KEY-----\n`,
        };
      };
      const tls = await mk('vouchsafe test broker');
      caPem = tls.cert;
      otherCaPem = (await mk('someone else')).cert;
      writeFileSync(join(dir, 'cert.pem'), tls.cert);
      writeFileSync(join(dir, 'key.pem'), tls.key, { mode: 0o600 });
      broker = await startBroker({
        listen: '127.0.0.1:0',
        dataDir: join(dir, 'data'),
        kds: 'none',
        logger: pino({ level: 'silent' }),
        tls: { certPath: join(dir, 'cert.pem'), keyPath: join(dir, 'key.pem') },
      });
    });
    after(async () => {
      await broker?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('talks to an https broker whose certificate chains to the given CA', async () => {
      assert.match(broker.url, /^https:\/\/127\.0\.0\.1:\d+$/);
      const b = createNativeBackend({ brokerUrl: broker.url, brokerCa: caPem, timeoutMs: 5000 });
      const n = await b.negotiate({ tee: 'snp', version: '0.2.0' }, ctx());
      assert.equal(n.challenge.length, 32);
      assert.deepEqual(n.params, REPORT_DATA_PARAMS['0.2.0']);
    });

    it('refuses a broker certificate that does not chain to the given CA (or to the system CAs)', async () => {
      const wrong = createNativeBackend({ brokerUrl: broker.url, brokerCa: otherCaPem, timeoutMs: 5000 });
      await unavailable(
        wrong.negotiate({ tee: 'snp', version: '0.2.0' }, ctx()),
        'native.broker_unreachable',
      );
      const system = createNativeBackend({ brokerUrl: broker.url, timeoutMs: 5000 });
      await unavailable(
        system.negotiate({ tee: 'snp', version: '0.2.0' }, ctx()),
        'native.broker_unreachable',
      );
    });
  });
});
