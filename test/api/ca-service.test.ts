import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { httpCaClient, httpCertifyRelay } from '../../src/admin/ca-client.js';
import { openCaRepository, PlatformCa } from '../../src/ca/index.js';
import { x509 } from '../../src/ca/x509-lib.js';
import { signC509Csr } from '../../src/formats/c509/index.js';
import { specialTextFromString } from '../../src/formats/c509/name.js';
import type { PlatformIdentity } from '../../src/formats/platform-identity.js';
import { PvCall } from '../../src/formats/pvchannel/constants.js';
import { parseCertificate } from '../../src/formats/x509/certificate.js';
import { readInstanceIdentity } from '../../src/formats/x509/instance-identity.js';
import { certifyAk, certifyEk } from '../../src/guest/certify.js';
import { simulatorReportProvider } from '../../src/guest/report-provider.js';
import { certifyAkHandler, certifyEkHandler } from '../../src/pvchannel/certify-handlers.js';
import { PvClient } from '../../src/pvchannel/client.js';
import { PvDevice } from '../../src/pvchannel/device.js';
import { sharedSimChain } from '../../src/sim/snp/index.js';
import { servicesManifest, softAk, softEk } from '../ca/fixtures.js';
import { errorWith } from '../helpers/assert-error.js';
import { type BrokerStack, postgresEngine, startBrokerStack } from '../helpers/broker.js';
import { ALL, offer, transportTo } from '../pvchannel/helpers.js';

/**
 * The platform CA as a service in the broker process (`serve --ca-dir`): /v1/ca/* behind the admin
 * credential, the broker's registry as the CA's instance lookup, a per-caller rate limit, the chain and
 * CRL for anyone. The VMM's device relays CERTIFY_EK / CERTIFY_AK to it over HTTP (src/admin/ca-client.ts).
 */

describe('the platform CA as a service (/v1/ca)', () => {
  let s: BrokerStack;
  let caDir: string;
  let identity: PlatformIdentity;
  let hostData: string;

  before(async () => {
    const chain = await sharedSimChain('Milan');
    caDir = mkdtempSync(join(tmpdir(), 'vouchsafe-ca-svc-'));
    const ca = await PlatformCa.init({
      dir: caDir,
      config: { snp: { trustedRoots: [{ product: 'Milan', sha256: chain.rootSha256 }], policy: {} } },
    });
    await ca.close();
    s = await startBrokerStack({ broker: { ca: { dir: caDir, rateLimit: { burst: 40, perMinute: 1 } } } });
    identity = { project: 'svc-proj', zone: 'svc-zone', instanceId: '424242', instanceName: 'svc-vm' };
    const res = await s.admin('POST', '/v1/admin/instances', { ...identity, policy: {} });
    assert.equal(res.status, 201);
    hostData = (res.body as { hostData: string }).hostData;
  });
  after(async () => {
    await s.close();
    rmSync(caDir, { recursive: true, force: true });
  });

  function device(token = s.b.adminToken, claim?: PlatformIdentity) {
    const client = httpCaClient({ url: s.b.url, token });
    const relay = httpCertifyRelay(client, () => claim);
    const d = new PvDevice({
      offer: offer(ALL),
      handlers: { [PvCall.CertifyEk]: certifyEkHandler(relay), [PvCall.CertifyAk]: certifyAkHandler(relay) },
    });
    return { pv: new PvClient({ transport: transportTo('page', () => d), want: ALL }), client };
  }

  it('CERTIFY_EK and CERTIFY_AK through a device that relays over HTTP: identity from the registry', async () => {
    const { pv, client } = device(s.b.adminToken, identity);
    const ek = softEk();
    const ak = softAk();
    const manifest = servicesManifest(ek.pub, ak.pub);
    const reports = simulatorReportProvider(s.firmware(hostData));
    const ekc = await certifyEk(pv, { manifest, reports });
    const id = readInstanceIdentity(parseCertificate(ekc.certificate))!;
    assert.deepEqual(
      [id.projectId, id.zone, id.instanceId.toString(), id.instanceName],
      [identity.project, identity.zone, identity.instanceId, identity.instanceName],
    );
    const csr = signC509Csr({ subject: specialTextFromString('ak'), attributes: [] }, ak.privateKey);
    const akc = await certifyAk(pv, { manifest, reports, csr });
    const cert = new x509.X509Certificate(Uint8Array.from(akc.certificate).buffer);
    const caCert = new x509.X509Certificate(Uint8Array.from(akc.chain[0]!).buffer);
    assert.ok(await cert.verify({ publicKey: caCert.publicKey, signatureOnly: true }));
    client.close();
    const log = await s.b.ca!.readLog(0, 1000);
    assert.deepEqual(
      log
        .filter((e) => e.decision === 'accept')
        .map((e) => e.kind)
        .slice(-2),
      ['ca.issue_ek', 'ca.issue_ak'],
    );
  });

  it('a VMM that claims another identity is refused with a stable code at the guest, and logged', async () => {
    const { pv, client } = device(s.b.adminToken, { ...identity, instanceName: 'someone-else' });
    await assert.rejects(
      certifyEk(pv, {
        manifest: servicesManifest(softEk().pub),
        reports: simulatorReportProvider(s.firmware(hostData)),
      }),
      errorWith('ERR_REFUSED', 'ca.identity_mismatch'),
    );
    client.close();
    const log = await s.b.ca!.readLog(0, 1000);
    assert.deepEqual(log.at(-1)!.reasons, ['ca.identity_mismatch']);
    assert.equal(log.at(-1)!.decision, 'refuse');
  });

  it("a host credential relays for its own project's instances only; a read credential may not relay", async () => {
    const credential = async (role: string, project: string) => {
      const r = await s.admin('POST', '/v1/admin/credentials', {
        name: `${role}-${project}`,
        role,
        projects: [project],
      });
      assert.equal(r.status, 201);
      return (r.body as { token: string }).token;
    };
    // An instance of its own (the others already have an EK certified).
    const mine = { ...identity, instanceId: '424243', instanceName: 'svc-vm-2' };
    const reg = await s.admin('POST', '/v1/admin/instances', { ...mine, policy: {} });
    assert.equal(reg.status, 201);
    const reports = simulatorReportProvider(s.firmware((reg.body as { hostData: string }).hostData));
    // The VMM host of svc-proj: certified.
    const own = device(await credential('host', identity.project));
    const ekc = await certifyEk(own.pv, { manifest: servicesManifest(softEk().pub), reports });
    assert.equal(readInstanceIdentity(parseCertificate(ekc.certificate))!.instanceName, mine.instanceName);
    own.client.close();
    // Another project's host: the instance is not registered as far as it can tell.
    const other = device(await credential('host', 'another-proj'));
    await assert.rejects(
      certifyEk(other.pv, { manifest: servicesManifest(softEk().pub), reports }),
      errorWith('ERR_REFUSED', 'ca.instance_unregistered'),
    );
    other.client.close();
    assert.deepEqual((await s.b.ca!.readLog(0, 1000)).at(-1)!.reasons, ['ca.instance_unregistered']);
    // A read-only credential is not a relay.
    const reader = await credential('read', identity.project);
    const r = await fetch(`${s.b.url}/v1/ca/nonce`, {
      method: 'POST',
      headers: { authorization: `Bearer ${reader}`, 'content-type': 'application/json' },
      body: JSON.stringify({ call: 'ek' }),
    });
    assert.equal(r.status, 403);
  });

  it('without the credential: refused before the CA is asked', async () => {
    const r = await s.call('POST', '/v1/ca/nonce', { call: 'ek' });
    assert.equal(r.status, 401);
    const client = httpCaClient({ url: s.b.url, token: 'wrong' });
    await assert.rejects(client.nonce('ek'), (e: { code?: string }) => e.code === 'ERR_REFUSED');
    client.close();
  });

  it('a malformed body is a schema refusal (400), never a certificate', async () => {
    const r = await s.admin('POST', '/v1/ca/certify-ek', {
      nonce: 'AA==',
      report: '',
      manifest: '',
      format: 'x509',
    });
    assert.equal(r.status, 400);
    assert.equal((r.body as { reason: string }).reason, 'api.schema');
  });

  it('the chain (PEM) and the CRL (DER) for anyone; the OpenAPI document lists the routes', async () => {
    const chain = await fetch(`${s.b.url}/v1/ca/chain`);
    assert.equal(chain.status, 200);
    assert.match(await chain.text(), /^-----BEGIN CERTIFICATE-----/);
    const crl = await fetch(`${s.b.url}/v1/ca/crl`);
    assert.equal(crl.status, 200);
    assert.equal(crl.headers.get('content-type'), 'application/pkix-crl');
    const der = new Uint8Array(await crl.arrayBuffer());
    const parsed = new x509.X509Crl(Uint8Array.from(der).buffer);
    assert.ok(parsed.thisUpdate instanceof Date);
    const api = (await s.call('GET', '/v1/openapi.json')).body as { paths: Record<string, unknown> };
    for (const p of [
      '/v1/ca/nonce',
      '/v1/ca/certify-ek',
      '/v1/ca/certify-ak',
      '/v1/ca/crl',
      '/v1/ca/chain',
    ]) {
      assert.ok(api.paths[p], p);
    }
  });

  it('a caller over its rate is turned away with 429 and Retry-After', async () => {
    let last: { status: number; headers?: Headers } | undefined;
    for (let i = 0; i < 60; i++) {
      last = await s.call(
        'POST',
        '/v1/ca/nonce',
        { call: 'ek' },
        { authorization: `Bearer ${s.b.adminToken}` },
      );
      if (last.status === 429) break;
    }
    assert.equal(last!.status, 429);
    assert.ok(Number(last!.headers!.get('retry-after')) >= 1);
  });
});

describe("the CA service on the broker's own PostgreSQL database", () => {
  let engine: Awaited<ReturnType<typeof postgresEngine>>;
  let s: BrokerStack;
  let caDir: string;

  before(async () => {
    engine = await postgresEngine();
    const url = (await engine.freshDatabase())!;
    const chain = await sharedSimChain('Milan');
    caDir = mkdtempSync(join(tmpdir(), 'vouchsafe-ca-pg-'));
    // One database for both: the CA's tables are a migration of the broker's schema (docs/ca.md).
    const repository = await openCaRepository(url);
    const ca = await PlatformCa.init({
      dir: caDir,
      repository,
      config: { snp: { trustedRoots: [{ product: 'Milan', sha256: chain.rootSha256 }], policy: {} } },
    });
    await ca.close();
    s = await startBrokerStack({ broker: { databaseUrl: url, ca: { dir: caDir, database: url } } });
  });
  after(async () => {
    await s?.close();
    await engine?.stop();
    if (caDir) rmSync(caDir, { recursive: true, force: true });
  });

  it('CERTIFY_EK through the HTTP relay; the certificate and its log entry are in PostgreSQL', async () => {
    assert.equal(s.b.store.engine, 'postgres');
    assert.equal(s.b.ca!.repository.engine, 'postgres');
    const identity = { project: 'pg', zone: 'z', instanceId: '5150', instanceName: 'pg-vm' };
    const res = await s.admin('POST', '/v1/admin/instances', { ...identity, policy: {} });
    assert.equal(res.status, 201);
    const client = httpCaClient({ url: s.b.url, token: s.b.adminToken });
    const relay = httpCertifyRelay(client, () => identity);
    const d = new PvDevice({ offer: offer(ALL), handlers: { [PvCall.CertifyEk]: certifyEkHandler(relay) } });
    const pv = new PvClient({ transport: transportTo('page', () => d), want: ALL });
    const ekc = await certifyEk(pv, {
      manifest: servicesManifest(softEk().pub),
      reports: simulatorReportProvider(s.firmware((res.body as { hostData: string }).hostData)),
    });
    client.close();
    assert.equal(readInstanceIdentity(parseCertificate(ekc.certificate))!.instanceName, 'pg-vm');
    const recs = await s.b.ca!.repository.listCertificates({ kind: 'ek', instanceId: '5150' });
    assert.equal(recs.length, 1);
    assert.ok((await s.b.ca!.verifyLog()).ok);
  });
});
