/**
 * A broker started the way the product starts it (SQLite in a temp dir, the KBS on by default), with the
 * simulator's root trusted: test/helpers/broker.ts with the KBS tests' instance names (project `kbs`).
 */
import type { StartBrokerOptions } from '../../src/api/index.js';
import { type BrokerStack, startBrokerStack } from '../helpers/broker.js';

export { GOOD_MEASUREMENT, type Json } from '../helpers/broker.js';

export type KbsBrokerStack = BrokerStack;

export function startKbsBroker(o: Partial<StartBrokerOptions> = {}): Promise<KbsBrokerStack> {
  return startBrokerStack({
    broker: o,
    identity: { project: 'kbs', namePrefix: 'kbs-vm-' },
    tmpPrefix: 'vouchsafe-kbs-broker-',
  });
}
