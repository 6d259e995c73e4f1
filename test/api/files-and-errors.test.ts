/** The broker's own secret files (signing key, admin token), the bearer check and the status table. */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { checkBearer, openAdminToken, openSigningKey } from '../../src/api/broker-keys.js';
import {
  errorLogFields,
  errorResponse,
  STATUS_BY_CODE,
  STATUS_BY_REASON,
} from '../../src/api/http-errors.js';
import { BrokerRefused } from '../../src/broker/errors.js';
import {
  BindingMismatch,
  ChainInvalid,
  CollateralUnavailable,
  ErrorCode,
  InvalidArgument,
  MalformedEvidence,
  NotSupported,
  PolicyRejected,
  SignatureInvalid,
  Unavailable,
} from '../../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'vouchsafe-files-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('broker signing key file', () => {
  it('is created 0600 on first use and loads the same key afterwards (a stable pin)', () => {
    const path = join(dir, 'sub', 'signing.pem');
    const a = openSigningKey(path);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, 'sub')).mode & 0o777, 0o700);
    assert.equal(a.publicKey.asymmetricKeyDetails?.namedCurve, 'secp384r1');
    const b = openSigningKey(path);
    assert.ok(a.publicKey.equals(b.publicKey));
    assert.equal(readFileSync(`${path}.pub`, 'ascii'), a.publicKey.export({ type: 'spki', format: 'pem' }));
  });

  it('is refused when others can read it, when it is a symlink, or when it is not a P-384 key', () => {
    const path = join(dir, 'loose.pem');
    openSigningKey(path);
    chmodSync(path, 0o644);
    assert.throws(() => openSigningKey(path), {
      code: 'ERR_INVALID_ARGUMENT',
      reason: 'api.signing_key.permissions',
    });
    chmodSync(path, 0o600);
    const link = join(dir, 'link.pem');
    symlinkSync(path, link);
    assert.throws(() => openSigningKey(link), { reason: 'api.signing_key.not_file' });
    const junk = join(dir, 'junk.pem');
    writeFileSync(junk, 'not a key', { mode: 0o600 });
    assert.throws(() => openSigningKey(junk), { reason: 'api.signing_key.format' });
  });
});

describe('admin token file', () => {
  it('is created 0600 with 64 hex digits, reloaded unchanged, and may hold an operator token', () => {
    const path = join(dir, 'admin-token');
    const t = openAdminToken(path);
    assert.match(t, /^[0-9a-f]{64}$/);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(openAdminToken(path), t);
    const own = join(dir, 'own-token');
    writeFileSync(own, `${'s3cr3t-'.repeat(6)}\n`, { mode: 0o600 });
    assert.equal(openAdminToken(own), 's3cr3t-'.repeat(6));
  });

  it('is refused when short, when readable by others', () => {
    const short = join(dir, 'short-token');
    writeFileSync(short, 'abc\n', { mode: 0o600 });
    assert.throws(() => openAdminToken(short), { reason: 'api.admin_token.format' });
    const loose = join(dir, 'loose-token');
    writeFileSync(loose, 'x'.repeat(40), { mode: 0o640 });
    assert.throws(() => openAdminToken(loose), { reason: 'api.admin_token.permissions' });
  });

  it('checkBearer accepts exactly "Bearer <token>"', () => {
    const token = 'a'.repeat(64);
    assert.equal(checkBearer(`Bearer ${token}`, token), true);
    for (const h of [
      undefined,
      '',
      token,
      `Bearer ${token} `,
      `Bearer  ${token}`,
      `bearer ${token}`,
      `Bearer ${'a'.repeat(63)}`,
      `Bearer ${token}a`,
      `Bearer ${'b'.repeat(64)}`,
    ]) {
      assert.equal(checkBearer(h, token), false, String(h));
    }
  });
});

describe('status table', () => {
  it('maps each code, and the listed reasons, to one status', () => {
    const cases: [Error, number][] = [
      [new MalformedEvidence('x.y'), 400],
      [new InvalidArgument('x.y'), 400],
      [new SignatureInvalid('snp.signature'), 403],
      [new ChainInvalid('snp.chain.root_untrusted'), 403],
      [new BindingMismatch('snp.chip_id_mismatch'), 403],
      [new PolicyRejected([{ code: 'snp.measurement', message: 'm' }]), 403],
      [new BrokerRefused('broker.challenge_unknown'), 403],
      [new BrokerRefused('broker.report_data_mismatch'), 403],
      [new BrokerRefused('broker.unknown_instance'), 403],
      [new BrokerRefused('broker.clone'), 409],
      [new BrokerRefused('broker.rollback'), 409],
      [new BrokerRefused('broker.state_ahead'), 409],
      [new BrokerRefused('broker.counter_mismatch'), 409],
      [new BrokerRefused('broker.boot_unknown'), 409],
      [new BrokerRefused('broker.key_version_unknown'), 409],
      [new InvalidArgument('broker.instance_not_found'), 404],
      [new InvalidArgument('broker.instance_exists'), 409],
      [new CollateralUnavailable('kds.unreachable'), 503],
      [new Unavailable('store.unreachable'), 503],
      [new NotSupported('api.tee'), 501],
    ];
    for (const [e, status] of cases)
      assert.equal(errorResponse(e).status, status, (e as unknown as { reason: string }).reason);
    assert.deepEqual(Object.keys(STATUS_BY_CODE).sort(), Object.values(ErrorCode).sort());
    for (const s of Object.values(STATUS_BY_REASON)) assert.ok(s >= 400 && s < 600);
  });

  it('lists every policy failure by code and message, without expected or actual values', () => {
    const e = new PolicyRejected([
      { code: 'snp.measurement', message: 'not allowed', expected: 'one of 1', actual: 'ab' },
      { code: 'snp.policy.debug', message: 'debug' },
    ]);
    assert.deepEqual(errorResponse(e).body, {
      code: 'ERR_POLICY_REJECTED',
      reason: 'snp.measurement',
      message: e.message,
      failures: [
        { code: 'snp.measurement', message: 'not allowed' },
        { code: 'snp.policy.debug', message: 'debug' },
      ],
    });
    // The broker's log keeps them.
    assert.deepEqual(errorLogFields(e, 403), {
      code: 'ERR_POLICY_REJECTED',
      reason: 'snp.measurement',
      status: 403,
      failures: [
        { code: 'snp.measurement', message: 'not allowed', expected: 'one of 1', actual: 'ab' },
        { code: 'snp.policy.debug', message: 'debug' },
      ],
    });
  });

  it('an untyped error is a 500 that tells the client nothing about it', () => {
    const r = errorResponse(new Error('ECONNREFUSED db.internal:5432 password=hunter2'));
    assert.deepEqual(r, {
      status: 500,
      body: { code: 'ERR_INTERNAL', reason: 'api.internal', message: 'internal error' },
    });
  });
});
