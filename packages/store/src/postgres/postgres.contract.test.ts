import { storeContract } from '../contract-suite/index.js';
import { PostgresStore } from './pg-store.js';
import { testDatabaseUrl } from './test-server.js';

// The store contract, run against the PostgreSQL engine (a new database on the run's server per test).
storeContract('postgres', async (t) => {
  const store = await PostgresStore.open(await testDatabaseUrl(t));
  t.after(() => store.close());
  return store;
});
