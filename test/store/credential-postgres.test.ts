import { runCredentialContract } from './credential-contract.js';
import { postgresHarness } from './harnesses.js';

runCredentialContract(postgresHarness());
