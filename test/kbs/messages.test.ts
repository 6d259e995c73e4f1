import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { BrokerRefused } from '../../src/broker/errors.js';
import {
  ChainInvalid,
  CollateralUnavailable,
  InvalidArgument,
  MalformedEvidence,
  NotSupported,
  PolicyRejected,
  Unavailable,
} from '../../src/errors.js';
import { encodeReport, encodeTcb } from '../../src/formats/snp/index.js';
import { sourceOf } from '../../src/kbs/client-source.js';
import { readCookie, sessionCookie } from '../../src/kbs/cookie.js';
import { parseSnpPrimaryEvidence } from '../../src/kbs/evidence.js';
import {
  KBS_TEE_NAMES,
  parseAttestationBody,
  parseAuthRequest,
  parseResourcePath,
  SUPPORTED_KBS_TEES,
} from '../../src/kbs/messages.js';
import { problemFromError } from '../../src/kbs/problem.js';
import { SessionStore } from '../../src/kbs/sessions.js';
import { onlyTyped, throwsCode as throwsReason } from '../helpers/assert-error.js';
import { sevEvidenceOf } from './sev-struct.js';

const b64 = (n: number, fill = 1) => Buffer.alloc(n, fill).toString('base64');

describe('RCAR request parsing', () => {
  it('Request: version 0.4.0 and tee snp only; extra-params required (any JSON)', () => {
    assert.deepEqual(parseAuthRequest({ version: '0.4.0', tee: 'snp', 'extra-params': '' }), {
      version: '0.4.0',
      tee: 'snp',
      extraParams: '',
    });
    throwsReason(
      () => parseAuthRequest({ version: '0.4.1', tee: 'snp', 'extra-params': '' }),
      'ERR_NOT_SUPPORTED',
      'kbs.version',
    );
    throwsReason(
      () => parseAuthRequest({ version: '0.4.0', tee: 'sample', 'extra-params': '' }),
      'ERR_NOT_SUPPORTED',
      'kbs.tee',
    );
    throwsReason(
      () => parseAuthRequest({ version: '0.4.0', tee: 'snp' }),
      'ERR_MALFORMED',
      'kbs.request.shape',
    );
    throwsReason(() => parseAuthRequest([]), 'ERR_MALFORMED', 'kbs.request.shape');
  });

  it('TEE names: kbs-types as spelled today; snp attested; the rest, and old spellings, refused with kbs.tee', () => {
    assert.deepEqual([...KBS_TEE_NAMES].sort(), [
      'az-snp-vtpm',
      'az-tdx-vtpm',
      'cca',
      'csv',
      'dpu',
      'hygondcu',
      'nvidia',
      'sample',
      'sampledevice',
      'se',
      'sgx',
      'snp',
      'tdx',
      'tpm',
    ]);
    assert.deepEqual([...SUPPORTED_KBS_TEES].sort(), ['az-snp-vtpm', 'snp', 'tdx']);
    for (const tee of [
      ...KBS_TEE_NAMES.filter((t) => !SUPPORTED_KBS_TEES.includes(t)),
      'azsnpvtpm',
      'sev',
      'constructor',
      '',
    ]) {
      throwsReason(
        () => parseAuthRequest({ version: '0.4.0', tee, 'extra-params': '' }),
        'ERR_NOT_SUPPORTED',
        'kbs.tee',
      );
    }
  });

  it('Attestation: runtime-data and tee-evidence required; init-data null is accepted, a value refused', () => {
    const ok = {
      'init-data': null,
      'runtime-data': { nonce: 'n', 'tee-pubkey': {} },
      'tee-evidence': { primary_evidence: {}, additional_evidence: '' },
      unknown: 1,
    };
    assert.equal(parseAttestationBody(ok).runtimeData.nonce, 'n');
    throwsReason(
      () => parseAttestationBody({ ...ok, 'init-data': { format: 'toml', body: '' } }),
      'ERR_NOT_SUPPORTED',
      'kbs.init_data',
    );
    throwsReason(
      () => parseAttestationBody({ ...ok, 'runtime-data': { nonce: 1 } }),
      'ERR_MALFORMED',
      'kbs.request.shape',
    );
    throwsReason(
      () =>
        parseAttestationBody({ ...ok, 'tee-evidence': { primary_evidence: {}, additional_evidence: {} } }),
      'ERR_MALFORMED',
      'kbs.request.shape',
    );
  });

  it('SNP primary evidence: both aproxy spellings; the sev-crate struct form decoded; strict base64', () => {
    const r = parseSnpPrimaryEvidence({ 'snp-report': b64(0x4a0), 'certs-buf': null });
    assert.equal(r.report.length, 0x4a0);
    assert.equal(r.certTable, undefined);
    const s = parseSnpPrimaryEvidence({ attestation_report: b64(0x4a0), cert_chain: b64(100) });
    assert.equal(s.spelling, 'attestation_report');
    assert.equal(s.certTable?.length, 100);
    // Trustee's struct form: rebuilt to the report's exact bytes (src/formats/snp/sev-json.ts).
    const tcb = encodeTcb({ bootloader: 3, tee: 0, snp: 8, microcode: 115 }, 'Milan');
    const report = encodeReport({
      version: 3,
      guestSvn: 1,
      policy: 0x30000n,
      familyId: new Uint8Array(16),
      imageId: new Uint8Array(16),
      vmpl: 0,
      signatureAlgo: 1,
      currentTcb: tcb,
      platformInfo: 1n,
      signerInfo: 0,
      reportData: new Uint8Array(64).fill(5),
      measurement: new Uint8Array(48).fill(6),
      hostData: new Uint8Array(32).fill(7),
      idKeyDigest: new Uint8Array(48),
      authorKeyDigest: new Uint8Array(48),
      reportId: new Uint8Array(32),
      reportIdMa: new Uint8Array(32).fill(0xff),
      reportedTcb: tcb,
      cpuid: { family: 0x19, model: 1, stepping: 1 },
      chipId: new Uint8Array(64).fill(9),
      committedTcb: tcb,
      currentBuild: 1,
      currentMinor: 55,
      currentMajor: 1,
      committedBuild: 1,
      committedMinor: 55,
      committedMajor: 1,
      launchTcb: tcb,
      signature: { r: new Uint8Array(72).fill(1), s: new Uint8Array(72).fill(2) },
    });
    const st = parseSnpPrimaryEvidence(sevEvidenceOf(report));
    assert.equal(st.spelling, 'sev-struct');
    assert.deepEqual(st.report, report);
    assert.equal(st.certTable, undefined);
    throwsReason(
      () => parseSnpPrimaryEvidence({ attestation_report: { version: 2, guest_svn: 0 } }),
      'ERR_MALFORMED',
      'snp.sev_json.missing_key',
    );
    throwsReason(
      () => parseSnpPrimaryEvidence({ 'snp-report': 'a-b_' }),
      'ERR_MALFORMED',
      'kbs.evidence.base64',
    );
    throwsReason(
      () => parseSnpPrimaryEvidence({ 'snp-report': 'QQ' }),
      'ERR_MALFORMED',
      'kbs.evidence.base64',
    );
    throwsReason(
      () => parseSnpPrimaryEvidence({ 'snp-report': b64(5000) }),
      'ERR_MALFORMED',
      'kbs.evidence.size',
    );
    throwsReason(() => parseSnpPrimaryEvidence({}), 'ERR_MALFORMED', 'kbs.evidence.shape');
  });

  it('resource paths: three safe segments', () => {
    assert.deepEqual(parseResourcePath({ repository: 'default', type: 'sample', tag: 'test' }), {
      repository: 'default',
      type: 'sample',
      tag: 'test',
    });
    for (const bad of ['..', '.hidden', '', 'a b', 'x'.repeat(200)]) {
      throwsReason(
        () => parseResourcePath({ repository: bad, type: 't', tag: 'x' }),
        'ERR_INVALID_ARGUMENT',
        'kbs.resource.path',
      );
    }
  });

  it('hostile bodies only ever produce typed errors', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        onlyTyped(() => parseAuthRequest(v));
        onlyTyped(() => parseAttestationBody(v));
        onlyTyped(() => parseSnpPrimaryEvidence(v));
        onlyTyped(() =>
          parseAttestationBody({ 'runtime-data': { nonce: 'x', 'tee-pubkey': v }, 'tee-evidence': v }),
        );
        onlyTyped(() => parseSnpPrimaryEvidence({ 'snp-report': v, 'certs-buf': v }));
      }),
      { numRuns: 500 },
    );
  });
});

describe('sessions and cookies', () => {
  it('cookie: read among others, quoted values; Set-Cookie has Expires and HttpOnly', () => {
    assert.equal(readCookie('a=1; kbs-session-id=abc; b=2', 'kbs-session-id'), 'abc');
    assert.equal(readCookie('kbs-session-id="q"', 'kbs-session-id'), 'q');
    assert.equal(readCookie('other=1', 'kbs-session-id'), undefined);
    assert.equal(readCookie(undefined, 'kbs-session-id'), undefined);
    assert.equal(
      sessionCookie('ff', 0),
      'kbs-session-id=ff; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly',
    );
  });

  it('lifecycle: authed -> attested; expired for one more lifetime, then unknown', () => {
    let t = 1000;
    const s = new SessionStore({ ttlMs: 100, maxSessions: 10, now: () => t });
    const { id } = s.create('192.0.2.1', 'nonce', new Uint8Array(32));
    assert.match(id, /^[0-9a-f]{64}$/);
    assert.equal(s.get(id).status, 'ok');
    assert.equal(s.attest(id, 'tok'), true);
    assert.equal(s.attest(id, 'tok2'), false, 'attests once');
    const got = s.get(id);
    assert.ok(got.status === 'ok' && got.session.phase === 'attested' && got.session.token === 'tok');
    t += 100;
    assert.equal(s.get(id).status, 'expired');
    t += 100;
    s.sweep();
    assert.equal(s.get(id).status, 'unknown');
    assert.equal(s.get('zz').status, 'unknown');
  });

  it('when full, evicts the oldest authed session; refuses only when all are attested', () => {
    const s = new SessionStore({ ttlMs: 1000, maxSessions: 2, now: () => 0 });
    const src = '192.0.2.1';
    const a = s.create(src, 'a', new Uint8Array(32));
    const b = s.create(src, 'b', new Uint8Array(32));
    s.attest(b.id, 't');
    const c = s.create(src, 'c', new Uint8Array(32));
    assert.equal(s.get(a.id).status, 'unknown');
    assert.equal(s.get(b.id).status, 'ok');
    s.attest(c.id, 't');
    throwsReason(() => s.create(src, 'd', new Uint8Array(32)), 'ERR_INVALID_ARGUMENT', 'kbs.sessions_full');
    throwsReason(
      () => s.create('198.51.100.1', 'd', new Uint8Array(32)),
      'ERR_INVALID_ARGUMENT',
      'kbs.sessions_full',
    );
  });

  it('when full, sessions already expired go first, before a pending one or a refusal', () => {
    let t = 0;
    const s = new SessionStore({ ttlMs: 1000, maxSessions: 2, now: () => t });
    const a = s.create('192.0.2.1', 'a', new Uint8Array(32));
    s.attest(a.id, 't');
    t = 500;
    const b = s.create('192.0.2.2', 'b', new Uint8Array(32));
    s.attest(b.id, 't');
    throwsReason(
      () => s.create('192.0.2.3', 'c', new Uint8Array(32)),
      'ERR_INVALID_ARGUMENT',
      'kbs.sessions_full',
    );
    t = 1000; // a has expired (it would answer "expired" until 2000); b has not
    assert.equal(s.get(a.id).status, 'expired');
    const c = s.create('192.0.2.3', 'c', new Uint8Array(32));
    assert.equal(s.get(a.id).status, 'unknown');
    assert.equal(s.get(b.id).status, 'ok');
    assert.equal(s.get(c.id).status, 'ok');
  });

  it("a flood from one source evicts only that source's pending sessions", () => {
    const s = new SessionStore({ ttlMs: 1000, maxSessions: 100, maxPendingPerSource: 4, now: () => 0 });
    const victim = s.create('192.0.2.1', 'v', new Uint8Array(32));
    const attested = s.create('192.0.2.2', 'w', new Uint8Array(32));
    s.attest(attested.id, 't');
    const first = s.create('198.51.100.7', 'x', new Uint8Array(32));
    for (let i = 0; i < 10_000; i++) s.create('198.51.100.7', `f${i}`, new Uint8Array(32));
    assert.equal(s.get(victim.id).status, 'ok');
    assert.equal(s.get(attested.id).status, 'ok');
    assert.equal(s.get(first.id).status, 'unknown');
    assert.equal(s.pendingOf('198.51.100.7'), 4);
    assert.equal(s.size, 6);
  });

  it('when the whole store is full, the source with the most pending sessions gives one up', () => {
    const s = new SessionStore({ ttlMs: 1000, maxSessions: 10, maxPendingPerSource: 4, now: () => 0 });
    const victim = s.create('192.0.2.1', 'v', new Uint8Array(32));
    // A flood from many sources fills the store; each keeps at most 4 pending.
    for (let i = 0; i < 1000; i++) s.create(`203.0.113.${i % 3}`, `f${i}`, new Uint8Array(32));
    assert.equal(s.size, 10);
    assert.equal(s.get(victim.id).status, 'ok');
    // A newcomer still gets a session, at a flooding source's expense.
    const other = s.create('192.0.2.9', 'o', new Uint8Array(32));
    assert.equal(s.get(other.id).status, 'ok');
    assert.equal(s.get(victim.id).status, 'ok');
    assert.equal(s.pendingOf('192.0.2.1'), 1);
  });

  it('expired sessions are swept from their source too', () => {
    let t = 0;
    const s = new SessionStore({ ttlMs: 100, maxSessions: 10, maxPendingPerSource: 2, now: () => t });
    s.create('192.0.2.1', 'a', new Uint8Array(32));
    s.create('192.0.2.1', 'b', new Uint8Array(32));
    t = 200;
    s.sweep();
    assert.equal(s.size, 0);
    assert.equal(s.pendingOf('192.0.2.1'), 0);
  });

  it('refuses limits that are not positive integers', () => {
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      throwsReason(
        () => new SessionStore({ ttlMs: 1, maxSessions: 1, maxPendingPerSource: bad, now: () => 0 }),
        'ERR_INVALID_ARGUMENT',
        'kbs.config',
      );
    }
  });

  it('sources: IPv4 as is, IPv4-mapped IPv6 as IPv4, IPv6 by /64, anything else one local source', () => {
    assert.equal(sourceOf('192.0.2.1'), '192.0.2.1');
    assert.equal(sourceOf('::ffff:192.0.2.1'), '192.0.2.1');
    assert.equal(sourceOf('::ffff:c000:201'), '192.0.2.1');
    assert.equal(sourceOf('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
    assert.equal(sourceOf('2001:db8:1:2::9'), '2001:db8:1:2::/64');
    assert.equal(sourceOf('2001:db8::1'), '2001:db8:0:0::/64');
    assert.equal(sourceOf('fe80::1%eth0'), 'fe80:0:0:0::/64');
    assert.equal(sourceOf('::1'), '0:0:0:0::/64');
    assert.equal(sourceOf(undefined), 'local');
    assert.equal(sourceOf('not an address'), 'local');
  });
});

describe('problem documents', () => {
  const slug = (e: unknown) => problemFromError(e).type.split('/').pop();
  it('maps reasons and codes to stable types', () => {
    assert.equal(slug(new BrokerRefused('broker.clone')), 'attestation-refused');
    assert.equal(slug(new BrokerRefused('broker.challenge_expired')), 'challenge-invalid');
    assert.equal(slug(new ChainInvalid('snp.chain.root_untrusted')), 'evidence-invalid');
    assert.equal(slug(new MalformedEvidence('snp.report.version')), 'evidence-invalid');
    assert.equal(slug(new MalformedEvidence('kbs.evidence.base64')), 'evidence-malformed');
    assert.equal(slug(new NotSupported('snp.product_unknown')), 'unsupported');
    assert.equal(slug(new CollateralUnavailable('kds.fetch')), 'collateral-unavailable');
    // A store outage is a retryable 503, not an opaque 500 (src/store/unavailable.ts).
    assert.equal(slug(new Unavailable('store.unavailable')), 'unavailable');
    assert.equal(problemFromError(new Unavailable('store.full')).status, 503);
    assert.equal(slug(new PolicyRejected([{ code: 'snp.tcb', message: '' }])), 'policy-rejected');
    assert.equal(
      slug(new PolicyRejected([{ code: 'kbs.resource.status', message: '' }])),
      'resource-forbidden',
    );
    assert.equal(slug(new InvalidArgument('kbs.resource.gone')), 'grant-gone');
  });

  it('server-side failures are opaque internal problems', () => {
    const p = problemFromError(new Error('database password is hunter2'));
    assert.equal(p.status, 500);
    assert.equal(p.detail, 'internal error');
    const k = problemFromError(new InvalidArgument('broker.kek.unwrap_failed', 'details'));
    assert.equal(k.status, 500);
    assert.equal(k.detail, 'internal error');
  });
});
