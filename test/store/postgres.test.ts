import { runStoreContract } from './contract.js';
import { postgresHarness } from './harnesses.js';

runStoreContract(postgresHarness());
