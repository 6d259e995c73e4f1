import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { decideBoot } from '../../src/broker/boot-rules.js';
import type { BootState, NewLaunchPolicy } from '../../src/store/types.js';

const NOW = 1_000_000;
const LAUNCH_A = new Uint8Array(32).fill(0xa);
const LAUNCH_B = new Uint8Array(32).fill(0xb);
const boot = (leaseExpiresAt: number, launchId: Uint8Array | null = LAUNCH_A) => ({
  bootId: 'b',
  startedAt: 0,
  leaseExpiresAt,
  tokenHash: new Uint8Array(32),
  launchId,
});
const state = (committedCounter: number | null, activeBoot: BootState['activeBoot'] = null): BootState => ({
  committedCounter,
  activeBoot,
});
const decide = (
  s: BootState,
  counter: number | null,
  launch: Uint8Array | null = LAUNCH_B,
  policy: NewLaunchPolicy = 'takeover',
) => decideBoot(s, policy, { counter, digest: null }, launch, NOW);

describe('rollback rules', () => {
  const cases: [string, BootState, number | null, ReturnType<typeof decideBoot>][] = [
    ['first boot, no state', state(null), null, { ok: true, start: 'new' }],
    ['state matches the committed counter', state(4), 4, { ok: true, start: 'new' }],
    ['older state: rollback', state(4), 3, { ok: false, reason: 'broker.rollback' }],
    ['no state once committed: rollback', state(4), null, { ok: false, reason: 'broker.rollback' }],
    ['newer state: ahead', state(4), 5, { ok: false, reason: 'broker.state_ahead' }],
    ['state before any commit: ahead', state(null), 1, { ok: false, reason: 'broker.state_ahead' }],
    ['state 0 before any commit: ahead', state(null), 0, { ok: false, reason: 'broker.state_ahead' }],
    ['lease ends exactly now: replaced', state(4, boot(NOW)), 4, { ok: true, start: 'expired' }],
    ['expired lease: replaced', state(null, boot(NOW - 1)), null, { ok: true, start: 'expired' }],
    [
      'rollback is reported before any lease rule',
      state(4, boot(NOW + 1)),
      3,
      { ok: false, reason: 'broker.rollback' },
    ],
  ];
  for (const [name, s, stated, want] of cases) {
    it(name, () => assert.deepEqual(decide(s, stated, LAUNCH_B, 'refuse'), want));
  }

  describe('the committed digest names the one file that may state the committed counter', () => {
    const committed = new Uint8Array(32).fill(1);
    const withDigest = (c: number, d: Uint8Array | null): BootState => ({ ...state(c), committedDigest: d });
    const withFile = (s: BootState, digest: Uint8Array | null) =>
      decideBoot(s, 'takeover', { counter: 4, digest }, LAUNCH_B, NOW);
    it('the committed file: accepted', () =>
      assert.deepEqual(withFile(withDigest(4, committed), Uint8Array.from(committed)), {
        ok: true,
        start: 'new',
      }));
    it('another file with the committed counter (a fork): rollback', () =>
      assert.deepEqual(withFile(withDigest(4, committed), new Uint8Array(32).fill(2)), {
        ok: false,
        reason: 'broker.rollback',
      }));
    it('no digest stated for the committed counter: rollback', () =>
      assert.deepEqual(withFile(withDigest(4, committed), null), { ok: false, reason: 'broker.rollback' }));
    it('a counter committed before digests were recorded is checked by counter only', () =>
      assert.deepEqual(withFile(withDigest(4, null), new Uint8Array(32)), { ok: true, start: 'new' }));
  });
});

describe('lease rules', () => {
  const live = state(4, boot(NOW + 1));
  it('the same launch attesting again is the same boot, whatever the policy', () => {
    for (const p of ['refuse', 'takeover', 'allow'] as const) {
      assert.deepEqual(decide(live, 4, Uint8Array.from(LAUNCH_A), p), { ok: true, start: 'same_launch' });
    }
  });
  it('the same launch after its lease ran out is still the same boot', () =>
    assert.deepEqual(decide(state(4, boot(NOW - 1)), 4, LAUNCH_A), { ok: true, start: 'same_launch' }));
  it('another launch during a live lease: refuse is a clone', () =>
    assert.deepEqual(decide(live, 4, LAUNCH_B, 'refuse'), { ok: false, reason: 'broker.clone' }));
  it('another launch during a live lease: takeover', () =>
    assert.deepEqual(decide(live, 4, LAUNCH_B, 'takeover'), { ok: true, start: 'takeover' }));
  it('another launch during a live lease: allow releases without a lease', () =>
    assert.deepEqual(decide(live, 4, LAUNCH_B, 'allow'), { ok: true, start: 'unleased' }));
  it('evidence without a launch id is never the same launch', () =>
    assert.deepEqual(decide(live, 4, null, 'refuse'), { ok: false, reason: 'broker.clone' }));
  it('a boot stored without a launch id is never the same launch', () =>
    assert.deepEqual(decide(state(4, boot(NOW + 1, null)), 4, LAUNCH_A, 'refuse'), {
      ok: false,
      reason: 'broker.clone',
    }));

  it('refuse accepts exactly when the counter matches and no other launch holds a live lease', () => {
    const counter = fc.option(fc.integer({ min: 0, max: 10 }), { nil: null });
    fc.assert(
      fc.property(
        counter,
        counter,
        fc.option(fc.integer({ min: NOW - 5, max: NOW + 5 }), { nil: null }),
        fc.boolean(),
        (c, s, lease, same) => {
          const d = decide(
            state(c, lease === null ? null : boot(lease)),
            s,
            same ? LAUNCH_A : LAUNCH_B,
            'refuse',
          );
          const blocked = lease !== null && lease > NOW && !same;
          assert.equal(d.ok, c === s && !blocked);
          if (!d.ok && c !== s) assert.notEqual(d.reason, 'broker.clone');
        },
      ),
    );
  });
});
