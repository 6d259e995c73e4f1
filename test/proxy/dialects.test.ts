/**
 * The proxy's dialects (docs/protocol.md "Dialects"): svsm main, PR #1122 and PR #1203 guests (the guest
 * library) get their key from Vouchsafe's KBS through one listener per dialect, in both bindings
 * (SHA-512 RawBinary, SHA-384 JwsJson); a guest of another dialect is reported as a mismatch; the PR #1203
 * forwarder forwards only its three exchanges and never shares a cookie jar between guests.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { AttestationError } from '../../src/errors.js';
import { JWS_SHA384, RAW_SHA512 } from '../../src/formats/aproxy/dialect-binding.js';
import { encodeFrame } from '../../src/formats/aproxy/frame.js';
import { encodeNegotiationRequest } from '../../src/formats/aproxy/negotiation.js';
import {
  encodeProxyRequest,
  parseConfigResponse,
  parseProxyResponse,
} from '../../src/formats/aproxy/pr1203.js';
import { bootGuest, simulatorReportProvider } from '../../src/guest/index.js';
import { KbsForwarder, KbsProxyBackend } from '../../src/proxy/backends/kbs/index.js';
import { type RunningProxy, startProxy } from '../../src/proxy/server.js';
import { type KbsTestEnv, startKbs } from '../kbs/harness.js';
import { RawClient } from './raw-client.js';

const logger = pino({ level: 'silent' });
let dir: string;
let env: KbsTestEnv;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vouchsafe-dialects-'));
  env = await startKbs({ withCertSource: true });
});
after(async () => {
  await env?.close();
  await rm(dir, { recursive: true, force: true });
});

/** The primary_evidence of each POST /kbs/v0/attest the proxy made (its backend's or its forwarder's). */
type Posted = Record<string, unknown>[];

/** A fetch that records what the proxy posts to /attest, then sends it on unchanged. */
function recordingFetch(posted: Posted): typeof globalThis.fetch {
  return async (url, init) => {
    if (String(url).endsWith('/kbs/v0/attest') && init?.body !== undefined) {
      const body = JSON.parse(Buffer.from(init.body as string | Uint8Array).toString('utf8'));
      posted.push(body['tee-evidence'].primary_evidence);
    }
    return fetch(url, init);
  };
}

/**
 * A listener per dialect: main, pr1122, pr1203, all to the test KBS with one binding. The KBS backend
 * picks its evidence form from the binding (jws-sha384: Trustee's struct form), as `vouchsafe proxy` does.
 */
async function withProxy<T>(
  binding: typeof RAW_SHA512,
  fn: (p: RunningProxy, posted: Posted) => Promise<T>,
): Promise<T> {
  const posted: Posted = [];
  const backend = new KbsProxyBackend({ url: env.base, binding, fetch: recordingFetch(posted) });
  const forwarder = new KbsForwarder({ url: env.base, binding, fetch: recordingFetch(posted) });
  const proxy = await startProxy({
    listen: ['tcp:127.0.0.1:0', 'tcp:127.0.0.1:0', 'tcp:127.0.0.1:0'],
    dialect: ['main', 'pr1122', 'pr1203'],
    backend,
    forwarder,
    logger,
  });
  try {
    return await fn(proxy, posted);
  } finally {
    await proxy.close();
  }
}

async function svsmProvider() {
  const { instance, firmware } = await env.launch();
  // No certificate table, as the SVSM: the KBS gets the VCEK chain from its certificate source.
  const provider = simulatorReportProvider({
    getReport: (rd) => ({ report: firmware.getReport(rd).report }),
  });
  return { instance, provider };
}

const isReason = (reason: string) => (e: unknown) => e instanceof AttestationError && e.reason === reason;

/** The form of a posted primary_evidence, by its keys (and, for attestation_report, its type). */
function formOf(primary: Record<string, unknown>): string {
  if ('Snp' in primary) return `Snp{${Object.keys(primary.Snp as object).join(',')}}`;
  if ('snp-report' in primary) return 'snp-report';
  return typeof primary.attestation_report === 'object' ? 'sev-struct' : 'attestation_report';
}

for (const [name, binding] of [
  ['SHA-512 RawBinary', RAW_SHA512],
  ['SHA-384 JwsJson', JWS_SHA384],
] as const) {
  describe(`dialects, KBS binding ${name}`, () => {
    const cases = [
      // PR #1122: the proxy's backend posts; jws-sha384 is Trustee's binding, so Trustee's struct form.
      { i: 1, dialect: 'pr1122', form: binding === JWS_SHA384 ? 'sev-struct' : 'snp-report' },
      // PR #1203: the guest posts through the forwarder; by default what the PR's SVSM sends.
      { i: 2, dialect: 'pr1203', form: 'Snp{report}' },
      { i: 2, dialect: 'pr1203', spelling: 'snp-report', form: 'snp-report' },
      { i: 2, dialect: 'pr1203', spelling: 'attestation_report', form: 'attestation_report' },
    ] as const;
    for (const c of cases) {
      const label = `${c.dialect}${'spelling' in c ? ` (${c.spelling})` : ''}`;
      it(`a ${label} guest gets its key posting ${c.form}, and the next boot unseals the state`, async () => {
        const { instance, provider } = await svsmProvider();
        await withProxy(binding, async (proxy, posted) => {
          const statePath = join(dir, `${label.replace(/\W/g, '')}-${name.replace(/\W/g, '')}.state`);
          const connect = proxy.addresses[c.i]!;
          const o = {
            connect,
            provider,
            statePath,
            dialect: c.dialect,
            ...('spelling' in c ? { evidenceSpelling: c.spelling } : {}),
          };
          const first = await bootGuest(o);
          assert.equal(first.firstBoot, true);
          assert.deepEqual(await env.sealingKey(instance.id), await env.sealingKey(instance.id));
          await env.broker.resetBoot(instance.id, 'test: VM stopped');
          const second = await bootGuest(o);
          assert.deepEqual(second.state, first.state);
          assert.equal(second.counter, 2n);
          assert.deepEqual(posted.map(formOf), [c.form, c.form]);
          await waitFor(() => (proxy.outcomes().released ?? 0) >= 2);
        });
      });
    }
  });
}

describe('dialect mismatches', () => {
  it('a guest on a listener of another dialect fails with guest.dialect.mismatch, every pairing', async () => {
    const { provider } = await svsmProvider();
    await withProxy(RAW_SHA512, async (proxy) => {
      const listeners = { main: 0, pr1122: 1, pr1203: 2 } as const;
      for (const guest of ['main', 'pr1122', 'pr1203'] as const) {
        for (const [listener, idx] of Object.entries(listeners)) {
          if (listener === guest) continue;
          await assert.rejects(
            bootGuest({
              connect: proxy.addresses[idx]!,
              provider,
              statePath: join(dir, `mismatch-${guest}-${listener}.state`),
              dialect: guest,
              version: '0.1.0',
            }),
            isReason('guest.dialect.mismatch'),
            `${guest} guest on ${listener} listener`,
          );
        }
      }
    });
  });

  it('the proxy reports a mismatch seen in the second message (main AttestationRequest on pr1122, ProxyRequest on main)', async () => {
    await withProxy(RAW_SHA512, async (proxy) => {
      const c = await RawClient.connect(proxy.addresses[1]!);
      c.sendFrame(encodeNegotiationRequest({ version: [0, 1, 0], tee: 'snp' }));
      bytesOf(await c.next());
      const x = Buffer.alloc(66, 1).toString('base64');
      c.sendRaw(
        encodeFrame(
          Buffer.from(
            JSON.stringify({
              tee: 'snp',
              evidence: { Snp: { report: Buffer.alloc(1184).toString('base64') } },
              challenge: 'AAAA',
              key: { x, y: x },
            }),
          ),
        ),
      );
      const reply = JSON.parse(Buffer.from(bytesOf(await c.next())).toString());
      assert.equal(reply.success, false);
      c.end();
      const m = await RawClient.connect(proxy.addresses[0]!);
      m.sendFrame(encodeNegotiationRequest({ version: [0, 1, 0], tee: 'snp' }));
      bytesOf(await m.next());
      m.sendFrame(encodeProxyRequest({ endpoint: '/kbs/v0/auth', method: 'POST', body: {} }));
      assert.equal(JSON.parse(Buffer.from(bytesOf(await m.next())).toString()).success, false);
      m.end();
      await waitFor(() => (proxy.outcomes().dialect_mismatch ?? 0) >= 2);
    });
  });
});

describe('PR #1203 forwarder bounds', () => {
  it('forwards only the configured endpoints and methods (403), bounded bodies (413)', async () => {
    await withProxy(RAW_SHA512, async (proxy) => {
      for (const [req, status] of [
        [{ endpoint: '/kbs/v0/resource/other/secret/key', method: 'GET', body: null }, 403],
        [{ endpoint: '/kbs/v0/auth', method: 'GET', body: null }, 403],
        [{ endpoint: '/admin/v1/instances', method: 'POST', body: {} }, 403],
        [{ endpoint: '/kbs/v0/attest', method: 'POST', body: { pad: 'x'.repeat(70_000) } }, 413],
      ] as const) {
        const c = await RawClient.connect(proxy.addresses[2]!);
        c.sendFrame(encodeNegotiationRequest({ version: [0, 1, 0], tee: 'snp' }));
        parseConfigResponse(bytesOf(await c.next()));
        c.sendFrame(encodeProxyRequest(req));
        assert.equal(parseProxyResponse(bytesOf(await c.next())).status, status, req.endpoint);
        c.end();
      }
    });
  });

  it('a path with .. or a query is malformed, never forwarded', async () => {
    await withProxy(RAW_SHA512, async (proxy) => {
      for (const endpoint of ['/kbs/v0/../admin', '/kbs/v0/auth?x=1', 'http://evil/kbs', '//evil/kbs']) {
        const c = await RawClient.connect(proxy.addresses[2]!);
        c.sendFrame(encodeNegotiationRequest({ version: [0, 1, 0], tee: 'snp' }));
        bytesOf(await c.next());
        c.sendRaw(encodeFrame(Buffer.from(JSON.stringify({ endpoint, method: 'POST', body: {} }))));
        await c.closed();
      }
      await waitFor(() => (proxy.outcomes().malformed ?? 0) >= 4);
    });
  });

  it("an attested guest's KBS session cookie is never sent with another guest's requests", async () => {
    const { provider } = await svsmProvider();
    await withProxy(RAW_SHA512, async (proxy) => {
      // Guest B connects first and waits; guest A then attests fully through the same listener.
      const b = await RawClient.connect(proxy.addresses[2]!);
      b.sendFrame(encodeNegotiationRequest({ version: [0, 1, 0], tee: 'snp' }));
      parseConfigResponse(bytesOf(await b.next()));
      await bootGuest({
        connect: proxy.addresses[2]!,
        provider,
        statePath: join(dir, 'jar-a.state'),
        dialect: 'pr1203',
      });
      // With one jar for all (as the PR's aproxy), B would ride on A's attested session and get 200.
      b.sendFrame(
        encodeProxyRequest({ endpoint: '/kbs/v0/resource/default/sample/test', method: 'GET', body: null }),
      );
      assert.equal(parseProxyResponse(bytesOf(await b.next())).status, 401);
      b.end();
    });
  });
});

async function waitFor(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setImmediate(r));
}

const bytesOf = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'utf8'));
