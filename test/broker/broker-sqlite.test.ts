import { sqliteHarness } from '../store/harnesses.js';
import { runBrokerSuite } from './suite.js';

runBrokerSuite(sqliteHarness('broker'));
