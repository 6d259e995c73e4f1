import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { PROBLEM_TYPE_BASE } from '../../src/kbs/index.js';
import { toHex } from '../../src/util/bytes.js';
import { type KbsTestEnv, MEASUREMENT, startKbs } from './harness.js';
import { type HttpResult, IndependentKbsClient, makeTeeKey } from './independent-client.js';

let env: KbsTestEnv;

before(async () => {
  env = await startKbs();
});
after(async () => {
  await env?.close();
});

/** Asserts an RFC 7807 refusal of the given type, status and reason. */
function assertProblem(r: HttpResult, slug: string, status: number, reason?: string): void {
  assert.equal(r.status, status, JSON.stringify(r.json));
  assert.match(r.contentType, /^application\/problem\+json/);
  const p = r.json as { type: string; status: number; title: string; detail: string; reason?: string };
  assert.equal(p.type, PROBLEM_TYPE_BASE + slug);
  assert.equal(p.status, status);
  assert.equal(typeof p.title, 'string');
  assert.equal(typeof p.detail, 'string');
  if (reason !== undefined) assert.equal(p.reason, reason);
}

const sealingPath = 'vouchsafe/sealing-key/current';

describe('RCAR with an independent client against the live server', () => {
  it('auth -> attest -> resource releases the instance sealing key (EC P-384, cookie session)', async () => {
    const { instance, firmware } = await env.launch();
    const client = new IndependentKbsClient(env.base);

    const auth = await client.auth();
    assert.equal(auth.status, 200);
    const challenge = auth.json as { nonce: string; 'extra-params': unknown };
    assert.deepEqual(Object.keys(challenge).sort(), ['extra-params', 'nonce']);
    assert.equal(Buffer.from(challenge.nonce, 'base64').length, 32);
    assert.equal(challenge['extra-params'], '');
    assert.match(auth.setCookie[0] ?? '', /^kbs-session-id=[0-9a-f]{64}; Expires=[^;]+ GMT; HttpOnly$/);

    const key = await makeTeeKey('P-384');
    const body = await client.attestation({ key, evidence: (rd) => firmware.getReport(rd) });
    const att = await client.attest(body);
    assert.equal(att.status, 200, JSON.stringify(att.json));
    assert.deepEqual(Object.keys(att.json as object), ['token']);
    const token = (att.json as { token: string }).token;
    const res = await client.resource(sealingPath);
    assert.equal(res.status, 200, JSON.stringify(res.json));
    const secret = await IndependentKbsClient.open(res.json, key);
    assert.equal(secret.length, 32);
    assert.deepEqual(secret, await env.sealingKey(instance.id));
    assert.equal(token.split('.').length, 3);
  });

  it('the token verifies with jose from the published JWKS alone, and is an EAR with identity and claims', async () => {
    const { instance, firmware } = await env.launch();
    const client = new IndependentKbsClient(env.base);
    const { token, key } = await client.run({
      kind: 'P-256',
      evidence: (rd) => firmware.getReport(rd),
      path: sealingPath,
    });

    const jwks = createRemoteJWKSet(new URL(`${env.base}/kbs/v0/.well-known/jwks`));
    const { payload, protectedHeader } = await jwtVerify(token, jwks, {
      issuer: 'https://kbs.test.vouchsafe',
    });
    assert.equal(protectedHeader.alg, 'ES256');
    assert.equal(payload.eat_profile, 'tag:github.com,2023:veraison/ear');
    assert.equal(payload.eat_nonce, client.nonce);
    assert.ok((payload.exp as number) - (payload.iat as number) === 300);
    const cpu = (payload.submods as Record<string, Record<string, unknown>>).cpu0!;
    assert.equal(cpu['ear.status'], 'affirming');
    assert.deepEqual(cpu['ear.trustworthiness-vector'], {
      'instance-identity': 2,
      configuration: 2,
      executables: 3,
      hardware: 2,
      'runtime-opaque': 2,
    });
    assert.equal(cpu['ear.appraisal-policy-id'], `vouchsafe:instance-policy/${instance.id}`);
    assert.deepEqual(cpu['ear.vouchsafe.platform-identity'], {
      brokerInstanceId: instance.id,
      project: instance.project,
      zone: instance.zone,
      instanceId: instance.instanceId,
      instanceName: instance.instanceName,
      source: 'registry',
    });
    const ev = cpu['ear.veraison.annotated-evidence'] as {
      binding: string;
      snp: { measurement: string; hostData: string; verification: { rootTrust: string } };
      runtime_data_claims: { nonce: string; 'tee-pubkey': unknown };
    };
    assert.equal(ev.binding, 'trustee-jcs-sha384');
    assert.equal(ev.snp.measurement, toHex(MEASUREMENT));
    assert.equal(ev.snp.hostData, toHex(instance.hostData));
    assert.equal(ev.snp.verification.rootTrust, 'configured');
    assert.deepEqual(ev.runtime_data_claims['tee-pubkey'], key.jwk);
    assert.equal(ev.runtime_data_claims.nonce, client.nonce);
  });

  for (const kind of ['P-521', 'RSA'] as const) {
    it(`wraps the resource to a ${kind} tee-pubkey (${kind === 'RSA' ? 'RSA-OAEP-256' : 'ECDH-ES+A256KW'})`, async () => {
      const { instance, firmware } = await env.launch();
      const client = new IndependentKbsClient(env.base);
      const { secret, token } = await client.run({
        kind,
        evidence: (rd) => firmware.getReport(rd),
        path: sealingPath,
      });
      assert.deepEqual(secret, await env.sealingKey(instance.id));
      // The same key again with the token as Bearer and no cookie (Trustee's token authentication).
      const r = await client.resource(sealingPath, { cookie: null, bearer: token });
      assert.equal(r.status, 200);
      const prot = JSON.parse(
        Buffer.from((r.json as { protected: string }).protected, 'base64url').toString(),
      );
      assert.equal(prot.alg, kind === 'RSA' ? 'RSA-OAEP-256' : 'ECDH-ES+A256KW');
      assert.equal(prot.enc, 'A256GCM');
    });
  }

  it('accepts the COCONUT aproxy binding SHA-512(x || y || nonce) and says so in the token', async () => {
    const { instance, firmware } = await env.launch();
    const client = new IndependentKbsClient(env.base);
    const { secret, token } = await client.run({
      kind: 'P-521',
      binding: 'aproxy',
      evidence: (rd) => firmware.getReport(rd),
      path: 'default/sample/test',
    });
    assert.deepEqual(secret, await env.sealingKey(instance.id));
    const cpu = env.tokens.verify(token).submods.cpu0;
    assert.equal(cpu?.['ear.veraison.annotated-evidence']?.binding, 'aproxy-sha512');
  });

  it('accepts the attestation_report/cert_chain spelling of the SNP evidence', async () => {
    const { firmware } = await env.launch();
    const client = new IndependentKbsClient(env.base);
    await client.auth();
    const key = await makeTeeKey('P-256');
    const body = await client.attestation({
      key,
      evidence: (rd) => firmware.getReport(rd),
      spelling: 'attestation_report',
    });
    const r = await client.attest(body);
    assert.equal(r.status, 200, JSON.stringify(r.json));
  });

  it('serves an operator secret its resource policy allows', async () => {
    const value = new Uint8Array(Buffer.from('database password'));
    env.secrets.put('ops/db/password', value, {
      instances: 'any',
      projects: ['proj-ops'],
      measurements: 'any',
    });
    const { firmware } = await env.launch({ project: 'proj-ops' });
    const client = new IndependentKbsClient(env.base);
    const { secret } = await client.run({
      kind: 'P-384',
      evidence: (rd) => firmware.getReport(rd),
      path: 'ops/db/password',
    });
    assert.equal(Buffer.from(secret).toString(), 'database password');
  });

  it('returns the session token again on a second /attest of an attested session (as Trustee does)', async () => {
    const { firmware } = await env.launch();
    const client = new IndependentKbsClient(env.base);
    await client.auth();
    const key = await makeTeeKey('P-256');
    const body = await client.attestation({ key, evidence: (rd) => firmware.getReport(rd) });
    const first = await client.attest(body);
    const second = await client.attest(body);
    assert.equal(first.status, 200);
    assert.deepEqual(second.json, first.json);
  });

  it('keeps old tokens verifiable from the JWKS after a key rotation; new tokens use the new key', async () => {
    const a = await env.launch();
    const c1 = new IndependentKbsClient(env.base);
    const t1 = (
      await c1.run({ kind: 'P-256', evidence: (rd) => a.firmware.getReport(rd), path: sealingPath })
    ).token;
    const oldKid = decodeProtectedHeader(t1).kid;
    await env.keys.rotate('ES384');
    const b = await env.launch();
    const c2 = new IndependentKbsClient(env.base);
    const t2 = (
      await c2.run({ kind: 'P-256', evidence: (rd) => b.firmware.getReport(rd), path: sealingPath })
    ).token;
    const h2 = decodeProtectedHeader(t2);
    assert.notEqual(h2.kid, oldKid);
    assert.equal(h2.alg, 'ES384');
    const jwks = createRemoteJWKSet(new URL(`${env.base}/kbs/v0/.well-known/jwks`));
    await jwtVerify(t1, jwks);
    await jwtVerify(t2, jwks);
    // The old token still reads resources (its key is still published).
    assert.equal((await c1.resource(sealingPath, { cookie: null, bearer: t1 })).status, 200);
  });
});

describe('RCAR refusals (RFC 7807 problem documents)', () => {
  it('missing cookie on /attest -> session-missing', async () => {
    const { firmware } = await env.launch();
    const client = new IndependentKbsClient(env.base);
    await client.auth();
    const body = await client.attestation({
      key: await makeTeeKey('P-256'),
      evidence: (rd) => firmware.getReport(rd),
    });
    assertProblem(await client.attest(body, { cookie: null }), 'session-missing', 401, 'kbs.session.missing');
  });

  it('unknown cookie -> session-unknown', async () => {
    const client = new IndependentKbsClient(env.base);
    await client.auth();
    const r = await client.attest({}, { cookie: 'ab'.repeat(32) });
    assertProblem(r, 'session-unknown', 401, 'kbs.session.unknown');
    assertProblem(await client.attest({}, { cookie: 'not-even-hex' }), 'session-unknown', 401);
  });

  it('expired session -> session-expired', async () => {
    const { firmware } = await env.launch();
    const client = new IndependentKbsClient(env.base);
    await client.auth();
    const body = await client.attestation({
      key: await makeTeeKey('P-256'),
      evidence: (rd) => firmware.getReport(rd),
    });
    env.advanceSessions(5 * 60_000 + 1);
    try {
      assertProblem(await client.attest(body), 'session-expired', 401, 'kbs.session.expired');
    } finally {
      env.advanceSessions(-(5 * 60_000 + 1));
    }
  });

  it('nonce that is not the session nonce -> nonce-mismatch', async () => {
    const { firmware } = await env.launch();
    const client = new IndependentKbsClient(env.base);
    await client.auth();
    const other = Buffer.alloc(32, 7).toString('base64');
    const body = await client.attestation({
      key: await makeTeeKey('P-256'),
      evidence: (rd) => firmware.getReport(rd),
      nonce: other,
    });
    assertProblem(await client.attest(body), 'nonce-mismatch', 401, 'kbs.nonce');
  });

  it('runtime data not matching REPORT_DATA -> report-data-mismatch (decided by the broker; names no instance, so counted, not audited)', async () => {
    const { instance, firmware } = await env.launch();
    const client = new IndependentKbsClient(env.base);
    await client.auth();
    const sent = await makeTeeKey('P-256');
    const bound = await makeTeeKey('P-256'); // the report commits to another key than the one sent
    const body = await client.attestation({
      key: sent,
      boundJwk: bound.jwk,
      evidence: (rd) => firmware.getReport(rd),
    });
    const headBefore = (await env.broker.readAudit(0, 10_000)).length;
    assertProblem(await client.attest(body), 'report-data-mismatch', 401, 'broker.report_data_mismatch');
    // REPORT_DATA is checked before the instance is looked up: the refusal names no instance, and anyone
    // can send those, so it is not audited (docs/broker.md "Audit log") but rate-limited and counted.
    const audit = await env.broker.readAudit(0, 10_000);
    assert.equal(audit.length, headBefore, 'no audit entry for a refusal that names no instance');
    assert.deepEqual(env.unattributed.at(-1), { kind: 'release', reason: 'broker.report_data_mismatch' });
    assert.equal((await env.broker.getInstance(instance.id))?.activeBoot, null, 'no boot was started');
  });

  it('unsupported tee -> tee-unsupported', async () => {
    const client = new IndependentKbsClient(env.base);
    assertProblem(await client.auth({ tee: 'sgx' }), 'tee-unsupported', 400, 'kbs.tee');
    assertProblem(await client.auth({ tee: 'nonsense' }), 'tee-unsupported', 400, 'kbs.tee');
    assert.equal(client.session, undefined, 'no session for a refused Request');
  });

  it('JWK on a wrong curve -> tee-pubkey-invalid', async () => {
    const { firmware } = await env.launch();
    const client = new IndependentKbsClient(env.base);
    await client.auth();
    const key = await makeTeeKey('P-256');
    // A P-256 point declared as P-384, and a secp256k1 key.
    const mislabelled = { ...key, jwk: { ...key.jwk, crv: 'P-384' } };
    const body1 = await client.attestation({ key: mislabelled, evidence: (rd) => firmware.getReport(rd) });
    assertProblem(await client.attest(body1), 'tee-pubkey-invalid', 400, 'kbs.tee_pubkey.coordinates');
    const k1 = { ...key, jwk: { ...key.jwk, crv: 'secp256k1' } };
    const body2 = await client.attestation({ key: k1, evidence: (rd) => firmware.getReport(rd) });
    assertProblem(await client.attest(body2), 'tee-pubkey-invalid', 400, 'kbs.tee_pubkey.curve');
  });

  it('resource not allowed by policy -> resource-forbidden', async () => {
    env.secrets.put('ops/db/other', new Uint8Array([1, 2, 3]), {
      instances: 'any',
      projects: ['another-project'],
      measurements: 'any',
    });
    const { firmware } = await env.launch({ project: 'proj-kbs' });
    const client = new IndependentKbsClient(env.base);
    const { token } = await client.run({
      kind: 'P-256',
      evidence: (rd) => firmware.getReport(rd),
      path: sealingPath,
    });
    const r = await client.resource('ops/db/other');
    assertProblem(r, 'resource-forbidden', 403, 'kbs.resource.project');
    assert.deepEqual((r.json as { failures: string[] }).failures, ['kbs.resource.project']);
    assertProblem(
      await client.resource('ops/db/other', { cookie: null, bearer: token }),
      'resource-forbidden',
      403,
    );
  });

  it('resource that does not exist -> resource-not-found', async () => {
    const { firmware } = await env.launch();
    const client = new IndependentKbsClient(env.base);
    await client.run({ kind: 'P-256', evidence: (rd) => firmware.getReport(rd), path: sealingPath });
    assertProblem(
      await client.resource('nope/nothing/here'),
      'resource-not-found',
      404,
      'kbs.resource.not_found',
    );
  });

  it('resource before attesting -> session-not-attested; no credentials -> session-missing', async () => {
    const client = new IndependentKbsClient(env.base);
    await client.auth();
    assertProblem(
      await client.resource(sealingPath),
      'session-not-attested',
      401,
      'kbs.session.not_attested',
    );
    assertProblem(await client.resource(sealingPath, { cookie: null }), 'session-missing', 401);
  });

  it('tampered or foreign bearer token -> token-invalid', async () => {
    const { firmware } = await env.launch();
    const client = new IndependentKbsClient(env.base);
    const { token } = await client.run({
      kind: 'P-256',
      evidence: (rd) => firmware.getReport(rd),
      path: sealingPath,
    });
    const [h, p, s] = token.split('.') as [string, string, string];
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString());
    payload.submods.cpu0['ear.vouchsafe.platform-identity'].project = 'someone-else';
    const forged = `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`;
    assertProblem(
      await client.resource(sealingPath, { cookie: null, bearer: forged }),
      'token-invalid',
      401,
      'token.signature',
    );
    assertProblem(
      await client.resource(sealingPath, { cookie: null, bearer: 'abc' }),
      'token-invalid',
      401,
      'token.format',
    );
  });

  it('unsupported protocol version -> version-unsupported', async () => {
    const client = new IndependentKbsClient(env.base);
    assertProblem(await client.auth({ version: '0.1.1' }), 'version-unsupported', 400, 'kbs.version');
  });

  it('malformed bodies -> bad-request', async () => {
    const client = new IndependentKbsClient(env.base);
    assertProblem(await client.request('POST', '/kbs/v0/auth', { version: '0.4.0' }), 'bad-request', 400);
    const res = await fetch(`${env.base}/kbs/v0/auth`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"version":',
    });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as { type: string }).type, `${PROBLEM_TYPE_BASE}bad-request`);
    await client.auth();
    assertProblem(await client.attest({ 'runtime-data': 1 }), 'bad-request', 400, 'kbs.request.shape');
  });

  it('evidence whose measurement the instance policy rejects -> policy-rejected with the failed checks', async () => {
    const { firmware } = await env.launch({ measurement: new Uint8Array(48).fill(0x42) });
    const client = new IndependentKbsClient(env.base);
    await client.auth();
    const body = await client.attestation({
      key: await makeTeeKey('P-256'),
      evidence: (rd) => firmware.getReport(rd),
    });
    const r = await client.attest(body);
    assertProblem(r, 'policy-rejected', 401);
    assert.deepEqual((r.json as { failures: string[] }).failures, ['snp.measurement']);
  });

  it('re-attesting the same launch (a token refresh) is the same boot, not a clone', async () => {
    const { firmware, instance } = await env.launch();
    const run = () =>
      new IndependentKbsClient(env.base).run({
        kind: 'P-256',
        evidence: (rd) => firmware.getReport(rd),
        path: sealingPath,
      });
    await run();
    await run();
    const last = (await env.broker.readAudit(0, 10_000)).filter((e) => e.instance === instance.id).pop();
    assert.deepEqual(last?.reasons, ['broker.released', 'broker.same_launch']);
  });

  it('another launch while one runs: takes over by default; under refuse -> attestation-refused (broker.clone)', async () => {
    const taken = await env.launch();
    await new IndependentKbsClient(env.base).run({
      kind: 'P-256',
      evidence: (rd) => taken.firmware.getReport(rd),
      path: sealingPath,
    });
    const next = taken.relaunch();
    await new IndependentKbsClient(env.base).run({
      kind: 'P-256',
      evidence: (rd) => next.getReport(rd),
      path: sealingPath,
    });

    const { firmware, relaunch } = await env.launch({ newLaunch: 'refuse' });
    await new IndependentKbsClient(env.base).run({
      kind: 'P-256',
      evidence: (rd) => firmware.getReport(rd),
      path: sealingPath,
    });
    const other = relaunch();
    const client = new IndependentKbsClient(env.base);
    await client.auth();
    const body = await client.attestation({
      key: await makeTeeKey('P-256'),
      evidence: (rd) => other.getReport(rd),
    });
    assertProblem(await client.attest(body), 'attestation-refused', 401, 'broker.clone');
  });

  it('a report whose signature does not verify -> evidence-invalid', async () => {
    const { firmware } = await env.launch();
    const client = new IndependentKbsClient(env.base);
    await client.auth();
    const body = await client.attestation({
      key: await makeTeeKey('P-256'),
      evidence: (rd) => {
        const r = firmware.getReport(rd);
        const report = Uint8Array.from(r.report);
        report[0x2a0] = report[0x2a0]! ^ 1; // first byte of the signature's R
        return { report, certTable: r.certTable };
      },
    });
    assertProblem(await client.attest(body), 'evidence-invalid', 401, 'snp.signature');
  });

  it('a report without certificates and no certificate source -> collateral-unavailable', async () => {
    const { firmware } = await env.launch();
    const client = new IndependentKbsClient(env.base);
    await client.auth();
    const body = await client.attestation({
      key: await makeTeeKey('P-256'),
      evidence: (rd) => firmware.getReport(rd),
      withCerts: false,
    });
    assertProblem(await client.attest(body), 'collateral-unavailable', 503, 'api.collateral.certs_missing');
  });

  it('init-data and additional evidence are refused as unsupported, not ignored', async () => {
    const { firmware } = await env.launch();
    const client = new IndependentKbsClient(env.base);
    await client.auth();
    const body = await client.attestation({
      key: await makeTeeKey('P-256'),
      evidence: (rd) => firmware.getReport(rd),
    });
    assertProblem(
      await client.attest({ ...body, 'init-data': { format: 'toml', body: 'x' } }),
      'unsupported',
      400,
      'kbs.init_data',
    );
    const te = body['tee-evidence'] as Record<string, unknown>;
    assertProblem(
      await client.attest({ ...body, 'tee-evidence': { ...te, additional_evidence: '{"nvidia":{}}' } }),
      'unsupported',
      400,
      'kbs.additional_evidence',
    );
  });
});
