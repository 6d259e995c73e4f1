import assert from 'node:assert/strict';

import { describe, it } from 'node:test';
import { calculateJwkThumbprint, createLocalJWKSet, jwtVerify, SignJWT } from 'jose';
import {
  buildSnpEar,
  EAR_PROFILE,
  EarTokens,
  MAX_UNPRESENTED_TOKENS,
  readSnpEarSubject,
  type SnpEarInput,
  signJwt,
  snpTrustVector,
  statusOfTier,
  statusOfVector,
  TokenKeyRing,
  verifyJwt,
} from '../../../src/kbs/tokens/index.js';
import { newKeyPairSync } from '../../../src/util/key-pair.js';
import { throwsCode } from '../../helpers/assert-error.js';

/** Group orders n of P-256 and P-384 (SEC 2 v2 §2.4.2, §2.5.1), by the width of r and s. */
const ORDER: Record<number, bigint> = {
  32: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
  48: 0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
};

/** The token with the low-S or the high-S one of the two valid s values (s and n - s) of its signature. */
function withS(token: string, form: 'low' | 'high'): string {
  const [h, p, sig] = token.split('.') as [string, string, string];
  const raw = Buffer.from(sig, 'base64url');
  const w = raw.length / 2;
  const n = ORDER[w]!;
  const s = BigInt(`0x${raw.subarray(w).toString('hex')}`);
  const low = s <= n >> 1n;
  const want = (form === 'low') === low ? s : n - s;
  const out = Buffer.concat([raw.subarray(0, w), Buffer.from(want.toString(16).padStart(w * 2, '0'), 'hex')]);
  return `${h}.${p}.${out.toString('base64url')}`;
}

const input = (): Omit<SnpEarInput, 'issuer' | 'verifierId' | 'issuedAt' | 'lifetimeMs'> => ({
  jti: 'grant-1',
  nonce: 'bm9uY2U=',
  identity: {
    brokerInstanceId: 'i-1',
    project: 'p',
    zone: 'z',
    instanceId: '42',
    instanceName: 'vm',
    source: 'registry',
  },
  snp: { measurement: 'aa'.repeat(48), tee: 'snp' },
  reportData: '00'.repeat(64),
  runtimeData: { nonce: 'bm9uY2U=', 'tee-pubkey': { kty: 'EC' } },
  binding: 'trustee-jcs-sha384',
  policyId: 'vouchsafe:instance-policy/i-1',
  appraisal: { measurementChecked: true, debugAllowed: false },
});

describe('EAR claims', () => {
  it('AR4SI tiers and the worst-tier status', () => {
    const cases: [number, string][] = [
      [0, 'none'],
      [1, 'none'],
      [-1, 'none'],
      [2, 'affirming'],
      [31, 'affirming'],
      [-32, 'affirming'],
      [32, 'warning'],
      [95, 'warning'],
      [-33, 'warning'],
      [96, 'contraindicated'],
      [127, 'contraindicated'],
      [-97, 'contraindicated'],
      [128, 'contraindicated'],
      [1.5, 'contraindicated'],
    ];
    for (const [v, s] of cases) assert.equal(statusOfTier(v), s, `tier of ${v}`);
    assert.equal(statusOfVector({}), 'none');
    assert.equal(statusOfVector({ hardware: 2, configuration: 32 }), 'warning');
    assert.equal(statusOfVector({ hardware: 2, 'runtime-opaque': 96 }), 'contraindicated');
  });

  it('SNP trust vector: executables only when measurement was checked; debug is contraindicated', () => {
    assert.deepEqual(snpTrustVector({ measurementChecked: false, debugAllowed: false }), {
      'instance-identity': 2,
      configuration: 2,
      hardware: 2,
      'runtime-opaque': 2,
    });
    const dbg = snpTrustVector({ measurementChecked: true, debugAllowed: true });
    assert.equal(dbg.executables, 3);
    assert.equal(dbg['runtime-opaque'], 96);
    assert.equal(statusOfVector(dbg), 'contraindicated');
  });

  it('buildSnpEar: profile, times in seconds, one cpu0 submodule with evidence and identity', () => {
    const c = buildSnpEar({
      ...input(),
      issuer: 'iss',
      verifierId: { build: 'b', developer: 'd' },
      issuedAt: 1_700_000_000_500,
      lifetimeMs: 300_000,
    });
    assert.equal(c.eat_profile, EAR_PROFILE);
    assert.equal(c.iat, 1_700_000_000);
    assert.equal(c.exp, 1_700_000_300);
    assert.equal(c.eat_nonce, 'bm9uY2U=');
    assert.deepEqual(Object.keys(c.submods), ['cpu0']);
    assert.equal(c.submods.cpu0?.['ear.status'], 'affirming');
  });
});

describe('token key ring', () => {
  it('kid is the RFC 7638 thumbprint (checked with jose); ES256 and ES384 keys', async () => {
    for (const alg of ['ES256', 'ES384'] as const) {
      const ring = await TokenKeyRing.generate({ alg, maxTokenLifetimeMs: 60_000 });
      const k = ring.current;
      assert.equal(k.alg, alg);
      assert.equal(
        k.kid,
        await calculateJwkThumbprint({ kty: 'EC', crv: k.jwk.crv, x: k.jwk.x, y: k.jwk.y }),
      );
      assert.deepEqual(Object.keys(ring.jwks().keys[0]!).sort(), [
        'alg',
        'crv',
        'kid',
        'kty',
        'use',
        'x',
        'y',
      ]);
    }
  });

  it('rotation: the new key signs; the old stays published until its last token can have expired', async () => {
    let t = 1_000_000;
    const ring = await TokenKeyRing.generate({
      maxTokenLifetimeMs: 60_000,
      clockSkewMs: 5_000,
      now: () => t,
    });
    const old = ring.current;
    const oldToken = signJwt(old, { iss: 'x', iat: t / 1000, exp: t / 1000 + 60 });
    const fresh = await ring.rotate();
    assert.notEqual(fresh.kid, old.kid);
    assert.equal(ring.current.kid, fresh.kid);
    assert.deepEqual(
      ring.jwks().keys.map((k) => k.kid),
      [fresh.kid, old.kid],
    );
    // Verifiable by jose from the JWKS alone.
    await jwtVerify(oldToken, createLocalJWKSet(ring.jwks()), { currentDate: new Date(t) });
    t += 64_999;
    assert.ok(ring.find(old.kid));
    t += 1;
    assert.equal(ring.find(old.kid), undefined);
    assert.deepEqual(
      ring.jwks().keys.map((k) => k.kid),
      [fresh.kid],
    );
  });

  it('fromKeys: the last key signs; refuses keys that are not P-256/P-384 private keys', () => {
    const a = newKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const b = newKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
    const ring = TokenKeyRing.fromKeys([a, b], { maxTokenLifetimeMs: 1000 });
    assert.equal(ring.current.alg, 'ES384');
    assert.equal(ring.jwks().keys.length, 2);
    throwsCode(
      () =>
        TokenKeyRing.fromKeys([newKeyPairSync('ec', { namedCurve: 'P-521' }).privateKey], {
          maxTokenLifetimeMs: 1000,
        }),
      'ERR_INVALID_ARGUMENT',
      'token.key',
    );
    throwsCode(
      () =>
        TokenKeyRing.fromKeys([newKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey], {
          maxTokenLifetimeMs: 1000,
        }),
      'ERR_INVALID_ARGUMENT',
      'token.key',
    );
    throwsCode(
      () => TokenKeyRing.fromKeys([], { maxTokenLifetimeMs: 1000 }),
      'ERR_INVALID_ARGUMENT',
      'token.key',
    );
  });
});

describe('JWT sign/verify', () => {
  it('interoperates with jose both ways', async () => {
    const ring = await TokenKeyRing.generate({ alg: 'ES384', maxTokenLifetimeMs: 60_000 });
    const now = Math.floor(Date.now() / 1000);
    const ours = signJwt(ring.current, { iss: 'me', iat: now, exp: now + 60, x: 1 });
    const { payload } = await jwtVerify(ours, createLocalJWKSet(ring.jwks()), { issuer: 'me' });
    assert.equal(payload.x, 1);
    const theirs = await new SignJWT({ y: 2 })
      .setProtectedHeader({ alg: 'ES384', kid: ring.current.kid })
      .setIssuer('me')
      .setIssuedAt(now)
      .setExpirationTime(now + 60)
      .sign(ring.current.privateKey!);
    // jose keeps whichever s OpenSSL returned; we accept only the low-S form of a signature.
    const o = { findKey: (k: string) => ring.find(k), now: Date.now(), issuer: 'me' };
    const v = verifyJwt(withS(theirs, 'low'), o);
    assert.equal(v.payload.y, 2);
    throwsCode(() => verifyJwt(withS(theirs, 'high'), o), 'ERR_SIGNATURE_INVALID', 'token.signature_high_s');
  });

  it("refuses the high-S twin of a real token (s' = n - s), which jose and node:crypto accept", async () => {
    for (const alg of ['ES256', 'ES384'] as const) {
      const ring = await TokenKeyRing.generate({ alg, maxTokenLifetimeMs: 60_000 });
      const now = Date.now();
      const s = Math.floor(now / 1000);
      const o = { findKey: (k: string) => ring.find(k), now, issuer: 'me' };
      // Every token we sign is low-S (OpenSSL alone would give high-S about half the time).
      for (let i = 0; i < 32; i++) {
        const t = signJwt(ring.current, { iss: 'me', iat: s, exp: s + 60, i });
        assert.equal(withS(t, 'low'), t, `${alg} token ${i} is low-S`);
        assert.equal(verifyJwt(t, o).payload.i, i);
      }
      const token = signJwt(ring.current, { iss: 'me', iat: s, exp: s + 60 });
      const twin = withS(token, 'high');
      assert.notEqual(twin, token);
      // The twin is a valid ECDSA signature over the same bytes: a general-purpose verifier takes it.
      const { payload } = await jwtVerify(twin, createLocalJWKSet(ring.jwks()), { issuer: 'me' });
      assert.equal(payload.iss, 'me');
      throwsCode(() => verifyJwt(twin, o), 'ERR_SIGNATURE_INVALID', 'token.signature_high_s');
      const tokens = new EarTokens({ keys: ring, issuer: 'me', lifetimeMs: 60_000 });
      const ear = tokens.issueSnp(input()).token;
      throwsCode(() => tokens.verify(withS(ear, 'high')), 'ERR_SIGNATURE_INVALID', 'token.signature_high_s');
      assert.equal(tokens.verify(ear).eat_profile, EAR_PROFILE);
    }
  });

  it('refuses each kind of bad token with its reason', async () => {
    const ring = await TokenKeyRing.generate({ maxTokenLifetimeMs: 60_000 });
    const other = await TokenKeyRing.generate({ maxTokenLifetimeMs: 60_000 });
    const now = Date.now();
    const s = Math.floor(now / 1000);
    const o = { findKey: (k: string) => ring.find(k), now, issuer: 'me' };
    const good = signJwt(ring.current, { iss: 'me', iat: s, exp: s + 60 });
    const [h, p, sig] = good.split('.') as [string, string, string];
    const enc = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url');
    throwsCode(
      () => verifyJwt(`${enc({ alg: 'none', kid: ring.current.kid })}.${p}.`, o),
      'ERR_SIGNATURE_INVALID',
      'token.alg',
    );
    throwsCode(
      () => verifyJwt(`${enc({ alg: 'ES384', kid: ring.current.kid })}.${p}.${sig}`, o),
      'ERR_SIGNATURE_INVALID',
      'token.alg',
    );
    throwsCode(
      () => verifyJwt(`${enc({ alg: 'ES256', kid: ring.current.kid, crit: ['x'] })}.${p}.${sig}`, o),
      'ERR_SIGNATURE_INVALID',
      'token.alg',
    );
    throwsCode(
      () => verifyJwt(`${enc({ alg: 'ES256' })}.${p}.${sig}`, o),
      'ERR_SIGNATURE_INVALID',
      'token.kid',
    );
    throwsCode(
      () => verifyJwt(signJwt(other.current, { iss: 'me', iat: s, exp: s + 60 }), o),
      'ERR_SIGNATURE_INVALID',
      'token.kid',
    );
    throwsCode(
      () => verifyJwt(`${h}.${enc({ iss: 'me', iat: s, exp: s + 6000 })}.${sig}`, o),
      'ERR_SIGNATURE_INVALID',
      'token.signature',
    );
    throwsCode(
      () => verifyJwt(signJwt(ring.current, { iss: 'me', iat: s - 100, exp: s - 1 }), o),
      'ERR_INVALID_ARGUMENT',
      'token.expired',
    );
    throwsCode(
      () => verifyJwt(signJwt(ring.current, { iss: 'me', iat: s, exp: s + 60, nbf: s + 30 }), o),
      'ERR_INVALID_ARGUMENT',
      'token.not_yet_valid',
    );
    throwsCode(
      () => verifyJwt(signJwt(ring.current, { iss: 'you', iat: s, exp: s + 60 }), o),
      'ERR_INVALID_ARGUMENT',
      'token.issuer',
    );
    throwsCode(() => verifyJwt('a.b', o), 'ERR_MALFORMED', 'token.format');
    throwsCode(() => verifyJwt(`${h}.${p}.${sig}=`, o), 'ERR_MALFORMED', 'token.format');
    // The same signature bytes spelled with set trailing bits: Buffer's decoder takes it, ours must not
    // (low-S makes one signature per token; a second spelling would undo that).
    const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    assert.equal(sig.length % 4, 2); // ES256: 64 bytes, so the last symbol carries 4 unused bits
    const respelled = sig.slice(0, -1) + ALPHABET[ALPHABET.indexOf(sig.at(-1)!) | 1];
    assert.deepEqual(Buffer.from(respelled, 'base64url'), Buffer.from(sig, 'base64url'));
    throwsCode(() => verifyJwt(`${h}.${p}.${respelled}`, o), 'ERR_MALFORMED', 'token.format');
    throwsCode(() => verifyJwt(42, o), 'ERR_MALFORMED', 'token.format');
    throwsCode(() => verifyJwt('x'.repeat(70_000), o), 'ERR_MALFORMED', 'token.format');
    assert.equal(verifyJwt(good, o).payload.iss, 'me');
  });
});

describe('EarTokens', () => {
  it('issues an EAR that verifies and yields the resource subject', async () => {
    const keys = await TokenKeyRing.generate({ maxTokenLifetimeMs: 300_000 });
    const tokens = new EarTokens({ keys, issuer: 'https://broker' });
    const { token, claims } = tokens.issueSnp(input());
    const verified = tokens.verify(token);
    assert.deepEqual(verified, JSON.parse(JSON.stringify(claims)));
    const subj = readSnpEarSubject(verified);
    assert.equal(subj.jti, 'grant-1');
    assert.equal(subj.identity.project, 'p');
    assert.equal(subj.measurement, 'aa'.repeat(48));
    assert.equal(subj.status, 'affirming');
    assert.deepEqual(subj.teePubkey, { kty: 'EC' });
    const { payload } = await jwtVerify(token, createLocalJWKSet(tokens.jwks()), {
      issuer: 'https://broker',
    });
    assert.equal(payload.jti, 'grant-1');
  });

  it('takes its own token on first presentation without the signature check, as full verification would', async () => {
    let now = Date.now();
    const keys = await TokenKeyRing.generate({ maxTokenLifetimeMs: 60_000, now: () => now });
    const tokens = new EarTokens({ keys, issuer: 'https://broker', lifetimeMs: 60_000, now: () => now });
    // The same ring and issuer but nothing remembered: every verification is the full one.
    const fresh = () => new EarTokens({ keys, issuer: 'https://broker', lifetimeMs: 60_000, now: () => now });
    const { token } = tokens.issueSnp(input());
    assert.equal(tokens.unpresentedTokens(), 1);
    assert.deepEqual(tokens.verify(token), fresh().verify(token));
    assert.equal(tokens.unpresentedTokens(), 0); // forgotten once presented: the next one is verified in full
    assert.deepEqual(tokens.verify(token), fresh().verify(token));

    // Its times are checked all the same.
    const late = tokens.issueSnp(input()).token;
    now += 60_001;
    throwsCode(() => tokens.verify(late), 'ERR_INVALID_ARGUMENT', 'token.expired');
    assert.equal(tokens.unpresentedTokens(), 0);

    // A key no longer published: refused as the full check refuses it (rotated, then retired long enough).
    const orphan = tokens.issueSnp(input()).token;
    await keys.rotate();
    now += 10 * 60_000;
    throwsCode(() => tokens.verify(orphan), 'ERR_SIGNATURE_INVALID', 'token.kid');

    // Bounded: the oldest are forgotten (and verified in full when they come).
    const first = tokens.issueSnp(input()).token;
    for (let i = 0; i < MAX_UNPRESENTED_TOKENS + 10; i++) tokens.issueSnp(input());
    assert.equal(tokens.unpresentedTokens(), MAX_UNPRESENTED_TOKENS);
    assert.equal(readSnpEarSubject(tokens.verify(first)).jti, 'grant-1');
  });

  it('refuses a lifetime longer than the ring keeps retired keys, and non-EAR tokens', async () => {
    const keys = await TokenKeyRing.generate({ maxTokenLifetimeMs: 60_000 });
    throwsCode(
      () => new EarTokens({ keys, issuer: 'x', lifetimeMs: 60_001 }),
      'ERR_INVALID_ARGUMENT',
      'token.config',
    );
    const tokens = new EarTokens({ keys, issuer: 'x', lifetimeMs: 60_000 });
    const s = Math.floor(Date.now() / 1000);
    throwsCode(
      () => tokens.verify(signJwt(keys.current, { iss: 'x', iat: s, exp: s + 60 })),
      'ERR_INVALID_ARGUMENT',
      'token.profile',
    );
    throwsCode(
      () => readSnpEarSubject({ ...tokens.issueSnp(input()).claims, submods: {} }),
      'ERR_MALFORMED',
      'token.claims',
    );
  });
});

describe('TokenKeyRing persistence hooks and a late-bound issuer', () => {
  it('restore keeps the history: retired keys stay published until their tokens expired, then drop', async () => {
    let now = 1_000_000;
    const a = newKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const b = newKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
    const opts = { maxTokenLifetimeMs: 60_000, clockSkewMs: 0, now: () => now };
    const ring = TokenKeyRing.restore(
      [
        { privateKey: a, activatedAt: 0, retiredAt: 990_000 },
        { privateKey: b, activatedAt: 990_000, retiredAt: null },
      ],
      opts,
    );
    assert.equal(ring.current.alg, 'ES384');
    assert.equal(ring.current.activatedAt, 990_000);
    assert.equal(ring.jwks().keys.length, 2);
    now = 990_000 + 60_000;
    assert.equal(ring.jwks().keys.length, 1, 'the retired key is gone once its last token expired');
    // A retired key whose tokens have all expired is not restored at all.
    const later = TokenKeyRing.restore(
      [
        { privateKey: a, activatedAt: 0, retiredAt: 1 },
        { privateKey: b, activatedAt: 1, retiredAt: null },
      ],
      opts,
    );
    assert.equal(later.published().length, 1);
  });

  it('restore refuses a history where the signing key is not exactly the newest', () => {
    const a = newKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const o = { maxTokenLifetimeMs: 60_000 };
    throwsCode(() => TokenKeyRing.restore([], o), 'ERR_INVALID_ARGUMENT', 'token.key');
    throwsCode(
      () => TokenKeyRing.restore([{ privateKey: a, activatedAt: 0, retiredAt: 5 }], o),
      'ERR_INVALID_ARGUMENT',
      'token.key',
    );
    throwsCode(
      () =>
        TokenKeyRing.restore(
          [
            { privateKey: a, activatedAt: 0, retiredAt: null },
            { privateKey: a, activatedAt: 1, retiredAt: null },
          ],
          o,
        ),
      'ERR_INVALID_ARGUMENT',
      'token.key',
    );
    throwsCode(
      () => TokenKeyRing.restore([{ privateKey: a, activatedAt: -1, retiredAt: null }], o),
      'ERR_INVALID_ARGUMENT',
      'token.key',
    );
    const rsa = newKeyPairSync('rsa', { modulusLength: 1024 }).privateKey;
    throwsCode(
      () => TokenKeyRing.restore([{ privateKey: rsa, activatedAt: 0, retiredAt: null }], o),
      'ERR_INVALID_ARGUMENT',
      'token.key',
    );
  });

  it('rotate commits the next ring first; a commit that fails leaves the ring as it was', async () => {
    const ring = await TokenKeyRing.generate({ maxTokenLifetimeMs: 60_000 });
    const before = ring.current.kid;
    await assert.rejects(
      ring.rotate(undefined, () => {
        throw new Error('disk full');
      }),
      /disk full/,
    );
    assert.equal(ring.current.kid, before);
    assert.equal(ring.jwks().keys.length, 1);
    let seen: string[] = [];
    const key = await ring.rotate(undefined, (next) => {
      seen = next.jwks().keys.map((k) => k.kid);
    });
    assert.deepEqual(seen, [key.kid, before]);
    assert.deepEqual(
      ring.jwks().keys.map((k) => k.kid),
      [key.kid, before],
    );
  });

  it('an issuer function is read when tokens are issued and verified', async () => {
    const keys = await TokenKeyRing.generate({ maxTokenLifetimeMs: 300_000 });
    let url: string | undefined;
    const tokens = new EarTokens({ keys, issuer: () => url ?? '' });
    throwsCode(() => tokens.issueSnp(input()), 'ERR_INVALID_ARGUMENT', 'token.config');
    url = 'http://127.0.0.1:4242';
    const { token } = tokens.issueSnp(input());
    assert.equal(tokens.issuer, url);
    assert.equal(tokens.verify(token).iss, url);
  });
});
