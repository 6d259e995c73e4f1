import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  encodeAttestationRequest,
  encodeAttestationResponse,
  encodeCommitRequest,
  encodeCommitResponse,
  encodeErrorReply,
  encodeFrame,
  encodeLeaseRequest,
  encodeLeaseResponse,
  encodeNegotiationRequest,
  encodeNegotiationResponse,
  parseAttestationRequest,
  parseAttestationResponse,
  parseCommitRequest,
  parseCommitResponse,
  parseErrorReply,
  parseLeaseRequest,
  parseLeaseResponse,
  parseNegotiationRequest,
  parseNegotiationResponse,
  parseOpeningMessage,
} from '../../../src/formats/aproxy/index.js';
import { decodeBase64 } from '../../../src/util/base64.js';
import { isMalformed, throwsCode } from '../../helpers/assert-error.js';

// biome-ignore lint/suspicious/noExplicitAny: tests mutate free-form JSON at arbitrary paths
type Loose = any;

const utf8 = (s: string) => new Uint8Array(Buffer.from(s, 'utf8'));
const text = (b: Uint8Array) => Buffer.from(b).toString('utf8');
const fill = (n: number, v: number) => new Uint8Array(n).fill(v);

// Hand-derived base64 of the fixed test values (standard alphabet, padded):
//   66 x 0x01 -> 22 x "AQEB"; 66 x 0x02 -> 22 x "AgIC"; 66 x 0x03 -> "AwMD"; 66 x 0x04 -> "BAQE"
//   40 x 0x05 -> 13 x "BQUF" + "BQ=="; 12 x 0x06 -> 4 x "BgYG"; 16 x 0x07 -> 5 x "BwcH" + "Bw=="
//   de ad be ef -> "3q2+7w=="; 01 02 03 -> "AQID"; 04 05 06 -> "BAUG"; 09 09 09 -> "CQkJ"; "abc" -> "YWJj"
const X1 = 'AQEB'.repeat(22);
const Y2 = 'AgIC'.repeat(22);
const key = { x: fill(66, 1), y: fill(66, 2) };
const challenge = new Uint8Array([0xde, 0xad, 0xbe, 0xef]);
const decryption = {
  epk: { x: fill(66, 3), y: fill(66, 4) },
  wrappedCek: fill(40, 5),
  aad: utf8('abc'),
  iv: fill(12, 6),
  tag: fill(16, 7),
};
const DECRYPTION_JSON =
  `{"epk":{"x":"${'AwMD'.repeat(22)}","y":"${'BAQE'.repeat(22)}"},` +
  `"wrapped_cek":"${'BQUF'.repeat(13)}BQ==","aad":"YWJj","iv":"${'BgYG'.repeat(4)}","tag":"${'BwcH'.repeat(5)}Bw=="}`;

describe('aproxy 0.1.0 golden bytes (serde_json field order, compact)', () => {
  it('NegotiationRequest', () => {
    const b = encodeNegotiationRequest({ version: [0, 1, 0], tee: 'snp' });
    assert.equal(text(b), '{"version":[0,1,0],"tee":"snp"}');
    // 31 bytes of JSON -> length prefix 1f 00 00 00 00 00 00 00
    assert.equal(Buffer.from(encodeFrame(b)).toString('hex').slice(0, 16), '1f00000000000000');
    assert.deepEqual(parseNegotiationRequest(b), { version: [0, 1, 0], tee: 'snp' });
  });

  it('NegotiationResponse, both param orders', () => {
    const nonce = new Uint8Array(32).map((_, i) => i);
    const b = encodeNegotiationResponse(
      { challenge: nonce, params: ['EcPublicKeyBytes', 'Challenge'] },
      '0.1.0',
    );
    assert.equal(
      text(b),
      '{"challenge":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","params":["EcPublicKeyBytes","Challenge"]}',
    );
    const r = parseNegotiationResponse(b, '0.1.0');
    assert.deepEqual(r, { challenge: nonce, params: ['EcPublicKeyBytes', 'Challenge'] });
    const c = encodeNegotiationResponse({ challenge, params: ['Challenge', 'EcPublicKeyBytes'] }, '0.1.0');
    assert.equal(text(c), '{"challenge":"3q2+7w==","params":["Challenge","EcPublicKeyBytes"]}');
  });

  it('AttestationRequest without and with certs_buf', () => {
    const b = encodeAttestationRequest(
      { tee: 'snp', evidence: { report: new Uint8Array([1, 2, 3]) }, challenge, key },
      '0.1.0',
    );
    assert.equal(
      text(b),
      `{"tee":"snp","evidence":{"Snp":{"report":"AQID"}},"challenge":"3q2+7w==","key":{"x":"${X1}","y":"${Y2}"}}`,
    );
    assert.deepEqual(parseAttestationRequest(b, '0.1.0'), {
      tee: 'snp',
      evidence: { report: new Uint8Array([1, 2, 3]) },
      challenge,
      key,
    });
    const c = encodeAttestationRequest(
      {
        tee: 'snp',
        evidence: { report: new Uint8Array([1, 2, 3]), certsBuf: new Uint8Array([4, 5, 6]) },
        challenge,
        key,
      },
      '0.1.0',
    );
    assert.equal(
      text(c),
      `{"tee":"snp","evidence":{"Snp":{"report":"AQID","certs_buf":"BAUG"}},"challenge":"3q2+7w==","key":{"x":"${X1}","y":"${Y2}"}}`,
    );
    assert.deepEqual(parseAttestationRequest(c, '0.1.0').evidence.certsBuf, new Uint8Array([4, 5, 6]));
  });

  it('AttestationResponse: success with a Jwt token, success without token, and aproxy failure', () => {
    const ok = encodeAttestationResponse(
      {
        success: true,
        secret: new Uint8Array([9, 9, 9]),
        decryption,
        token: { kind: 'Jwt', value: 't.o.k' },
      },
      '0.1.0',
    );
    assert.equal(
      text(ok),
      `{"success":true,"secret":"CQkJ","decryption":${DECRYPTION_JSON},"token":{"Jwt":"t.o.k"}}`,
    );
    assert.deepEqual(parseAttestationResponse(ok, '0.1.0'), {
      success: true,
      secret: new Uint8Array([9, 9, 9]),
      decryption,
      token: { kind: 'Jwt', value: 't.o.k' },
    });
    const noTok = encodeAttestationResponse(
      { success: true, secret: new Uint8Array([9, 9, 9]), decryption, token: null },
      '0.1.0',
    );
    assert.equal(
      text(noTok),
      `{"success":true,"secret":"CQkJ","decryption":${DECRYPTION_JSON},"token":null}`,
    );
    // What aproxy sends when the KBS refuses: secret omitted (never null), other fields null.
    const fail = encodeAttestationResponse({ success: false, decryption: null, token: null }, '0.1.0');
    assert.equal(text(fail), '{"success":false,"decryption":null,"token":null}');
    assert.deepEqual(parseAttestationResponse(fail, '0.1.0'), {
      success: false,
      decryption: null,
      token: null,
    });
  });

  it('AttestationResponse parsing follows serde: missing Option fields read as null, explicit null secret refused', () => {
    assert.deepEqual(parseAttestationResponse(utf8('{"success":false}'), '0.1.0'), {
      success: false,
      decryption: null,
      token: null,
    });
    throwsCode(
      () =>
        parseAttestationResponse(
          utf8('{"success":false,"secret":null,"decryption":null,"token":null}'),
          '0.1.0',
        ),
      'ERR_MALFORMED',
      'aproxy.field.type',
    );
    const cwt = parseAttestationResponse(utf8('{"success":false,"token":{"Cwt":"x"}}'), '0.1.0');
    assert.deepEqual('token' in cwt && cwt.token, { kind: 'Cwt', value: 'x' });
  });
});

describe('aproxy strict validation', () => {
  const goodReq = () =>
    JSON.parse(
      text(
        encodeAttestationRequest(
          { tee: 'snp', evidence: { report: new Uint8Array([1, 2, 3]) }, challenge, key },
          '0.1.0',
        ),
      ),
    );
  const reqWith = (mutate: (o: Loose) => void) => {
    const o = goodReq();
    mutate(o);
    return utf8(JSON.stringify(o));
  };

  it('refuses url-safe alphabet, missing padding, whitespace and non-canonical trailing bits', () => {
    const cases = [
      '3q2-7w==',
      '3q2_7w==',
      '3q2+7w',
      '3q2+7w=',
      ' 3q2+7w==',
      '3q2+\n7w==',
      '3q2+7w==\n',
      '3q2+7x==',
    ];
    for (const c of cases) {
      throwsCode(() => decodeBase64(c, 'aproxy.base64', 'challenge'), 'ERR_MALFORMED', 'aproxy.base64');
      throwsCode(
        () =>
          parseAttestationRequest(
            reqWith((o) => (o.challenge = c)),
            '0.1.0',
          ),
        'ERR_MALFORMED',
        'aproxy.base64',
      );
    }
    assert.deepEqual(decodeBase64('', 'aproxy.base64', 'x'), new Uint8Array(0));
  });

  it('refuses wrong field types', () => {
    const cases: [(o: Loose) => void, string][] = [
      [(o) => (o.tee = 5), 'aproxy.field.type'],
      [(o) => (o.challenge = null), 'aproxy.field.type'],
      [(o) => (o.key = 'k'), 'aproxy.field.type'],
      [(o) => (o.key.x = 1), 'aproxy.field.type'],
      [(o) => (o.evidence = []), 'aproxy.field.type'],
      [(o) => (o.evidence.Snp.report = ['AQID']), 'aproxy.field.type'],
      [(o) => (o.tee = 'SNP'), 'aproxy.field.value'],
      [(o) => (o.key.x = 'AQID'), 'aproxy.field.length'],
      [(o) => (o.challenge = ''), 'aproxy.field.length'],
    ];
    for (const [m, reason] of cases) {
      throwsCode(() => parseAttestationRequest(reqWith(m), '0.1.0'), 'ERR_MALFORMED', reason);
    }
  });

  it('refuses missing fields at every level, another enum variant, and 0.2.0 fields in a 0.1.0 request', () => {
    // Unknown fields are ignored as serde does (test/proxy/unknown-fields.test.ts).
    const cases: [(o: Loose) => void, string][] = [
      [(o) => (o.stateCounter = null), 'aproxy.field.unknown'], // a 0.2.0 field in a 0.1.0 request
      [(o) => (o.evidence.Tdx = {}), 'aproxy.field.unknown'],
      [(o) => delete o.key, 'aproxy.field.missing'],
      [(o) => delete o.key.y, 'aproxy.field.missing'],
      [(o) => delete o.evidence.Snp.report, 'aproxy.field.missing'],
      [(o) => (o.evidence = {}), 'aproxy.field.missing'],
    ];
    for (const [m, reason] of cases) {
      throwsCode(() => parseAttestationRequest(reqWith(m), '0.1.0'), 'ERR_MALFORMED', reason);
    }
    throwsCode(
      () => parseNegotiationRequest(utf8('{"version":[0,1,0]}')),
      'ERR_MALFORMED',
      'aproxy.field.missing',
    );
  });

  it('checks the version triple like serde (u32 x 3, integers only)', () => {
    for (const v of [
      '[0,1]',
      '[0,1,0,0]',
      '[0,1.0,0]',
      '[0,-1,0]',
      '[0,1e0,0]',
      '[0,4294967296,0]',
      '"0.1.0"',
    ]) {
      assert.throws(() => parseNegotiationRequest(utf8(`{"version":${v},"tee":"snp"}`)), isMalformed);
    }
    assert.deepEqual(
      parseNegotiationRequest(utf8('{"tee":"snp", "version":[0,4294967295,0]}')).version,
      [0, 4294967295, 0],
    );
  });

  it('refuses params a version does not define', () => {
    throwsCode(
      () => parseNegotiationResponse(utf8('{"challenge":"AA==","params":["StateCounter"]}'), '0.1.0'),
      'ERR_MALFORMED',
      'aproxy.param',
    );
    throwsCode(
      () =>
        parseNegotiationResponse(utf8('{"challenge":"AA==","params":["Nonce"],"version":[0,2,0]}'), '0.2.0'),
      'ERR_MALFORMED',
      'aproxy.param',
    );
    throwsCode(
      () => encodeNegotiationResponse({ challenge, params: ['StateCounter'] }, '0.1.0'),
      'ERR_INVALID_ARGUMENT',
      'aproxy.encode.param',
    );
  });
});

describe('aproxy 0.2.0 extension messages', () => {
  it('NegotiationResponse carries the version and StateCounter', () => {
    const b = encodeNegotiationResponse(
      { challenge, params: ['EcPublicKeyBytes', 'Challenge', 'StateCounter'] },
      '0.2.0',
    );
    assert.equal(
      text(b),
      '{"challenge":"3q2+7w==","params":["EcPublicKeyBytes","Challenge","StateCounter"],"version":[0,2,0]}',
    );
    assert.deepEqual(parseNegotiationResponse(b, '0.2.0'), {
      challenge,
      params: ['EcPublicKeyBytes', 'Challenge', 'StateCounter'],
    });
    throwsCode(
      () => parseNegotiationResponse(utf8('{"challenge":"AA==","params":[],"version":[0,1,0]}'), '0.2.0'),
      'ERR_MALFORMED',
      'aproxy.version',
    );
  });

  it('AttestationRequest states the counter as a decimal string or null, and the state digest with it', () => {
    const base = { tee: 'snp' as const, evidence: { report: new Uint8Array([1, 2, 3]) }, challenge, key };
    const digest = fill(32, 0xab);
    const D = Buffer.from(digest).toString('base64');
    const b = encodeAttestationRequest(
      { ...base, stateCounter: 18446744073709551614n, stateDigest: digest },
      '0.2.0',
    );
    assert.ok(
      text(b).endsWith(
        `"key":{"x":"${X1}","y":"${Y2}"},"stateCounter":"18446744073709551614","stateDigest":"${D}"}`,
      ),
    );
    assert.equal(parseAttestationRequest(b, '0.2.0').stateCounter, 18446744073709551614n);
    assert.deepEqual(parseAttestationRequest(b, '0.2.0').stateDigest, digest);
    const n = encodeAttestationRequest({ ...base, stateCounter: null }, '0.2.0');
    assert.ok(text(n).endsWith(',"stateCounter":null,"stateDigest":null}'));
    assert.equal(parseAttestationRequest(n, '0.2.0').stateCounter, null);
    // The digest is there exactly when the counter is, and is 32 bytes.
    throwsCode(
      () =>
        parseAttestationRequest(utf8(text(b).replace(`"stateDigest":"${D}"`, '"stateDigest":null')), '0.2.0'),
      'ERR_MALFORMED',
      'aproxy.field.value',
    );
    throwsCode(
      () =>
        parseAttestationRequest(utf8(text(n).replace('"stateDigest":null', `"stateDigest":"${D}"`)), '0.2.0'),
      'ERR_MALFORMED',
      'aproxy.field.value',
    );
    throwsCode(
      () =>
        parseAttestationRequest(
          utf8(text(b).replace(`"stateDigest":"${D}"`, '"stateDigest":"AAAA"')),
          '0.2.0',
        ),
      'ERR_MALFORMED',
      'aproxy.field.length',
    );
    throwsCode(
      () => encodeAttestationRequest({ ...base, stateCounter: 1n }, '0.2.0'),
      'ERR_INVALID_ARGUMENT',
      'aproxy.encode.state_digest',
    );
    for (const bad of ['"18446744073709551615"', '"-1"', '"01"', '7', '"1e3"', '" 1"']) {
      const t = text(n).replace('"stateCounter":null', `"stateCounter":${bad}`);
      assert.throws(() => parseAttestationRequest(utf8(t), '0.2.0'), isMalformed);
    }
    throwsCode(
      () => parseAttestationRequest(encodeAttestationRequest(base, '0.1.0'), '0.2.0'),
      'ERR_MALFORMED',
      'aproxy.field.missing',
    );
  });

  it('AttestationResponse carries identity and signature', () => {
    const identity = { project: 'p', zone: 'z', instanceId: '42', instanceName: 'vm-1' };
    const sig = fill(96, 8);
    const b = encodeAttestationResponse(
      { success: true, secret: new Uint8Array([9, 9, 9]), decryption, token: null, identity, signature: sig },
      '0.2.0',
    );
    assert.equal(
      text(b),
      `{"success":true,"secret":"CQkJ","decryption":${DECRYPTION_JSON},"token":null,` +
        `"identity":{"project":"p","zone":"z","instanceId":"42","instanceName":"vm-1"},"signature":"${'CAgI'.repeat(32)}"}`,
    );
    assert.deepEqual(parseAttestationResponse(b, '0.2.0'), {
      success: true,
      secret: new Uint8Array([9, 9, 9]),
      decryption,
      token: null,
      identity,
      signature: sig,
    });
    throwsCode(
      () => parseAttestationResponse(utf8(text(b).replace('"token":null,', '')), '0.2.0'),
      'ERR_MALFORMED',
      'aproxy.field.missing',
    );
  });

  it('ErrorReply: stable code and reason; unknown codes refused', () => {
    const b = encodeErrorReply({ code: 'ERR_POLICY_REJECTED', reason: 'snp.measurement', message: 'no' });
    assert.equal(
      text(b),
      '{"success":false,"error":{"code":"ERR_POLICY_REJECTED","reason":"snp.measurement","message":"no"}}',
    );
    assert.deepEqual(parseErrorReply(b).error, {
      code: 'ERR_POLICY_REJECTED',
      reason: 'snp.measurement',
      message: 'no',
    });
    assert.deepEqual(parseAttestationResponse(b, '0.2.0'), parseErrorReply(b));
    assert.deepEqual(parseNegotiationResponse(b, '0.2.0'), parseErrorReply(b));
    throwsCode(
      () => parseErrorReply(utf8('{"success":false,"error":{"code":"ERR_NOPE","reason":"a","message":""}}')),
      'ERR_MALFORMED',
      'aproxy.field.value',
    );
    throwsCode(
      () =>
        parseErrorReply(
          utf8('{"success":false,"error":{"code":"ERR_MALFORMED","reason":"A B","message":""}}'),
        ),
      'ERR_MALFORMED',
      'aproxy.field.value',
    );
    // A 0.1.0 guest never sees an ErrorReply: it does not parse as a 0.1.0 response.
    throwsCode(() => parseAttestationResponse(b, '0.1.0'), 'ERR_MALFORMED', 'aproxy.field.unknown');
  });

  it('Commit and CommitResponse', () => {
    const commit = {
      bootId: 'boot-1',
      commitToken: fill(32, 0xaa),
      counter: 7n,
      stateDigest: fill(32, 0xbb),
    };
    const c = encodeCommitRequest(commit);
    const D = Buffer.from(commit.stateDigest).toString('base64');
    assert.equal(
      text(c),
      `{"bootId":"boot-1","commitToken":"${'qqqq'.repeat(10)}qqo=","counter":"7","stateDigest":"${D}"}`,
    );
    assert.deepEqual(parseCommitRequest(c), commit);
    throwsCode(
      () =>
        parseCommitRequest(
          utf8(
            `{"bootId":"a b","commitToken":"AAAAAAAAAAAAAAAAAAAAAA==","counter":"1","stateDigest":"${D}"}`,
          ),
        ),
      'ERR_MALFORMED',
      'aproxy.field.value',
    );
    throwsCode(
      () =>
        parseCommitRequest(utf8(`{"bootId":"a","commitToken":"AAAA","counter":"1","stateDigest":"${D}"}`)),
      'ERR_MALFORMED',
      'aproxy.field.length',
    );
    // The digest is required (a commit names the file it commits) and is 32 bytes.
    throwsCode(
      () => parseCommitRequest(utf8('{"bootId":"a","commitToken":"AAAAAAAAAAAAAAAAAAAAAA==","counter":"1"}')),
      'ERR_MALFORMED',
      'aproxy.field.missing',
    );
    throwsCode(
      () =>
        parseCommitRequest(
          utf8('{"bootId":"a","commitToken":"AAAAAAAAAAAAAAAAAAAAAA==","counter":"1","stateDigest":"AAAA"}'),
        ),
      'ERR_MALFORMED',
      'aproxy.field.length',
    );
    const r = encodeCommitResponse({ success: true, signature: null });
    assert.equal(text(r), '{"success":true,"signature":null}');
    assert.deepEqual(parseCommitResponse(r), { success: true, signature: null });
  });

  it('AttestationRequest: the optional stateKeyVersion (an integer >= 1 or null) follows stateCounter', () => {
    const base = { tee: 'snp' as const, evidence: { report: new Uint8Array([1, 2, 3]) }, challenge, key };
    const stateDigest = fill(32, 0xab);
    const D = Buffer.from(stateDigest).toString('base64');
    const b = encodeAttestationRequest(
      { ...base, stateCounter: 4n, stateDigest, stateKeyVersion: 2 },
      '0.2.0',
    );
    assert.ok(text(b).endsWith(`,"stateCounter":"4","stateDigest":"${D}","stateKeyVersion":2}`));
    assert.equal(parseAttestationRequest(b, '0.2.0').stateKeyVersion, 2);
    const n = encodeAttestationRequest({ ...base, stateCounter: null, stateKeyVersion: null }, '0.2.0');
    assert.ok(text(n).endsWith(',"stateCounter":null,"stateDigest":null,"stateKeyVersion":null}'));
    assert.equal(parseAttestationRequest(n, '0.2.0').stateKeyVersion, null);
    // Absent (a guest that predates key versions): absent after parsing too, and the bytes are unchanged.
    const old = encodeAttestationRequest({ ...base, stateCounter: 4n, stateDigest }, '0.2.0');
    assert.ok(text(old).endsWith(`,"stateCounter":"4","stateDigest":"${D}"}`));
    assert.equal('stateKeyVersion' in parseAttestationRequest(old, '0.2.0'), false);
    for (const bad of ['0', '-1', '1.0', '"2"', '4294967296', 'true']) {
      const t = text(n).replace('"stateKeyVersion":null', `"stateKeyVersion":${bad}`);
      assert.throws(() => parseAttestationRequest(utf8(t), '0.2.0'), isMalformed, bad);
    }
    // 0.1.0 has no such field, in either direction.
    const v1 = text(encodeAttestationRequest(base, '0.1.0')).replace(/}$/, ',"stateKeyVersion":1}');
    throwsCode(() => parseAttestationRequest(utf8(v1), '0.1.0'), 'ERR_MALFORMED', 'aproxy.field.unknown');
    throwsCode(
      () => encodeAttestationRequest({ ...base, stateKeyVersion: 1 }, '0.1.0'),
      'ERR_INVALID_ARGUMENT',
      'aproxy.encode.state_key_version',
    );
  });

  it('Heartbeat and End requests: version [0,2,0], op, boot id, commit token, nonce', () => {
    const hb = encodeLeaseRequest({
      op: 'heartbeat',
      bootId: 'boot-1',
      commitToken: fill(32, 0xaa),
      nonce: fill(16, 0xbb),
    });
    assert.equal(
      text(hb),
      `{"version":[0,2,0],"op":"heartbeat","bootId":"boot-1","commitToken":"${'qqqq'.repeat(10)}qqo=",` +
        `"nonce":"${'u7u7'.repeat(5)}uw=="}`,
    );
    assert.deepEqual(parseLeaseRequest(hb), {
      version: [0, 2, 0],
      op: 'heartbeat',
      bootId: 'boot-1',
      commitToken: fill(32, 0xaa),
      nonce: fill(16, 0xbb),
    });
    const end = encodeLeaseRequest({ op: 'end', bootId: 'b', commitToken: fill(16, 1), nonce: fill(16, 2) });
    assert.ok(text(end).startsWith('{"version":[0,2,0],"op":"end","bootId":"b",'));
    const t = text(hb);
    for (const [bad, reason] of [
      [t.replace('"heartbeat"', '"renew"'), 'aproxy.field.value'],
      [t.replace('"boot-1"', '"boot 1"'), 'aproxy.field.value'],
      [t.replace(`"nonce":"${'u7u7'.repeat(5)}uw=="`, '"nonce":"AAAA"'), 'aproxy.field.length'],
      [t.replace(',"nonce"', ',"tee":"snp","nonce"'), 'aproxy.field.unknown'],
      [t.replace(/,"nonce":"[^"]*"/, ''), 'aproxy.field.missing'],
    ] as const) {
      throwsCode(() => parseLeaseRequest(utf8(bad)), 'ERR_MALFORMED', reason);
    }
    throwsCode(
      () =>
        encodeLeaseRequest({ op: 'heartbeat', bootId: 'b', commitToken: fill(16, 1), nonce: fill(15, 2) }),
      'ERR_INVALID_ARGUMENT',
      'aproxy.encode.length',
    );
  });

  it('LeaseResponse: heartbeat carries the expiry, end null; both a signature or null; or an ErrorReply', () => {
    const sig = fill(96, 8);
    const hb = encodeLeaseResponse({ op: 'heartbeat', leaseExpiresAt: 1700000000123, signature: sig });
    assert.equal(
      text(hb),
      `{"success":true,"op":"heartbeat","leaseExpiresAt":1700000000123,"signature":"${'CAgI'.repeat(32)}"}`,
    );
    assert.deepEqual(parseLeaseResponse(hb, 'heartbeat'), {
      success: true,
      op: 'heartbeat',
      leaseExpiresAt: 1700000000123,
      signature: sig,
    });
    const end = encodeLeaseResponse({ op: 'end', leaseExpiresAt: null, signature: null });
    assert.equal(text(end), '{"success":true,"op":"end","leaseExpiresAt":null,"signature":null}');
    assert.deepEqual(parseLeaseResponse(end, 'end'), {
      success: true,
      op: 'end',
      leaseExpiresAt: null,
      signature: null,
    });
    // An answer for another op, a missing expiry, a fractional one: refused.
    throwsCode(() => parseLeaseResponse(end, 'heartbeat'), 'ERR_MALFORMED', 'aproxy.field.value');
    throwsCode(() => parseLeaseResponse(hb, 'end'), 'ERR_MALFORMED', 'aproxy.field.value');
    for (const bad of ['null', '1.5', '-1', '"1"', '9007199254740992']) {
      const t = text(hb).replace('1700000000123', bad);
      assert.throws(() => parseLeaseResponse(utf8(t), 'heartbeat'), isMalformed, bad);
    }
    const err = encodeErrorReply({ code: 'ERR_REFUSED', reason: 'broker.boot_unknown', message: 'x' });
    assert.deepEqual(parseLeaseResponse(err, 'heartbeat'), parseErrorReply(err));
    throwsCode(
      () => encodeLeaseResponse({ op: 'end', leaseExpiresAt: 5, signature: null }),
      'ERR_INVALID_ARGUMENT',
      'aproxy.encode.lease',
    );
  });

  it('the opening message is a lease request exactly when it has an "op" field', () => {
    const neg020 = parseOpeningMessage(utf8('{"version":[0,2,0],"tee":"snp"}'));
    assert.equal(neg020.kind, 'negotiation');
    const neg010 = parseOpeningMessage(encodeNegotiationRequest({ version: [0, 1, 0], tee: 'snp' }));
    assert.deepEqual(neg010, { kind: 'negotiation', request: { version: [0, 1, 0], tee: 'snp' } });
    const lease = parseOpeningMessage(
      encodeLeaseRequest({ op: 'end', bootId: 'b', commitToken: fill(16, 1), nonce: fill(16, 2) }),
    );
    assert.equal(lease.kind, 'lease');
    // A NegotiationRequest with an op is neither: refused (the tee field is unknown to a lease request).
    throwsCode(
      () => parseOpeningMessage(utf8('{"version":[0,1,0],"tee":"snp","op":"end"}')),
      'ERR_MALFORMED',
      'aproxy.field.unknown',
    );
    // What aproxy 0.1.0 (serde, struct NegotiationRequest {version, tee}) sees in a lease request: no `tee`,
    // which our strict NegotiationRequest parser refuses just as serde does ("missing field").
    const asNegotiation = text(
      encodeLeaseRequest({ op: 'heartbeat', bootId: 'b', commitToken: fill(16, 1), nonce: fill(16, 2) }),
    );
    assert.throws(() => parseNegotiationRequest(utf8(asNegotiation)), isMalformed);
  });
});
