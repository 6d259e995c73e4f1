import { runCredentialContract } from './credential-contract.js';
import { sqliteHarness } from './harnesses.js';

runCredentialContract(sqliteHarness('credential-store'));
