// Shared by the tests of what several instances on one database do (imported only by `*.test.ts`):
// a database each engine opens again as another instance would, and a CA set up on it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { encodePem, parseCsr } from '@shortleaf/pki';
import { openStore, type Store } from '@shortleaf/store';
import { createIntermediateKey, importIntermediate } from './issuer.js';
import type { Clock, KeySealer } from './ports.js';
import { T0, makeRoot, signIntermediate } from './test-fixtures.js';

/**
 * Opens the database again, as another instance would; every store is closed after the test.
 * SQLite is one process's: every "instance" gets the same store, as they would share one process.
 */
export type TestDatabase = (t: TestContext) => Promise<() => Promise<Store>>;

export const sqliteDatabase: TestDatabase = async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'shortleaf-instances-'));
  const store = await openStore({ engine: 'sqlite', path: join(dir, 'ca.db') });
  t.after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return async () => store;
};

/** PostgreSQL at the URL `url` gives for the test: each open is a new store with its own pool. */
export const postgresDatabase =
  (url: (t: TestContext) => Promise<string>): TestDatabase =>
  async (t) => {
    const database = await url(t);
    return async () => {
      const store = await openStore({ engine: 'postgres', url: database });
      t.after(() => store.close());
      return store;
    };
  };

/** Creates and activates the intermediate `int-1` (named `primary`) under a new test root. */
export async function setUpIntermediate(store: Store, sealer: KeySealer, clock: Clock): Promise<void> {
  const root = makeRoot({ now: T0 });
  const csr = await createIntermediateKey(store, sealer, clock, { id: 'int-1', name: 'primary', commonName: 'CA' });
  await importIntermediate(store, clock, {
    name: 'primary',
    certificatePem: encodePem('CERTIFICATE', signIntermediate(root, parseCsr(csr).publicKey, { now: T0 })),
    rootPem: root.pem,
  });
}
