/**
 * A token-key rotation is written to the hash-chained audit log with the key it retired and the key it
 * made (issue 14 "Keys"), by the credential that asked; the chain still verifies.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type BrokerStack, startBrokerStack } from '../helpers/broker.js';

describe('token-key rotation is audited', () => {
  let s: BrokerStack;
  before(async () => {
    s = await startBrokerStack();
  });
  after(() => s.close());

  it('one audit entry per rotation: old and new kid, alg, where the key lives, the actor', async () => {
    const before = (await s.call('GET', '/kbs/v0/.well-known/jwks')).body.keys[0].kid as string;
    const r = await s.admin('POST', '/v1/admin/token-keys/rotate');
    assert.equal(r.status, 200);
    const r2 = await s.admin('POST', '/v1/admin/token-keys/rotate');
    assert.equal(r2.status, 200);
    const audit = await s.admin('GET', '/v1/admin/audit?limit=1000');
    const rotations = audit.body.entries.filter((e: { kind: string }) => e.kind === 'token_key_rotate');
    assert.equal(rotations.length, 2);
    assert.deepEqual(rotations[0].details.oldKid, before);
    assert.equal(rotations[0].details.newKid, r.body.kid);
    assert.equal(rotations[1].details.oldKid, r.body.kid);
    assert.equal(rotations[1].details.newKid, r2.body.kid);
    assert.equal(rotations[0].details.newKey, 'memory');
    assert.equal(rotations[0].details.actor, 'bootstrap');
    assert.deepEqual(rotations[0].reasons, ['kbs.token_key_rotated']);
    assert.equal(rotations[0].instance, null);
    // No key material in the entry.
    assert.doesNotMatch(JSON.stringify(rotations), /PRIVATE KEY|"d":/);
    const verify = await s.admin('GET', '/v1/admin/audit/verify');
    assert.equal(verify.status, 200);
    assert.equal(verify.body.ok, true);
  });
});
