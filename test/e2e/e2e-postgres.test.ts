import { postgresEngine } from './harness.js';
import { e2eSuite } from './suite.js';

e2eSuite('PostgreSQL', postgresEngine);
