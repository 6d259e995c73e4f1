import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { computeReportData } from '../../src/formats/aproxy/report-data.js';
import {
  aproxyReportData,
  bindingCandidates,
  canonicalJson,
  matchBinding,
  regularize,
  trusteeReportData,
  trusteeRuntimeData,
} from '../../src/kbs/binding.js';
import { parseTeePubkey } from '../../src/kbs/tee-pubkey.js';
import { newKeyPairSync } from '../../src/util/key-pair.js';
import { throwsCode } from '../helpers/assert-error.js';
import { canon } from './independent-client.js';

function ecKey(crv: 'P-256' | 'P-521') {
  const { publicKey } = newKeyPairSync('ec', { namedCurve: crv });
  const j = publicKey.export({ format: 'jwk' });
  return parseTeePubkey({ kty: 'EC', crv, alg: 'ECDH-ES+A256KW', x: j.x, y: j.y });
}

describe('Trustee binding: canonical JSON, SHA-384, zero-padded to 64 bytes', () => {
  it("reproduces Trustee's own test vector (attestation-service lib.rs parse_runtimedata_json_binding)", () => {
    // {"b": 1, "a": "test", "c": {"d": "e"}} hashed with SHA-384 after canonicalization.
    const canonical = canonicalJson({ b: 1, a: 'test', c: { d: 'e' } });
    assert.equal(canonical, '{"a":"test","b":1,"c":{"d":"e"}}');
    assert.equal(
      createHash('sha384').update(canonical).digest('hex'),
      'e71ce8e70d814ba6639c3612ebee0ff1f76f650f8dbb5e47157e0f3f525cd22c4597480a186427c813ca941da78870c3',
    );
  });

  it('hashes {additional-evidence, nonce, tee-pubkey} with the JWK members kbs_types keeps', () => {
    const tee = ecKey('P-256');
    const rd = trusteeRuntimeData('bm9uY2U=', tee, '');
    const expectedJson = `{"additional-evidence":"","nonce":"bm9uY2U=","tee-pubkey":{"alg":"ECDH-ES+A256KW","crv":"P-256","kty":"EC","x":"${tee.jwk.kty === 'EC' ? tee.jwk.x : ''}","y":"${tee.jwk.kty === 'EC' ? tee.jwk.y : ''}"}}`;
    assert.equal(canonicalJson(rd), expectedJson);
    const out = trusteeReportData(rd);
    assert.equal(out.length, 64);
    assert.deepEqual(out.subarray(0, 48), new Uint8Array(createHash('sha384').update(expectedJson).digest()));
    assert.deepEqual(out.subarray(48), new Uint8Array(16));
  });

  it('regularize pads with zeros or truncates, as Trustee regularize_data', () => {
    assert.deepEqual(regularize(new Uint8Array([1, 2]), 4), new Uint8Array([1, 2, 0, 0]));
    assert.deepEqual(regularize(new Uint8Array([1, 2, 3, 4, 5]), 4), new Uint8Array([1, 2, 3, 4]));
  });

  it('canonicalJson sorts nested keys, escapes like JSON, and refuses what has no canonical form', () => {
    assert.equal(
      canonicalJson({ z: [{ b: 1, a: null }], a: 'x"\n\u0001' }),
      '{"a":"x\\"\\n\\u0001","z":[{"a":null,"b":1}]}',
    );
    assert.equal(canonicalJson({ é: 1, e: 2 }), '{"e":2,"é":1}');
    throwsCode(() => canonicalJson({ a: Number.NaN }), 'ERR_INVALID_ARGUMENT', 'kbs.canonical_json');
    throwsCode(() => canonicalJson('\uD800'), 'ERR_INVALID_ARGUMENT', 'kbs.canonical_json');
    throwsCode(() => canonicalJson({ a: undefined }), 'ERR_INVALID_ARGUMENT', 'kbs.canonical_json');
  });

  it('agrees with the independent client on arbitrary JSON without numbers', () => {
    fc.assert(
      fc.property(
        fc.jsonValue().filter((v) => !JSON.stringify(v).match(/[0-9]\.|e[+-]?[0-9]/i)),
        (v) => {
          assert.equal(canonicalJson(v), canon(v));
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('aproxy binding: SHA-512(x || y || nonce)', () => {
  it('equals the SVSM computation for params [EcPublicKeyBytes, Challenge] (formats/aproxy)', () => {
    const tee = ecKey('P-521');
    const nonce = new Uint8Array(32).fill(0xab);
    assert.deepEqual(
      aproxyReportData(tee.point!, nonce),
      computeReportData(['EcPublicKeyBytes', 'Challenge'], { challenge: nonce, key: tee.point! }),
    );
  });

  it('candidates: both rules for EC keys, Trustee only for RSA; matchBinding picks the equal one', () => {
    const tee = ecKey('P-521');
    const nonce = new Uint8Array(32).fill(1);
    const nonceStr = Buffer.from(nonce).toString('base64');
    const c = bindingCandidates(nonceStr, nonce, tee, '');
    assert.deepEqual(
      c.map((x) => x.name),
      ['trustee-jcs-sha384', 'aproxy-sha512'],
    );
    assert.equal(matchBinding(c[1]!.reportData, c)?.name, 'aproxy-sha512');
    assert.equal(matchBinding(c[0]!.reportData, c)?.name, 'trustee-jcs-sha384');
    assert.equal(matchBinding(new Uint8Array(64), c), undefined);
    const { publicKey } = newKeyPairSync('rsa', { modulusLength: 2048 });
    const j = publicKey.export({ format: 'jwk' });
    const rsa = parseTeePubkey({ kty: 'RSA', alg: 'RSA-OAEP-256', n: j.n, e: j.e });
    assert.deepEqual(
      bindingCandidates(nonceStr, nonce, rsa, '').map((x) => x.name),
      ['trustee-jcs-sha384'],
    );
  });

  it('a different nonce or key changes every candidate', () => {
    const tee = ecKey('P-521');
    const other = ecKey('P-521');
    const n1 = new Uint8Array(32).fill(1);
    const n2 = new Uint8Array(32).fill(2);
    const s = (n: Uint8Array) => Buffer.from(n).toString('base64');
    const base = bindingCandidates(s(n1), n1, tee, '');
    for (const changed of [bindingCandidates(s(n2), n2, tee, ''), bindingCandidates(s(n1), n1, other, '')]) {
      for (const c of changed) assert.equal(matchBinding(c.reportData, base), undefined);
    }
  });
});
