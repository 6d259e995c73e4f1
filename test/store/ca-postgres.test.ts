import { runCaStoreContract } from './ca-contract.js';
import { postgresHarness } from './harnesses.js';

runCaStoreContract(postgresHarness());
