import { runStoreContract } from './contract.js';
import { sqliteHarness } from './harnesses.js';

runStoreContract(sqliteHarness('store'));
