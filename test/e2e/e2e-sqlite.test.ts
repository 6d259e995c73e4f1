import { sqliteEngine } from './harness.js';
import { e2eSuite } from './suite.js';

e2eSuite('SQLite', async () => sqliteEngine());
