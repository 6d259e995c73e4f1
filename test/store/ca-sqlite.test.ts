import { runCaStoreContract } from './ca-contract.js';
import { sqliteHarness } from './harnesses.js';

runCaStoreContract(sqliteHarness('ca-store'));
