import { storeContract } from './contract-suite/index.js';
import { openStore } from './test-fixtures.js';

// The store contract, run against the SQLite engine (a new database file per test).
storeContract('sqlite', (t) => openStore(t));
