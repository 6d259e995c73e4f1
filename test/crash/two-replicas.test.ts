/**
 * Two broker replicas on one PostgreSQL (issue 14 "Many replicas"; docs/broker.md "Running several
 * replicas"): two real broker processes (test/crash/broker-process.ts: startBroker), each with a data
 * directory of its own holding only copies of the shared files (the KEK, the response-signing key, the admin
 * token), and one KBS issuer, as behind a load balancer. A client alternates between them through the
 * whole Trustee RCAR exchange (auth on A, attest on B, resource on A) and the native release (challenge on
 * A, attest on B); a token-key rotation on one is used by the other; and A is SIGKILLed in the middle of
 * both exchanges, which B completes. Every wait is on an event: a listening line, a process exit, a reply.
 */
import assert from 'node:assert/strict';
import type { KeyObject } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { openFileKek } from '../../src/broker/kek.js';
import { openSealingKey } from '../../src/broker/sealing-key.js';
import { computeReportData } from '../../src/formats/aproxy/report-data.js';
import { parseSecretPayload } from '../../src/formats/aproxy/secret-payload.js';
import type { NegotiationParam } from '../../src/formats/aproxy/types.js';
import { generateP521KeyPair, p521PointOf } from '../../src/native/p521.js';
import { type SimChain, type SimSnpFirmware, sharedSimChain } from '../../src/sim/snp/index.js';
import { verifyAuditChain } from '../../src/store/audit-verify.js';
import { openStore } from '../../src/store/open.js';
import type { Store } from '../../src/store/types.js';
import { openAttestReply } from '../helpers/attest-reply.js';
import { GOOD_POLICY, type Json, simFirmware } from '../helpers/broker.js';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';
import { IndependentKbsClient, makeTeeKey } from '../kbs/independent-client.js';
import { type BrokerProcess, spawnBroker } from './spawn-broker.js';

const SEALING = 'vouchsafe/sealing-key/current';
const ISSUER = 'https://kbs.replicas.test';
/** What every replica needs besides the database: the same KEK, response-signing key and admin token. */
const SHARED_FILES = ['kek', 'broker-signing-key.pem', 'broker-signing-key.pem.pub', 'admin-token'];

const b64 = (x: Uint8Array) => Buffer.from(x).toString('base64');
const unb64 = (s: string) => new Uint8Array(Buffer.from(s, 'base64'));

async function call(base: string, method: string, path: string, body?: unknown, token?: string) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: {
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  let json: Json;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, body: json };
}

describe('two broker replicas on one PostgreSQL', () => {
  let pg: TestPostgres;
  let chain: SimChain;
  let dir: string;
  let databaseUrl: string;
  let a: BrokerProcess;
  let b: BrokerProcess;
  let store: Store;

  before(async () => {
    chain = await sharedSimChain('Milan');
    pg = await startTestPostgres();
    databaseUrl = await pg.createDatabase();
    dir = mkdtempSync(join(tmpdir(), 'vouchsafe-replicas-'));
    const common = { rootSha256: chain.rootSha256, databaseUrl, kbsIssuer: ISSUER };
    a = await spawnBroker({ ...common, dataDir: join(dir, 'a') });
    // B's data directory holds copies of A's shared files and nothing else: the rest is in the database.
    mkdirSync(join(dir, 'b'), { mode: 0o700 });
    for (const f of SHARED_FILES) copyFileSync(join(dir, 'a', f), join(dir, 'b', f));
    b = await spawnBroker({ ...common, dataDir: join(dir, 'b') });
    store = await openStore(databaseUrl);
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
    await store?.close();
    await pg?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function register(via: BrokerProcess): Promise<{ id: string; fw: SimSnpFirmware }> {
    const r = await call(
      via.url,
      'POST',
      '/v1/admin/instances',
      {
        project: 'replicas',
        zone: 'zone-a',
        instanceId: `vm-${Math.random().toString(36).slice(2)}`,
        instanceName: 'replicated',
        policy: GOOD_POLICY,
      },
      via.adminToken,
    );
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return { id: r.body.id, fw: simFirmware(chain, r.body.hostData) };
  }

  /** The instance's sealing key as stored (test-only: the KEK file every replica shares). */
  async function storedKey(instanceId: string): Promise<Uint8Array> {
    const recs = await store.listKeys(instanceId);
    assert.equal(recs.length, 1, 'one key per instance, whichever replica released it');
    return openSealingKey(openFileKek(join(dir, 'a', 'kek')), recs[0]!);
  }

  /** A native 0.2.0 attestation body on a challenge from `first`, and how to open the reply. */
  async function nativeRelease(fw: SimSnpFirmware, first: BrokerProcess) {
    const c = await call(first.url, 'POST', '/v1/challenge', { tee: 'snp', version: '0.2.0' });
    assert.equal(c.status, 200, JSON.stringify(c.body));
    const keys = await generateP521KeyPair();
    const point = p521PointOf(keys.publicKey);
    const rd = computeReportData(c.body.params as NegotiationParam[], {
      challenge: unb64(c.body.challenge),
      key: point,
      stateCounter: null,
      stateDigest: null,
    });
    const ev = fw.getReport(rd);
    const body = {
      tee: 'snp',
      version: '0.2.0',
      report: b64(ev.report),
      certTable: b64(ev.certTable),
      challenge: c.body.challenge,
      key: { x: b64(point.x), y: b64(point.y) },
      stateCounter: null,
      stateDigest: null,
    };
    return { body, open: (r: Json) => openNative(keys.privateKey, r) };
  }

  function openNative(privateKey: KeyObject, r: Json): Uint8Array {
    return parseSecretPayload(openAttestReply(privateKey, r)).secret;
  }

  it("RCAR: auth on A, attest on B, resource on A (cookie) and on B (bearer); B's token verifies with A's JWKS", async () => {
    const { id, fw } = await register(a);
    const onA = new IndependentKbsClient(a.url);
    assert.equal((await onA.auth()).status, 200);
    const key = await makeTeeKey('P-384');
    const body = await onA.attestation({ key, evidence: (rd) => fw.getReport(rd) });
    // The same session cookie, presented to the other replica.
    const onB = new IndependentKbsClient(b.url);
    onB.session = onA.session;
    const att = await onB.attest(body);
    assert.equal(att.status, 200, JSON.stringify(att.json));
    const token = (att.json as { token: string }).token;

    const res = await onA.resource(SEALING);
    assert.equal(res.status, 200, JSON.stringify(res.json));
    assert.deepEqual(await IndependentKbsClient.open(res.json, key), await storedKey(id));
    const bearer = await onB.resource(SEALING, { cookie: null, bearer: token });
    assert.equal(bearer.status, 200, JSON.stringify(bearer.json));
    assert.deepEqual(await IndependentKbsClient.open(bearer.json, key), await storedKey(id));

    const jwksA = (await call(a.url, 'GET', '/.well-known/jwks.json')).body;
    await jwtVerify(token, createLocalJWKSet(jwksA), { issuer: ISSUER });
    // Attesting the attested session again on A returns the session's token (Trustee's behaviour).
    const again = await onA.attest(body);
    assert.equal(again.status, 200);
    assert.equal((again.json as { token: string }).token, token);
  });

  it('native release: challenge on A, attest on B (the challenge is single-use across replicas)', async () => {
    const { id, fw } = await register(a);
    const r = await nativeRelease(fw, a);
    const res = await call(b.url, 'POST', '/v1/attest', r.body);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(r.open(res.body), await storedKey(id));
    // The same attestation again, on A this time: the challenge was consumed on B.
    const replay = await call(a.url, 'POST', '/v1/attest', r.body);
    assert.equal(replay.status, 403, JSON.stringify(replay.body));
    assert.equal(replay.body.reason, 'broker.challenge_unknown');
  });

  it('a token key rotated on B signs on A and is published by A', async () => {
    const rotated = await call(b.url, 'POST', '/v1/admin/token-keys/rotate', undefined, b.adminToken);
    assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
    const jwksA = (await call(a.url, 'GET', '/kbs/v0/.well-known/jwks')).body;
    assert.equal(jwksA.keys[0].kid, rotated.body.kid);
    const { fw } = await register(b);
    const onA = new IndependentKbsClient(a.url);
    const { token } = await onA.run({ kind: 'P-256', evidence: (rd) => fw.getReport(rd), path: SEALING });
    assert.equal(decodeProtectedHeader(token).kid, rotated.body.kid);
  });

  it('a token signed by a key rotated on A is accepted by B before B has looked (it syncs on the unknown kid)', async () => {
    const rotated = await call(a.url, 'POST', '/v1/admin/token-keys/rotate', undefined, a.adminToken);
    assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
    const { id, fw } = await register(a);
    const onA = new IndependentKbsClient(a.url);
    assert.equal((await onA.auth()).status, 200);
    const key = await makeTeeKey('P-256');
    const att = await onA.attest(await onA.attestation({ key, evidence: (rd) => fw.getReport(rd) }));
    assert.equal(att.status, 200, JSON.stringify(att.json));
    const token = (att.json as { token: string }).token;
    assert.equal(decodeProtectedHeader(token).kid, rotated.body.kid);
    // B's first request since the rotation: the token names a key B does not hold yet.
    const res = await new IndependentKbsClient(b.url).resource(SEALING, { cookie: null, bearer: token });
    assert.equal(res.status, 200, JSON.stringify(res.json));
    assert.deepEqual(await IndependentKbsClient.open(res.json, key), await storedKey(id));
  });

  it('A is killed (SIGKILL) in the middle of an RCAR exchange and of a native release; B completes both', async () => {
    const kbsVm = await register(a);
    const nativeVm = await register(a);
    const onA = new IndependentKbsClient(a.url);
    assert.equal((await onA.auth()).status, 200);
    const native = await nativeRelease(nativeVm.fw, a);

    await a.kill();
    const exit = await a.exited;
    assert.equal(exit.signal, 'SIGKILL');

    const onB = new IndependentKbsClient(b.url);
    onB.session = onA.session;
    const key = await makeTeeKey('P-256');
    const att = await onB.attest(await onA.attestation({ key, evidence: (rd) => kbsVm.fw.getReport(rd) }));
    assert.equal(att.status, 200, JSON.stringify(att.json));
    const res = await onB.resource(SEALING);
    assert.equal(res.status, 200, JSON.stringify(res.json));
    assert.deepEqual(await IndependentKbsClient.open(res.json, key), await storedKey(kbsVm.id));

    const rel = await call(b.url, 'POST', '/v1/attest', native.body);
    assert.equal(rel.status, 200, JSON.stringify(rel.body));
    assert.deepEqual(native.open(rel.body), await storedKey(nativeVm.id));

    // One audit chain, written by both replicas, intact after the kill.
    const v = await verifyAuditChain(store);
    assert.equal(v.ok, true, JSON.stringify(v));
  });
});
