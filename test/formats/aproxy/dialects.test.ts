/**
 * Codecs of svsm PR #1122 and PR #1203 (docs/protocol.md "Dialects"): round trips, the REPORT_DATA rules
 * against independently written expectations, and hostile input (truncated, oversized, wrong types, deep
 * nesting, another dialect's message), each a typed error.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { sniffDialect } from '../../../src/formats/aproxy/dialect.js';
import {
  computeDialectReportData,
  JWS_SHA384,
  RAW_SHA512,
} from '../../../src/formats/aproxy/dialect-binding.js';
import { encodeNegotiationResponse } from '../../../src/formats/aproxy/negotiation.js';
import {
  encodeAttestationRequest1122,
  encodeNegotiationResponse1122,
  parseAttestationRequest1122,
  parseNegotiationResponse1122,
} from '../../../src/formats/aproxy/pr1122.js';
import {
  encodeConfigResponse,
  encodeProxyRequest,
  encodeProxyResponse,
  parseConfigResponse,
  parseProxyRequest,
  parseProxyResponse,
  stringifyJsonValue,
} from '../../../src/formats/aproxy/pr1203.js';
import { throwsCode } from '../../helpers/assert-error.js';

const M = 'ERR_MALFORMED';
const b = (s: string) => new Uint8Array(Buffer.from(s, 'utf8'));
const key = { x: new Uint8Array(66).fill(0x01), y: new Uint8Array(66).fill(0x02) };
const challenge = new Uint8Array(32).fill(0xdd);
const cfg = {
  ...JWS_SHA384,
  authEndpoint: '/kbs/v0/auth',
  attestEndpoint: '/kbs/v0/attest',
  resourceEndpoint: '/kbs/v0/resource/default/sample/test',
};

describe('REPORT_DATA of the proposals', () => {
  it("RawBinary SHA-512 is main's SHA-512(x || y || challenge)", () => {
    const want = createHash('sha512').update(key.x).update(key.y).update(challenge).digest();
    assert.deepEqual(Buffer.from(computeDialectReportData(RAW_SHA512, challenge, key)), want);
  });
  it('JwsJson SHA-384 hashes the sorted runtime-data JSON, zero-padded to 64 bytes', () => {
    const x = Buffer.from(key.x).toString('base64url');
    const y = Buffer.from(key.y).toString('base64url');
    const text = `{"additional-evidence":"","nonce":"${Buffer.from(challenge).toString('base64')}","tee-pubkey":{"alg":"ECDH-ES+A256KW","crv":"P-521","kty":"EC","x":"${x}","y":"${y}"}}`;
    const want = Buffer.concat([createHash('sha384').update(text).digest(), Buffer.alloc(16)]);
    assert.deepEqual(Buffer.from(computeDialectReportData(JWS_SHA384, challenge, key)), want);
  });
  it('SHA-256 RawBinary pads 32 bytes; PR #1203 legacy params change the order', () => {
    const rd = computeDialectReportData({ hashAlgo: 'sha256', payloadFormat: 'RawBinary' }, challenge, key, [
      'Challenge',
      'EcPublicKeyBytes',
    ]);
    const want = createHash('sha256').update(challenge).update(key.x).update(key.y).digest();
    assert.deepEqual(Buffer.from(rd.subarray(0, 32)), want);
    assert.deepEqual(rd.subarray(32), new Uint8Array(32));
  });
});

describe('PR #1122 messages', () => {
  it('round-trip, with the capitalised hash_algo spelling', () => {
    const bytes = encodeNegotiationResponse1122({ challenge, ...RAW_SHA512 });
    assert.match(Buffer.from(bytes).toString(), /"hash_algo":"Sha512","payload_format":"RawBinary"/);
    assert.deepEqual(parseNegotiationResponse1122(bytes), { challenge, ...RAW_SHA512 });
    const req = { tee: 'snp' as const, evidence: { report: new Uint8Array(1184).fill(3) }, challenge, key };
    const rb = encodeAttestationRequest1122(req);
    assert.match(Buffer.from(rb).toString(), /"Snp":\{"attestation_report":/);
    assert.deepEqual(parseAttestationRequest1122(rb), req);
  });
  it('hostile input is a typed error', () => {
    const c = Buffer.from(challenge).toString('base64');
    throwsCode(
      () =>
        parseNegotiationResponse1122(
          b(`{"challenge":"${c}","hash_algo":"sha512","payload_format":"RawBinary"}`),
        ),
      M,
      'aproxy.field.value',
    );
    throwsCode(
      () =>
        parseNegotiationResponse1122(b(`{"challenge":"${c}","hash_algo":"Sha512","payload_format":"Jws"}`)),
      M,
      'aproxy.field.value',
    );
    throwsCode(
      () => parseNegotiationResponse1122(b(`{"challenge":"${c}","hash_algo":5,"payload_format":"JwsJson"}`)),
      M,
      'aproxy.field.type',
    );
    throwsCode(
      () => parseNegotiationResponse1122(b(`{"challenge":"${c}","hash_algo":"Sha512"}`)),
      M,
      'aproxy.field.missing',
    );
    throwsCode(
      () => parseNegotiationResponse1122(b(`{"challenge":"${c}","hash_algo":"Sha5`)),
      M,
      'aproxy.json.syntax',
    );
    throwsCode(
      () =>
        parseNegotiationResponse1122(
          b(`{"challenge":"${'A'.repeat(4096)}","hash_algo":"Sha512","payload_format":"JwsJson"}`),
        ),
      M,
      'aproxy.field.length',
    );
    throwsCode(
      () => parseNegotiationResponse1122(b(`${'['.repeat(40)}${']'.repeat(40)}`)),
      M,
      'aproxy.json.depth',
    );
    // main's AttestationRequest (evidence.Snp.report) is not PR #1122's: its report field is missing.
    throwsCode(
      () =>
        parseAttestationRequest1122(
          b(`{"tee":"snp","evidence":{"Snp":{"report":"AAAA"}},"challenge":"AAAA","key":{"x":"","y":""}}`),
        ),
      M,
      'aproxy.field.missing',
    );
  });
});

describe('PR #1203 messages', () => {
  it('round-trip, with the lower-case hash_algo spelling', () => {
    const bytes = encodeConfigResponse(cfg);
    assert.match(Buffer.from(bytes).toString(), /^\{"hash_algo":"sha384","payload_format":"JwsJson"/);
    assert.deepEqual(parseConfigResponse(bytes), cfg);
    const req = parseProxyRequest(
      encodeProxyRequest({ endpoint: '/kbs/v0/attest', method: 'POST', body: { a: [1, 2.5e3, null, true] } }),
    );
    assert.equal(stringifyJsonValue(req.body), '{"a":[1,2500,null,true]}');
    assert.deepEqual(parseProxyResponse(encodeProxyResponse({ status: 401, body: 'x' })), {
      status: 401,
      body: 'x',
    });
  });
  it('hostile input is a typed error', () => {
    throwsCode(
      () =>
        parseConfigResponse(b(Buffer.from(encodeConfigResponse(cfg)).toString().replace('sha384', 'Sha384'))),
      M,
      'aproxy.field.value',
    );
    throwsCode(
      () =>
        parseConfigResponse(
          b(Buffer.from(encodeConfigResponse(cfg)).toString().replace('/kbs/v0/auth', 'http://evil/x')),
        ),
      M,
      'aproxy.field.value',
    );
    throwsCode(
      () => parseProxyRequest(b('{"endpoint":"/kbs/v0/../x","method":"GET","body":null}')),
      M,
      'aproxy.field.value',
    );
    throwsCode(
      () => parseProxyRequest(b('{"endpoint":"/kbs/v0/auth","method":"DELETE","body":null}')),
      M,
      'aproxy.field.value',
    );
    throwsCode(
      () => parseProxyRequest(b('{"endpoint":"/kbs/v0/auth","method":"GET"}')),
      M,
      'aproxy.field.missing',
    );
    throwsCode(
      () =>
        parseProxyRequest(b(`{"endpoint":"/a","method":"POST","body":${'['.repeat(40)}${']'.repeat(40)}}`)),
      M,
      'aproxy.json.depth',
    );
    throwsCode(
      () => parseProxyRequest(b(`{"endpoint":"/${'a'.repeat(300)}","method":"GET","body":null}`)),
      M,
      'aproxy.field.length',
    );
    throwsCode(() => parseProxyResponse(b('{"status":"200","body":""}')), M, 'aproxy.field.type');
    throwsCode(() => parseProxyResponse(b('{"status":70000,"body":""}')), M, 'aproxy.field.value');
    throwsCode(
      () => parseProxyResponse(b(`{"status":200,"body":"${'x'.repeat(300_000)}"}`)),
      M,
      'aproxy.field.length',
    );
    throwsCode(() => parseProxyResponse(b('{"status":200,"bo')), M, 'aproxy.json.syntax');
  });
});

describe('sniffDialect', () => {
  it("names each dialect's replies and second messages, and nothing for junk", () => {
    assert.equal(
      sniffDialect(encodeNegotiationResponse({ challenge, params: ['Challenge'] }, '0.1.0')),
      'main',
    );
    assert.equal(sniffDialect(encodeNegotiationResponse1122({ challenge, ...RAW_SHA512 })), 'pr1122');
    assert.equal(sniffDialect(encodeConfigResponse(cfg)), 'pr1203');
    assert.equal(sniffDialect(encodeProxyRequest({ endpoint: '/a', method: 'GET', body: null })), 'pr1203');
    assert.equal(
      sniffDialect(
        encodeAttestationRequest1122({ tee: 'snp', evidence: { report: new Uint8Array(4) }, challenge, key }),
      ),
      'pr1122',
    );
    for (const junk of ['', '[', '[]', '{"evidence":5}', '\u0000'])
      assert.equal(sniffDialect(b(junk)), undefined);
  });
});
