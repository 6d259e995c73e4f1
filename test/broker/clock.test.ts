/** The broker's decision clock (src/broker/clock.ts): backward steps are absorbed, forward ones pass. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ClockStepBack, nonDecreasingClock } from '../../src/broker/clock.js';

describe('nonDecreasingClock', () => {
  it('carries on from the last reading after a step back and advances with the clock from there', () => {
    let t = 1_000_000;
    const steps: ClockStepBack[] = [];
    const now = nonDecreasingClock(
      () => t,
      (s) => steps.push(s),
    );
    assert.equal(now(), 1_000_000);
    t += 500;
    assert.equal(now(), 1_000_500);
    t -= 10_000; // stepped back
    assert.equal(now(), 1_000_500, 'never below an earlier reading');
    t += 300;
    assert.equal(now(), 1_000_800, 'elapsed time still counts');
    t -= 1_000;
    assert.equal(now(), 1_000_800);
    t += 50_000; // forward steps are taken as they come
    assert.equal(now(), 1_050_800);
    assert.deepEqual(steps, [
      { stepMs: 10_000, offsetMs: 10_000 },
      { stepMs: 1_000, offsetMs: 11_000 },
    ]);
  });

  it('equal readings are no step', () => {
    const steps: ClockStepBack[] = [];
    const now = nonDecreasingClock(
      () => 5,
      (s) => steps.push(s),
    );
    assert.equal(now(), 5);
    assert.equal(now(), 5);
    assert.deepEqual(steps, []);
  });
});
