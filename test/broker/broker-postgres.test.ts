import { postgresHarness } from '../store/harnesses.js';
import { runBrokerSuite } from './suite.js';

runBrokerSuite(postgresHarness());
