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
    it(name, () => assert.deepEqual(decideBoot(s, { counter: stated, digest: null }, NOW), want));
  }

  describe('the committed digest names the one file that may state the committed counter', () => {
    const committed = new Uint8Array(32).fill(1);
    const withDigest = (c: number, d: Uint8Array | null): BootState => ({ ...state(c), committedDigest: d });
    it('the committed file: accepted', () =>
      assert.deepEqual(
        decideBoot(withDigest(4, committed), { counter: 4, digest: Uint8Array.from(committed) }, NOW),
        {
          ok: true,
          replacedExpiredBoot: false,
        },
      ));
    it('another file with the committed counter (a fork): rollback', () =>
      assert.deepEqual(
        decideBoot(withDigest(4, committed), { counter: 4, digest: new Uint8Array(32).fill(2) }, NOW),
        { ok: false, reason: 'broker.rollback' },
      ));
    it('no digest stated for the committed counter: rollback', () =>
      assert.deepEqual(decideBoot(withDigest(4, committed), { counter: 4, digest: null }, NOW), {
        ok: false,
        reason: 'broker.rollback',
      }));
    it('a counter committed before digests were recorded is checked by counter only', () =>
      assert.deepEqual(decideBoot(withDigest(4, null), { counter: 4, digest: new Uint8Array(32) }, NOW), {
        ok: true,
        replacedExpiredBoot: false,
      }));
  });

  it('accepts exactly when the stated counter equals the committed one and no lease is live', () => {
    const counter = fc.option(fc.integer({ min: 0, max: 10 }), { nil: null });
    fc.assert(
      fc.property(
        counter,
        counter,
        fc.option(fc.integer({ min: NOW - 5, max: NOW + 5 }), { nil: null }),
        (c, s, lease) => {
          const d = decideBoot(
            state(c, lease === null ? null : boot(lease)),
            { counter: s, digest: null },
            NOW,
          );
          const live = lease !== null && lease > NOW;
          assert.equal(d.ok, c === s && !live);
          if (!d.ok && c !== s) assert.notEqual(d.reason, 'broker.clone');
        },
      ),
    );
  });
});
