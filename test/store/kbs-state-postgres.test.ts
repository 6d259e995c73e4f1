import { postgresHarness } from './harnesses.js';
import { runKbsStateContract } from './kbs-state-contract.js';

runKbsStateContract(postgresHarness());
