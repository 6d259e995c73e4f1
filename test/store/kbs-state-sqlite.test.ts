import { sqliteHarness } from './harnesses.js';
import { runKbsStateContract } from './kbs-state-contract.js';

runKbsStateContract(sqliteHarness('kbs-state'));
