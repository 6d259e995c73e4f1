import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { decideBoot } from '../../src/broker/boot-rules.js';
import type { BootState } from '../../src/store/types.js';

const NOW = 1_000_000;
const boot = (leaseExpiresAt: number) => ({
  bootId: 'b',
  startedAt: 0,
  leaseExpiresAt,
  tokenHash: new Uint8Array(32),
});
const state = (committedCounter: number | null, activeBoot: BootState['activeBoot'] = null): BootState => ({
  committedCounter,
  activeBoot,
});

describe('rollback and clone rules', () => {
  const cases: [string, BootState, number | null, ReturnType<typeof decideBoot>][] = [
    ['first boot, no state', state(null), null, { ok: true, replacedExpiredBoot: false }],
    ['state matches the committed counter', state(4), 4, { ok: true, replacedExpiredBoot: false }],
    ['older state: rollback', state(4), 3, { ok: false, reason: 'broker.rollback' }],
    ['no state once committed: rollback', state(4), null, { ok: false, reason: 'broker.rollback' }],
    ['newer state: ahead', state(4), 5, { ok: false, reason: 'broker.state_ahead' }],
    ['state before any commit: ahead', state(null), 1, { ok: false, reason: 'broker.state_ahead' }],
    ['state 0 before any commit: ahead', state(null), 0, { ok: false, reason: 'broker.state_ahead' }],
    ['live lease: clone', state(4, boot(NOW + 1)), 4, { ok: false, reason: 'broker.clone' }],
    ['lease ends exactly now: replaced', state(4, boot(NOW)), 4, { ok: true, replacedExpiredBoot: true }],
    ['expired lease: replaced', state(null, boot(NOW - 1)), null, { ok: true, replacedExpiredBoot: true }],
    [
      'rollback is reported before clone',
      state(4, boot(NOW + 1)),
      3,
      { ok: false, reason: 'broker.rollback' },
    ],
  ];
  for (const [name, s, stated, want] of cases) {
    it(name, () => assert.deepEqual(decideBoot(s, stated, NOW), want));
  }

  it('accepts exactly when the stated counter equals the committed one and no lease is live', () => {
    const counter = fc.option(fc.integer({ min: 0, max: 10 }), { nil: null });
    fc.assert(
      fc.property(
        counter,
        counter,
        fc.option(fc.integer({ min: NOW - 5, max: NOW + 5 }), { nil: null }),
        (c, s, lease) => {
          const d = decideBoot(state(c, lease === null ? null : boot(lease)), s, NOW);
          const live = lease !== null && lease > NOW;
          assert.equal(d.ok, c === s && !live);
          if (!d.ok && c !== s) assert.notEqual(d.reason, 'broker.clone');
        },
      ),
    );
  });
});
