/**
 * End to end through our own KBS, as the product runs it: the broker from startBroker (SQLite in a temp
 * dir, the simulator's root trusted, certificates from a KDS stand-in because a COCONUT-SVSM sends none),
 * the host proxy (startProxy) with the KBS backend, i.e. `vouchsafe proxy --protocol kbs`, and a guest from
 * src/guest speaking aproxy 0.1.0 with the simulator as its report provider.
 */
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { webcrypto } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as x509 from '@peculiar/x509';
import { pino } from 'pino';
import { AttestationError } from '../../src/errors.js';
import { bootGuest, simulatorReportProvider } from '../../src/guest/index.js';
import { SEALING_KEY_PATH } from '../../src/kbs/index.js';
import { KbsProxyBackend } from '../../src/proxy/backends/kbs/index.js';
import { type RunningProxy, startProxy } from '../../src/proxy/index.js';
import type { SimSnpFirmware } from '../../src/sim/snp/index.js';
import { sharedSimChain } from '../../src/sim/snp/index.js';
import { toHex } from '../../src/util/bytes.js';
import { GOOD_MEASUREMENT, type Json, type KbsBrokerStack, startKbsBroker } from './broker-stack.js';
import { simKds } from './harness.js';

const quiet = pino({ level: 'silent' });

/** The SVSM's view of the simulator: a report, no certificate table. */
const svsmProvider = (fw: SimSnpFirmware) =>
  simulatorReportProvider({ getReport: (rd) => ({ report: fw.getReport(rd).report }) });

async function withKbsProxy<T>(
  s: KbsBrokerStack,
  resourcePath: string | undefined,
  fn: (p: RunningProxy, backend: KbsProxyBackend) => Promise<T>,
  ca?: string,
): Promise<T> {
  const backend = new KbsProxyBackend({
    url: s.b.url,
    ...(resourcePath !== undefined ? { resourcePath } : {}),
    ...(ca !== undefined ? { ca } : {}),
  });
  const proxy = await startProxy({
    listen: `unix:${join(s.dir, `proxy-${Math.random().toString(36).slice(2)}.sock`)}`,
    backend,
    logger: quiet,
    timeouts: { readMs: 5000, backendMs: 10_000, sessionMs: 20_000 },
    closeGraceMs: 100,
  });
  try {
    return await fn(proxy, backend);
  } finally {
    await proxy.close();
  }
}

describe('a 0.1.0 guest boots through our own KBS (startBroker + vouchsafe proxy --protocol kbs)', () => {
  let s: KbsBrokerStack;
  before(async () => {
    s = await startKbsBroker({ kds: simKds(await sharedSimChain('Milan')) });
  });
  after(async () => {
    await s?.close();
  });

  it('first boot, a reboot refused while the boot lease runs, reset-boot, then a reboot that unseals the state', async () => {
    const inst = await s.register();
    const fw = s.firmware(inst.hostData);
    const statePath = join(s.dir, 'guest.state');
    await withKbsProxy(s, SEALING_KEY_PATH, async (proxy, backend) => {
      const boot = () =>
        bootGuest({
          connect: proxy.address,
          provider: svsmProvider(fw),
          statePath,
          version: '0.1.0',
          timeoutMs: 10_000,
        });
      const first = await boot();
      assert.equal(first.firstBoot, true);
      assert.equal(first.counter, 1n);
      assert.equal(backend.pendingSessions, 0);

      // Every KBS attest is a release: the first boot holds the lease, so a second boot is a clone.
      await assert.rejects(
        boot(),
        (e: unknown) => e instanceof AttestationError && e.reason === 'aproxy.refused',
      );
      const audit = await s.admin('GET', '/v1/admin/audit?limit=1000');
      const mine = audit.body.entries.filter((e: Json) => e.instance === inst.id);
      assert.deepEqual(
        mine.map((e: Json) => `${e.kind}:${e.decision}`),
        ['register:accept', 'release:accept', 'release:refuse'],
      );
      assert.ok(mine[2].reasons.includes('broker.clone'));

      // The control plane ends the boot (the VM stopped); the reboot then opens the state it sealed.
      const reset = await s.admin('POST', `/v1/admin/instances/${inst.id}/reset-boot`, {
        note: 'VM stopped',
      });
      assert.equal(reset.status, 200, JSON.stringify(reset.body));
      assert.equal(reset.body.hadActiveBoot, true);
      const second = await boot();
      assert.equal(second.firstBoot, false);
      assert.equal(second.counter, 2n);
      assert.deepEqual(second.state, first.state);
    });
  });

  it("an unmodified aproxy's resource path works once the broker serves it (aproxyResourcePath)", async () => {
    const inst = await s.register();
    const fw = s.firmware(inst.hostData);
    // Not served by default: the guest is refused, and its boot lease was started by the attest.
    await withKbsProxy(s, undefined, async (proxy) => {
      await assert.rejects(
        bootGuest({
          connect: proxy.address,
          provider: svsmProvider(fw),
          statePath: join(s.dir, 'aproxy.state'),
          version: '0.1.0',
          timeoutMs: 10_000,
        }),
        (e: unknown) => e instanceof AttestationError && e.reason === 'aproxy.refused',
      );
    });
    await s.admin('POST', `/v1/admin/instances/${inst.id}/reset-boot`, {});
    await s.restart({ kbs: { aproxyResourcePath: true } });
    await withKbsProxy(s, undefined, async (proxy) => {
      const r = await bootGuest({
        connect: proxy.address,
        provider: svsmProvider(fw),
        statePath: join(s.dir, 'aproxy.state'),
        version: '0.1.0',
        timeoutMs: 10_000,
      });
      assert.equal(r.firstBoot, true);
    });
  });
});

/** A self-signed TLS certificate for 127.0.0.1 (PEM cert and PKCS#8 key). */
async function selfSigned(cn: string): Promise<{ cert: string; key: string }> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: `CN=${cn}`,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3_600_000),
    keys,
    signingAlgorithm: alg,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'ip', value: '127.0.0.1' }])],
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)).toString('base64');
  return {
    cert: cert.toString('pem'),
    key: `-----BEGIN PRIVATE KEY-----\n${pkcs8.replace(/.{64}/g, '$&\n')}\n-----END PRIVATE KEY-----\n`,
  };
}

describe('the KBS proxy backend over https with a pinned CA (--protocol kbs --broker-ca)', () => {
  let s: KbsBrokerStack;
  let ca: string;
  before(async () => {
    s = await startKbsBroker({ kbs: false });
    const tls = await selfSigned('vouchsafe kbs test broker');
    ca = tls.cert;
    writeFileSync(join(s.dir, 'cert.pem'), tls.cert);
    writeFileSync(join(s.dir, 'key.pem'), tls.key, { mode: 0o600 });
    await s.restart({
      kbs: {},
      tls: { certPath: join(s.dir, 'cert.pem'), keyPath: join(s.dir, 'key.pem') },
    });
  });
  after(async () => {
    await s?.close();
  });

  it('boots a guest through an https KBS whose certificate chains to the pinned CA', async () => {
    assert.match(s.b.url, /^https:/);
    // Registered on the Broker directly: this test's fetch does not trust the self-signed certificate.
    const inst = await s.b.broker.registerInstance({
      project: 'kbs',
      zone: 'z',
      instanceId: `tls-${Date.now()}`,
      instanceName: 'tls-vm',
      policy: { measurements: [GOOD_MEASUREMENT] },
    });
    const fw = s.firmware(toHex(inst.hostData));
    await withKbsProxy(
      s,
      SEALING_KEY_PATH,
      async (proxy) => {
        const r = await bootGuest({
          connect: proxy.address,
          provider: simulatorReportProvider(fw),
          statePath: join(s.dir, 'tls.state'),
          version: '0.1.0',
          timeoutMs: 10_000,
        });
        assert.equal(r.firstBoot, true);
      },
      ca,
    );
  });

  it('refuses a KBS certificate that does not chain to the pinned CA, and a CA without https', async () => {
    const other = (await selfSigned('someone else')).cert;
    const backend = new KbsProxyBackend({ url: s.b.url, ca: other });
    await assert.rejects(
      backend.negotiate(
        { tee: 'snp', version: '0.1.0' },
        { sessionId: 's1', peer: 'unix', signal: new AbortController().signal },
      ),
      (e: unknown) => e instanceof AttestationError && e.reason === 'proxy_kbs.unreachable',
    );
    assert.throws(
      () => new KbsProxyBackend({ url: 'http://127.0.0.1:1', ca }),
      (e: unknown) => e instanceof AttestationError && e.reason === 'proxy_kbs.config',
    );
  });
});
