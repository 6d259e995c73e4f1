import assert from 'node:assert/strict';
import { it } from 'node:test';
import { runDemo } from '../../src/cli/demo/scenario.js';

it('the demo releases where due and refuses each attack with its stable reason', async () => {
  const events = await runDemo(() => {});
  const unexpected = events.filter((e) => !e.expected);
  assert.deepEqual(unexpected, [], 'every step ends as expected');
  const outcomes = events.filter((e) => e.outcome !== 'info').map((e) => [e.outcome, e.reason ?? null]);
  assert.deepEqual(outcomes, [
    ['released', null],
    ['released', null],
    ['refused', 'snp.measurement'],
    ['refused', 'snp.measurement'],
    ['refused', 'broker.rollback'],
    ['released', null],
    ['refused', 'broker.clone'],
  ]);
  const check = events.find((e) => e.step === 'check');
  assert.ok(check?.detail.endsWith('true'), 'the reboot unsealed the first boot state');
  assert.match(events.at(-1)!.detail, /^audit chain verifies/);
});
