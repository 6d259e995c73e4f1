import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseTeePubkey } from '../../src/kbs/tee-pubkey.js';
import { verifyJwt } from '../../src/kbs/tokens/jwt.js';
import { assertSupportedTee } from '../../src/policy/tees.js';
import { shown } from '../../src/util/shown.js';
import { onlyTyped } from '../helpers/assert-error.js';

/** JSON that String() cannot turn into text: an own `toString` that is not a function. */
const HOSTILE: unknown = JSON.parse('{"toString":0}');

describe('shown: client values in error messages', () => {
  it('quotes short strings, prints numbers, and names the type of anything else without calling it', () => {
    assert.equal(shown('EC'), '"EC"');
    assert.equal(shown('x'.repeat(100)).length, 42);
    assert.equal(shown(7), '7');
    assert.equal(shown(null), 'null');
    assert.equal(shown(HOSTILE), 'object');
    assert.equal(shown(Object.create(null)), 'object');
    assert.throws(() => String(HOSTILE), TypeError); // why shown exists
  });

  it('refusals that name a client value are typed, not TypeErrors, for a value String() cannot print', () => {
    const b64u = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const token = `${b64u({ alg: HOSTILE, typ: 'JWT', kid: 'k' })}.${b64u({})}.${'A'.repeat(86)}`;
    onlyTyped(() => verifyJwt(token, { findKey: () => undefined, now: 0, issuer: 'i' }));
    onlyTyped(() => assertSupportedTee(HOSTILE as string, 'kbs.tee'));
    onlyTyped(() => parseTeePubkey({ kty: HOSTILE }));
  });
});
