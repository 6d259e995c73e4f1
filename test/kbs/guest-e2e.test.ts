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

  it('first boot; reboots within the lease (a new launch takes over, the same launch is the same boot); under refuse a clone with its true code, then the VMM ends the boot', async () => {
    const inst = await s.register();
    const statePath = join(s.dir, 'guest.state');
    await withKbsProxy(s, SEALING_KEY_PATH, async (proxy, backend) => {
      const refusals: { code: string; reason: string }[] = [];
      const attest = backend.attest.bind(backend);
      backend.attest = async (req, ctx) => {
        const r = await attest(req, ctx);
        if (r.outcome === 'refused') refusals.push({ code: r.error.code, reason: r.error.reason });
        return r;
      };
      const boot = (fw: SimSnpFirmware) =>
        bootGuest({
          connect: proxy.address,
          provider: svsmProvider(fw),
          statePath,
          version: '0.1.0',
          timeoutMs: 10_000,
        });
      const first = await boot(s.firmware(inst.hostData));
      assert.equal(first.firstBoot, true);
      assert.equal(first.counter, 1n);
      assert.equal(backend.pendingSessions, 0);

      // A 0.1.0 guest cannot end its boot: its reboot (a new launch) within the lease boots at once.
      const relaunched = s.firmware(inst.hostData);
      const second = await boot(relaunched);
      assert.deepEqual(second.state, first.state);
      // The same launch attesting again (a Trustee client refreshing its token) is the same boot.
      const again = await boot(relaunched);
      assert.deepEqual(again.state, first.state);

      // Under `refuse`, a new launch during the live lease is a clone: the proxy hears the true code.
      const nl = await s.admin('PUT', `/v1/admin/instances/${inst.id}/new-launch`, { newLaunch: 'refuse' });
      assert.equal(nl.status, 200, JSON.stringify(nl.body));
      const third = s.firmware(inst.hostData);
      await assert.rejects(
        boot(third),
        (e: unknown) => e instanceof AttestationError && e.reason === 'aproxy.refused',
      );
      assert.deepEqual(refusals, [{ code: 'ERR_REFUSED', reason: 'broker.clone' }]);
      const audit = await s.admin('GET', '/v1/admin/audit?limit=1000');
      const mine = audit.body.entries.filter((e: Json) => e.instance === inst.id);
      assert.deepEqual(
        mine.map((e: Json) => `${e.kind}:${e.decision}:${e.reasons.join(',')}`),
        [
          'register:accept:broker.registered',
          'release:accept:broker.released,broker.key_created',
          'release:accept:broker.released,broker.boot_superseded',
          'release:accept:broker.released,broker.same_launch',
          'new_launch:accept:broker.new_launch_set',
          'release:refuse:broker.clone',
        ],
      );
      assert.equal(typeof mine[5].details.activeBootId, 'string', 'the audit keeps what the clone ran into');

      // The VMM backend ends the boot (the VM stopped); the next launch then opens the state it sealed.
      const reset = await s.admin('POST', `/v1/admin/instances/${inst.id}/reset-boot`, {
        note: 'VM stopped',
      });
      assert.equal(reset.status, 200, JSON.stringify(reset.body));
      assert.equal(reset.body.hadActiveBoot, true);
      const fourth = await boot(third);
      assert.equal(fourth.firstBoot, false);
      assert.deepEqual(fourth.state, first.state);
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
