import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { FlattenedEncrypt, importJWK } from 'jose';
import pino from 'pino';
import { AttestationError } from '../../src/errors.js';
import { bootGuest, simulatorReportProvider } from '../../src/guest/index.js';
import { SEALING_KEY_PATH } from '../../src/kbs/index.js';
import { APROXY_DEFAULT_RESOURCE, jweToAesGcm, KbsProxyBackend } from '../../src/proxy/backends/kbs/index.js';
import { type RunningProxy, startProxy } from '../../src/proxy/server.js';
import { type KbsTestEnv, startKbs } from './harness.js';

const logger = pino({ level: 'silent' });
let dir: string;
let env: KbsTestEnv;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vouchsafe-proxy-kbs-'));
  // COCONUT-SVSM sends no certificate table: the KBS gets the VCEK chain from its certificate source.
  env = await startKbs({ withCertSource: true });
});
after(async () => {
  await env?.close();
  await rm(dir, { recursive: true, force: true });
});

async function withProxy<T>(backend: KbsProxyBackend, fn: (p: RunningProxy) => Promise<T>): Promise<T> {
  const proxy = await startProxy({ listen: 'tcp:127.0.0.1:0', backend, logger });
  try {
    return await fn(proxy);
  } finally {
    await proxy.close();
  }
}

describe('proxy KBS backend against our KBS (guest library speaking aproxy 0.1.0, as a real SVSM)', () => {
  it('boots a guest: the released secret seals its state, and the next boot unseals it', async () => {
    const { instance, firmware } = await env.launch();
    // No certificate table from the guest, exactly like the SVSM.
    const provider = simulatorReportProvider({
      getReport: (rd) => ({ report: firmware.getReport(rd).report }),
    });
    const backend = new KbsProxyBackend({ url: `${env.base}/`, resourcePath: SEALING_KEY_PATH });
    const statePath = join(dir, 'first.state');
    await withProxy(backend, async (proxy) => {
      const first = await bootGuest({ connect: proxy.address, provider, statePath, version: '0.1.0' });
      assert.equal(first.firstBoot, true);
      assert.equal(backend.pendingSessions, 0);
      await env.broker.resetBoot(instance.id, 'test: VM stopped');
      const second = await bootGuest({ connect: proxy.address, provider, statePath, version: '0.1.0' });
      assert.equal(second.firstBoot, false);
      assert.deepEqual(second.state, first.state);
      assert.equal(second.counter, 2n);
    });
  });

  it("uses aproxy's default resource path default/sample/test when none is configured", async () => {
    const { firmware } = await env.launch();
    const provider = simulatorReportProvider(firmware);
    const backend = new KbsProxyBackend({ url: env.base });
    await withProxy(backend, async (proxy) => {
      const r = await bootGuest({
        connect: proxy.address,
        provider,
        statePath: join(dir, 'default.state'),
        version: '0.1.0',
      });
      assert.equal(r.firstBoot, true);
    });
  });

  it('a guest the KBS refuses gets success:false (aproxy behaviour) and no secret', async () => {
    const { firmware } = await env.launch({ measurement: new Uint8Array(48).fill(9) });
    const backend = new KbsProxyBackend({ url: env.base, resourcePath: SEALING_KEY_PATH });
    await withProxy(backend, async (proxy) => {
      await assert.rejects(
        bootGuest({
          connect: proxy.address,
          provider: simulatorReportProvider(firmware),
          statePath: join(dir, 'refused.state'),
          version: '0.1.0',
        }),
        (e: unknown) => e instanceof AttestationError && e.reason === 'aproxy.refused',
      );
    });
  });

  it('refuses protocol 0.2.0 guests at negotiation (a generic KBS cannot serve the 0.2.0 payload)', async () => {
    const { firmware } = await env.launch();
    const backend = new KbsProxyBackend({ url: env.base });
    await withProxy(backend, async (proxy) => {
      await assert.rejects(
        bootGuest({
          connect: proxy.address,
          provider: simulatorReportProvider(firmware),
          statePath: join(dir, 'v2.state'),
          version: '0.2.0',
        }),
        (e: unknown) => e instanceof AttestationError && e.reason === 'proxy_kbs.version',
      );
    });
  });
});

/** The Attestation body as the mock KBS receives it. */
interface WireAttestation {
  'init-data': unknown;
  'runtime-data': { nonce: string; 'tee-pubkey': Record<string, string> };
  'tee-evidence': { primary_evidence: Record<string, string | null>; additional_evidence: string };
}

/** A stand-in for any other KBS: records the wire, answers like Trustee, wraps with jose (not our code). */
async function mockKbs(secret: Uint8Array) {
  const seen: { method: string; url: string; cookie?: string; body?: unknown; contentType?: string }[] = [];
  const app: FastifyInstance = Fastify({ logger: false });
  let teeJwk: Record<string, string> | undefined;
  app.post('/kbs/v0/auth', async (req, reply) => {
    seen.push({
      method: 'POST',
      url: req.url,
      body: req.body,
      contentType: req.headers['content-type'] as string,
    });
    return reply
      .header('set-cookie', 'kbs-session-id=mock123; Expires=Wed, 01 Jan 2098 00:00:00 GMT')
      .send({ nonce: Buffer.alloc(32, 0x5c).toString('base64'), 'extra-params': '' });
  });
  app.post('/kbs/v0/attest', async (req, reply) => {
    seen.push({ method: 'POST', url: req.url, body: req.body, cookie: req.headers.cookie as string });
    teeJwk = (req.body as WireAttestation)['runtime-data']['tee-pubkey'];
    return reply.send({ token: 'mock.token.value' });
  });
  app.get('/kbs/v0/resource/*', async (req, reply) => {
    seen.push({ method: 'GET', url: req.url, cookie: req.headers.cookie as string });
    const key = await importJWK({ kty: 'EC', crv: 'P-521', x: teeJwk!.x, y: teeJwk!.y }, 'ECDH-ES+A256KW');
    const jwe = await new FlattenedEncrypt(secret)
      .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM' })
      .encrypt(key);
    return reply.send(jwe);
  });
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, base, seen };
}

describe('proxy KBS backend wire format (against a mock KBS)', () => {
  it('speaks RCAR exactly as COCONUT aproxy: bodies, cookie, resource path; opens a jose-made JWE', async () => {
    const secret = new Uint8Array(32).fill(0x33);
    const kbs = await mockKbs(secret);
    try {
      const { firmware } = await env.launch();
      const backend = new KbsProxyBackend({ url: kbs.base });
      await withProxy(backend, async (proxy) => {
        const r = await bootGuest({
          connect: proxy.address,
          provider: simulatorReportProvider(firmware),
          statePath: join(dir, 'mock.state'),
          version: '0.1.0',
        });
        assert.equal(r.firstBoot, true);
      });
      const [auth, attest, resource] = kbs.seen;
      assert.deepEqual(auth?.body, { version: '0.4.0', tee: 'snp', 'extra-params': '' });
      assert.match(auth?.contentType ?? '', /^application\/json/);
      const body = attest?.body as WireAttestation;
      assert.deepEqual(Object.keys(body), ['init-data', 'runtime-data', 'tee-evidence']);
      assert.equal(body['init-data'], null);
      assert.equal(body['runtime-data'].nonce, Buffer.alloc(32, 0x5c).toString('base64'));
      assert.deepEqual(Object.keys(body['runtime-data']['tee-pubkey']), ['kty', 'crv', 'alg', 'x', 'y']);
      assert.equal(body['runtime-data']['tee-pubkey'].crv, 'P-521');
      assert.equal(body['runtime-data']['tee-pubkey'].alg, 'ECDH-ES+A256KW');
      assert.equal(Buffer.from(body['runtime-data']['tee-pubkey'].x ?? '', 'base64url').length, 66);
      assert.deepEqual(Object.keys(body['tee-evidence']), ['primary_evidence', 'additional_evidence']);
      assert.equal(body['tee-evidence'].additional_evidence, '');
      const pe = body['tee-evidence'].primary_evidence;
      assert.equal(Buffer.from(pe['snp-report'] ?? '', 'base64').length, 0x4a0);
      assert.ok('certs-buf' in pe);
      assert.equal(attest?.cookie, 'kbs-session-id=mock123');
      assert.equal(resource?.url, `/kbs/v0/resource/${APROXY_DEFAULT_RESOURCE}`);
      assert.equal(resource?.cookie, 'kbs-session-id=mock123');
    } finally {
      await kbs.app.close();
    }
  });

  it('sends the attestation_report/cert_chain spelling when configured', async () => {
    const kbs = await mockKbs(new Uint8Array(32));
    try {
      const { firmware } = await env.launch();
      const backend = new KbsProxyBackend({ url: kbs.base, evidenceSpelling: 'attestation_report' });
      await withProxy(backend, (proxy) =>
        bootGuest({
          connect: proxy.address,
          provider: simulatorReportProvider(firmware),
          statePath: join(dir, 'mock2.state'),
          version: '0.1.0',
        }),
      );
      const sent = kbs.seen[1]?.body as WireAttestation;
      const pe = sent['tee-evidence'].primary_evidence;
      assert.deepEqual(Object.keys(pe).sort(), ['attestation_report', 'cert_chain']);
    } finally {
      await kbs.app.close();
    }
  });
});

describe('jweToAesGcm', () => {
  const header = (h: object) => Buffer.from(JSON.stringify(h)).toString('base64url');
  const epk = {
    crv: 'P-521',
    kty: 'EC',
    x: Buffer.alloc(66, 1).toString('base64url'),
    y: Buffer.alloc(66, 2).toString('base64url'),
  };
  const good = {
    protected: header({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM', epk }),
    encrypted_key: Buffer.alloc(40).toString('base64url'),
    iv: Buffer.alloc(12).toString('base64url'),
    ciphertext: Buffer.alloc(5).toString('base64url'),
    tag: Buffer.alloc(16).toString('base64url'),
  };
  const reason = (v: unknown) => {
    try {
      jweToAesGcm(v);
      return 'accepted';
    } catch (e) {
      return e instanceof AttestationError ? e.reason : `threw ${String(e)}`;
    }
  };

  it('maps the members to the aproxy fields, AAD = the protected member as received', () => {
    const r = jweToAesGcm(good);
    assert.equal(Buffer.from(r.decryption.aad).toString('ascii'), good.protected);
    assert.equal(r.decryption.wrappedCek.length, 40);
    assert.equal(r.ciphertext.length, 5);
    assert.deepEqual(r.decryption.epk.x, new Uint8Array(66).fill(1));
  });

  it('refuses what the SVSM could not open', () => {
    assert.equal(reason({ ...good, aad: 'eA' }), 'proxy_kbs.jwe_alg');
    assert.equal(
      reason({ ...good, protected: header({ alg: 'RSA-OAEP-256', enc: 'A256GCM' }) }),
      'proxy_kbs.jwe_alg',
    );
    assert.equal(
      reason({
        ...good,
        protected: header({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM', epk: { ...epk, crv: 'P-256' } }),
      }),
      'proxy_kbs.jwe_alg',
    );
    assert.equal(reason({ ...good, iv: Buffer.alloc(16).toString('base64url') }), 'proxy_kbs.jwe');
    assert.equal(reason({ ...good, encrypted_key: 'a+b' }), 'proxy_kbs.jwe');
    assert.equal(reason('nope'), 'proxy_kbs.jwe');
    assert.equal(reason({ ...good, protected: 'e30' }), 'proxy_kbs.jwe_alg');
  });
});
