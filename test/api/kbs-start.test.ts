/**
 * The Trustee KBS as the product serves it: startBroker's default wiring (token keys in the store, the
 * broker URL as issuer, the sealing key, operator secrets from a directory, the rotation route), driven by
 * the independent KBS client of test/kbs (its own HTTP, canonical JSON and REPORT_DATA; jose for JWE/JWT).
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLocalJWKSet, createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { openFileKek } from '../../src/broker/kek.js';
import { KdsClient } from '../../src/collateral/kds-client.js';
import { AttestationError } from '../../src/errors.js';
import {
  APROXY_RESOURCE_PATH,
  PROBLEM_TYPE_BASE,
  saveTokenKeyFile,
  TOKEN_KEYS_AAD,
  TOKEN_KEYS_FORMAT,
} from '../../src/kbs/index.js';
import { TokenKeyRing } from '../../src/kbs/tokens/index.js';
import { createCrl, sharedSimChain } from '../../src/sim/snp/index.js';
import { type Json, type KbsBrokerStack, startKbsBroker } from '../kbs/broker-stack.js';
import { simKds } from '../kbs/harness.js';
import { type HttpResult, IndependentKbsClient, makeTeeKey } from '../kbs/independent-client.js';

const SEALING = 'vouchsafe/sealing-key/current';

function assertProblem(r: HttpResult, slug: string, status: number, reason?: string): void {
  assert.equal(r.status, status, JSON.stringify(r.json));
  assert.match(r.contentType, /^application\/problem\+json/);
  const p = r.json as { type: string; reason?: string };
  assert.equal(p.type, PROBLEM_TYPE_BASE + slug);
  if (reason !== undefined) assert.equal(p.reason, reason);
}

/** Registers an instance and runs a whole RCAR exchange for it (certificate table sent unless told). */
async function attestNew(
  s: KbsBrokerStack,
  o: { path?: string; binding?: 'aproxy'; withCerts?: boolean } = {},
) {
  const inst = await s.register();
  const fw = s.firmware(inst.hostData);
  const client = new IndependentKbsClient(s.b.url);
  const r = await client.run({
    kind: o.binding ? 'P-521' : 'P-256',
    evidence: (rd) => {
      const ev = fw.getReport(rd);
      return o.withCerts === false ? { report: ev.report } : ev;
    },
    path: o.path ?? SEALING,
    ...(o.binding ? { binding: o.binding } : {}),
  });
  return { inst, fw, client, ...r };
}

function writeSecret(dir: string, path: string, value: string, mode = 0o600): void {
  const file = join(dir, path);
  mkdirSync(join(file, '..'), { recursive: true, mode: 0o700 });
  writeFileSync(file, value, { mode });
  chmodSync(file, mode);
}

const rejectsReason = (p: Promise<unknown>, reason: string) =>
  assert.rejects(p, (e: unknown) => e instanceof AttestationError && e.reason === reason);

describe('KBS served by startBroker (default wiring, operator secrets from a directory)', () => {
  let s: KbsBrokerStack;
  let secrets: string;
  let policyFile: string;
  const policies: Record<string, unknown> = {
    'apps/db/password': { instances: 'any', projects: ['kbs'], measurements: 'any' },
    'apps/db/other-project': { instances: 'any', projects: ['someone-else'], measurements: 'any' },
  };
  const writePolicies = () => writeFileSync(policyFile, JSON.stringify(policies), { mode: 0o644 });

  before(async () => {
    // The secrets directory must exist before the broker starts; it lives beside the data directory.
    s = await startKbsBroker({ kbs: false });
    secrets = join(s.dir, 'secrets');
    mkdirSync(secrets, { mode: 0o700 });
    policyFile = join(secrets, 'resource-policy.json');
    writeSecret(secrets, 'apps/db/password', 'hunter2');
    writeSecret(secrets, 'apps/db/other-project', 'not yours');
    writeSecret(secrets, 'apps/db/no-policy', 'never served');
    writePolicies();
    await s.restart({ kbs: { secretsDir: secrets } });
  });
  after(async () => {
    await s?.close();
  });

  it('runs RCAR end to end; the token verifies with jose from /.well-known/jwks.json, issued by the broker URL', async () => {
    const { inst, token, secret, client } = await attestNew(s);
    assert.deepEqual(secret, await s.storedKey(inst.id));

    const { payload, protectedHeader } = await jwtVerify(
      token,
      createRemoteJWKSet(new URL(`${s.b.url}/.well-known/jwks.json`)),
      { issuer: s.b.url },
    );
    assert.equal(protectedHeader.alg, 'ES256');
    assert.equal(payload.iss, s.b.url);
    assert.equal(payload.eat_nonce, client.nonce);
    const cpu = (payload.submods as Json).cpu0;
    assert.equal(cpu['ear.status'], 'affirming');
    assert.equal(cpu['ear.vouchsafe.platform-identity'].brokerInstanceId, inst.id);
    assert.equal(cpu['ear.veraison.annotated-evidence'].snp.hostData, inst.hostData);
    assert.equal(cpu['ear.veraison.annotated-evidence'].snp.verification.rootTrust, 'configured');
    // Another issuer is refused by the relying party's own check.
    await assert.rejects(
      jwtVerify(token, createRemoteJWKSet(new URL(`${s.b.url}/.well-known/jwks.json`)), {
        issuer: 'https://someone.else',
      }),
    );

    // Both JWKS locations publish the same keys, with the JWK Set media type.
    const a = await fetch(`${s.b.url}/kbs/v0/.well-known/jwks`);
    const b = await fetch(`${s.b.url}/.well-known/jwks.json`);
    assert.match(a.headers.get('content-type') ?? '', /^application\/jwk-set\+json/);
    assert.match(b.headers.get('content-type') ?? '', /^application\/jwk-set\+json/);
    assert.deepEqual(await a.json(), await b.json());

    // The release was the broker's decision, audited like any other.
    const audit = await s.admin('GET', '/v1/admin/audit?limit=1000');
    assert.ok(
      audit.body.entries.some(
        (e: Json) => e.kind === 'release' && e.decision === 'accept' && e.instance === inst.id,
      ),
    );
  });

  it("serves the sealing key at vouchsafe/sealing-key/current only, not at aproxy's path unless asked", async () => {
    const { client } = await attestNew(s);
    assertProblem(await client.resource(APROXY_RESOURCE_PATH), 'resource-not-found', 404);
  });

  it('serves operator secrets as the policy file allows; edits apply without a restart', async () => {
    const { client, key } = await attestNew(s);
    const ok = await client.resource('apps/db/password');
    assert.equal(ok.status, 200, JSON.stringify(ok.json));
    assert.equal(Buffer.from(await IndependentKbsClient.open(ok.json, key)).toString(), 'hunter2');

    const denied = await client.resource('apps/db/other-project');
    assertProblem(denied, 'resource-forbidden', 403);
    assert.deepEqual((denied.json as Json).failures, ['kbs.resource.project']);
    // A file the policy file does not name is never served.
    assertProblem(await client.resource('apps/db/no-policy'), 'resource-not-found', 404);

    // Publish a new secret: its file, then its policy. The same attested session reads it at once.
    writeSecret(secrets, 'apps/tls/key', 'new secret');
    assertProblem(await client.resource('apps/tls/key'), 'resource-not-found', 404);
    policies['apps/tls/key'] = { instances: 'any', projects: 'any', measurements: 'any' };
    writePolicies();
    const fresh = await client.resource('apps/tls/key');
    assert.equal(fresh.status, 200, JSON.stringify(fresh.json));
    assert.equal(Buffer.from(await IndependentKbsClient.open(fresh.json, key)).toString(), 'new secret');

    // A broken edit fails closed (no operator secret is served) until it is fixed.
    writeFileSync(policyFile, '{"apps/db/password": ', { mode: 0o644 });
    assertProblem(await client.resource('apps/db/password'), 'internal', 500, 'kbs.secrets.policy_file');
    writePolicies();
    assert.equal((await client.resource('apps/db/password')).status, 200);
  });

  it('refuses to serve a secret file that others can read', async () => {
    const { client } = await attestNew(s);
    writeSecret(secrets, 'apps/loose/file', 'x', 0o644);
    policies['apps/loose/file'] = { instances: 'any', projects: 'any', measurements: 'any' };
    writePolicies();
    assertProblem(await client.resource('apps/loose/file'), 'internal', 500, 'kbs.secrets.file.permissions');
  });

  it("never serves a file reached through a linked directory (the broker's KEK)", async () => {
    const { client } = await attestNew(s);
    mkdirSync(join(secrets, 'leak'), { mode: 0o700 });
    symlinkSync(s.b.dataDir, join(secrets, 'leak', 'data'));
    policies['leak/data/kek'] = { instances: 'any', projects: 'any', measurements: 'any' };
    writePolicies();
    try {
      const r = await client.resource('leak/data/kek');
      assertProblem(r, 'internal', 500, 'kbs.secrets.file.symlink');
    } finally {
      delete policies['leak/data/kek'];
      writePolicies();
    }
  });

  it('refuses to start with an unusable secrets configuration', async () => {
    const bad = join(s.dir, 'bad-policy.json');
    const attempt = async (content: string, mode = 0o644) => {
      writeFileSync(bad, content, { mode });
      chmodSync(bad, mode);
      const other = await startKbsBroker({ kbs: { secretsDir: secrets, resourcePolicyPath: bad } }).catch(
        (e: unknown) => e,
      );
      if (!(other instanceof Error)) await (other as KbsBrokerStack).close();
      return other;
    };
    const reasonOf = (e: unknown) => (e instanceof AttestationError ? e.reason : String(e));
    assert.equal(reasonOf(await attempt('[1]')), 'kbs.secrets.policy_file');
    assert.equal(reasonOf(await attempt('{"a/b": {}}')), 'kbs.secrets.policy_file');
    assert.equal(reasonOf(await attempt('{"a/b/c": {"projects": "any"}}')), 'kbs.secrets.policy_file');
    // The broker serves the sealing-key paths itself: an operator secret may not shadow them.
    const shadow = JSON.stringify({ [SEALING]: { instances: 'any', projects: 'any', measurements: 'any' } });
    assert.equal(reasonOf(await attempt(shadow)), 'kbs.secrets.policy_file');
    // Anyone who can edit the policy file decides who gets the secrets.
    assert.equal(reasonOf(await attempt('{}', 0o666)), 'kbs.secrets.policy_file');
    await rejectsReason(startKbsBroker({ kbs: { secretsDir: join(s.dir, 'nowhere') } }), 'kbs.secrets.dir');
    // A secrets directory others can write to is refused at start, with its own reason.
    const loose = join(s.dir, 'loose-secrets');
    mkdirSync(loose, { mode: 0o700 });
    writeFileSync(join(loose, 'resource-policy.json'), '{}', { mode: 0o644 });
    chmodSync(loose, 0o777);
    await rejectsReason(startKbsBroker({ kbs: { secretsDir: loose } }), 'kbs.secrets.dir.permissions');
  });
});

describe('KBS token keys: in the store under the KEK, rotated by the admin route', () => {
  let s: KbsBrokerStack;
  before(async () => {
    s = await startKbsBroker();
  });
  after(async () => {
    await s?.close();
  });

  /** The stored ring, decrypted with the KEK file (what any replica sharing the KEK reads). */
  async function storedRing() {
    const row = await s.b.store.kbsState().readTokenKeys();
    assert.ok(row, 'the store holds the token keys');
    const kek = openFileKek(join(s.b.dataDir, 'kek'));
    return { row, ring: JSON.parse(Buffer.from(await kek.decrypt(row.wrapped, TOKEN_KEYS_AAD)).toString()) };
  }

  it('keeps them in the store, encrypted (no key file, no PEM in the row), the same across a restart', async () => {
    assert.equal(existsSync(join(s.b.dataDir, 'token-keys.json')), false);
    const { row, ring } = await storedRing();
    assert.equal(row.generation, 1);
    assert.equal(Buffer.from(row.wrapped).includes('PRIVATE KEY'), false);
    assert.equal(ring.format, TOKEN_KEYS_FORMAT);
    assert.equal(ring.keys.length, 1);
    assert.equal(ring.keys[0].retiredAt, null);

    const { token } = await attestNew(s);
    const before = (await (await fetch(`${s.b.url}/.well-known/jwks.json`)).json()) as { keys: Json[] };
    await s.restart();
    const after = (await (await fetch(`${s.b.url}/.well-known/jwks.json`)).json()) as { keys: Json[] };
    assert.deepEqual(after, before);
    // A token issued before the restart still verifies (the issuer is the broker URL, which moved ports).
    const { payload } = await jwtVerify(token, createLocalJWKSet(after));
    assert.equal(typeof payload.jti, 'string');
  });

  it('rotates through POST /v1/admin/token-keys/rotate (admin token required); old tokens stay verifiable', async () => {
    const { token: oldToken } = await attestNew(s);
    const oldKid = decodeProtectedHeader(oldToken).kid;
    const generation = (await storedRing()).row.generation;

    const refused = await fetch(`${s.b.url}/v1/admin/token-keys/rotate`, { method: 'POST' });
    assert.equal(refused.status, 401);
    assert.equal(((await refused.json()) as Json).reason, 'api.admin.unauthorized');
    const wrong = await fetch(`${s.b.url}/v1/admin/token-keys/rotate`, {
      method: 'POST',
      headers: { authorization: `Bearer ${'0'.repeat(64)}` },
    });
    assert.equal(wrong.status, 401);

    const r = await s.admin('POST', '/v1/admin/token-keys/rotate');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.alg, 'ES256');
    assert.notEqual(r.body.kid, oldKid);
    assert.deepEqual(r.body.published, [r.body.kid, oldKid]);

    const jwks = createRemoteJWKSet(new URL(`${s.b.url}/kbs/v0/.well-known/jwks`));
    await jwtVerify(oldToken, jwks, { issuer: s.b.url });
    const { token: newToken } = await attestNew(s);
    assert.equal(decodeProtectedHeader(newToken).kid, r.body.kid);
    await jwtVerify(newToken, jwks, { issuer: s.b.url });

    // The store holds both, the new one signing, one generation on; a restart publishes the same two keys.
    const { row, ring } = await storedRing();
    assert.equal(row.generation, generation + 1);
    assert.deepEqual(
      ring.keys.map((k: Json) => k.retiredAt === null),
      [false, true],
    );
    await s.restart();
    const kids = ((await (await fetch(`${s.b.url}/.well-known/jwks.json`)).json()) as Json).keys.map(
      (k: Json) => k.kid,
    );
    assert.deepEqual(kids, [r.body.kid, oldKid]);
  });
});

describe('KBS token keys: a key file from before migration 7 is imported once', () => {
  it("imports the file's keys on the first start that finds none in the store, and ignores it after", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vouchsafe-token-import-'));
    const path = join(dir, 'token-keys.json');
    const ring = await TokenKeyRing.generate({ maxTokenLifetimeMs: 300_000 });
    saveTokenKeyFile(path, ring);
    const s = await startKbsBroker({ kbs: { tokenKeysPath: path } });
    try {
      const kids = async () =>
        ((await (await fetch(`${s.b.url}/.well-known/jwks.json`)).json()) as Json).keys.map(
          (k: Json) => k.kid,
        );
      assert.deepEqual(await kids(), [ring.current.kid]);
      const { token } = await attestNew(s);
      assert.equal(decodeProtectedHeader(token).kid, ring.current.kid);
      // Once the store holds keys the file is not read again: a rotation there is what counts.
      const r = await s.admin('POST', '/v1/admin/token-keys/rotate');
      await s.restart();
      assert.deepEqual(await kids(), [r.body.kid, ring.current.kid]);
    } finally {
      await s.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses to import a token key file that others can read', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vouchsafe-token-import-'));
    const path = join(dir, 'token-keys.json');
    saveTokenKeyFile(path, await TokenKeyRing.generate({ maxTokenLifetimeMs: 300_000 }));
    chmodSync(path, 0o640);
    try {
      await rejectsReason(startKbsBroker({ kbs: { tokenKeysPath: path } }), 'kbs.token_keys.permissions');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('KBS options of startBroker', () => {
  it('kbs: false serves neither the KBS, nor its JWKS, nor the rotation route, and creates no key file', async () => {
    const s = await startKbsBroker({ kbs: false });
    try {
      assert.equal(s.b.kbs, undefined);
      const auth = await fetch(`${s.b.url}/kbs/v0/auth`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ version: '0.4.0', tee: 'snp', 'extra-params': '' }),
      });
      assert.equal(auth.status, 404);
      assert.equal((await fetch(`${s.b.url}/.well-known/jwks.json`)).status, 404);
      assert.equal((await s.admin('POST', '/v1/admin/token-keys/rotate')).status, 404);
      assert.equal(existsSync(join(s.b.dataDir, 'token-keys.json')), false);
    } finally {
      await s.close();
    }
  });

  it('aproxyResourcePath serves an unmodified aproxy: its binding, P-521, at default/sample/test; issuer from the options', async () => {
    const s = await startKbsBroker({ kbs: { aproxyResourcePath: true, issuer: 'https://kbs.example' } });
    try {
      const { inst, secret, token } = await attestNew(s, { path: APROXY_RESOURCE_PATH, binding: 'aproxy' });
      assert.deepEqual(secret, await s.storedKey(inst.id));
      const { payload } = await jwtVerify(
        token,
        createRemoteJWKSet(new URL(`${s.b.url}/.well-known/jwks.json`)),
        { issuer: 'https://kbs.example' },
      );
      assert.equal(
        (payload.submods as Json).cpu0['ear.veraison.annotated-evidence'].binding,
        'aproxy-sha512',
      );
    } finally {
      await s.close();
    }
  });

  it('fills in the certificates a report lacks from KDS (as for a real SVSM), in the KBS path too', async () => {
    const served: string[] = [];
    const s = await startKbsBroker({ kds: simKds(await sharedSimChain('Milan'), served) });
    try {
      const { inst, secret } = await attestNew(s, { withCerts: false });
      assert.deepEqual(secret, await s.storedKey(inst.id));
      assert.ok(served.includes('/vcek/v1/Milan/cert_chain'), served.join(','));
      assert.ok(served.some((p) => /^\/vcek\/v1\/Milan\/[0-9a-f]{128}$/.test(p)));
    } finally {
      await s.close();
    }
  });

  it("with crl: 'kds', the KBS checks the chain's CRL too (one verifier): a revoked ASK is evidence-invalid", async () => {
    const chain = await sharedSimChain('Milan');
    const askSerial = BigInt(`0x${new X509Certificate(Buffer.from(chain.ask.der)).serialNumber}`);
    for (const revoked of [[], [askSerial]]) {
      const crl = await createCrl(chain, { revokedSerials: revoked });
      const fetchKds: typeof fetch = async (input) =>
        new URL(String(input)).pathname === '/vcek/v1/Milan/crl'
          ? new Response(Buffer.from(crl))
          : new Response('', { status: 404 });
      const s = await startKbsBroker({
        kds: new KdsClient({ fetch: fetchKds, minIntervalMs: 0 }),
        crl: 'kds',
      });
      try {
        const inst = await s.register();
        const fw = s.firmware(inst.hostData);
        const client = new IndependentKbsClient(s.b.url);
        await client.auth();
        const body = await client.attestation({
          key: await makeTeeKey('P-256'),
          evidence: (rd) => fw.getReport(rd),
        });
        const r = await client.attest(body);
        if (revoked.length === 0) assert.equal(r.status, 200, JSON.stringify(r.json));
        else assertProblem(r, 'evidence-invalid', 401, 'snp.intermediate_revoked');
      } finally {
        await s.close();
      }
    }
  });

  it('without KDS, a report without certificates is collateral-unavailable, with the native API reason', async () => {
    const s = await startKbsBroker();
    try {
      const inst = await s.register();
      const fw = s.firmware(inst.hostData);
      const client = new IndependentKbsClient(s.b.url);
      await client.auth();
      const body = await client.attestation({
        key: await makeTeeKey('P-256'),
        evidence: (rd) => fw.getReport(rd),
        withCerts: false,
      });
      assertProblem(await client.attest(body), 'collateral-unavailable', 503, 'api.collateral.certs_missing');
    } finally {
      await s.close();
    }
  });
});
