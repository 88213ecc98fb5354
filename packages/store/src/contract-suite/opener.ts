import type { TestContext } from 'node:test';
import type { Store } from '../contracts/store.js';

/**
 * How the contract suite gets a store: a fresh, empty, migrated one per test, closed when the test
 * ends. Each engine's `*.contract.test.ts` passes its own (SQLite: a new file in a temporary folder).
 */
export type StoreOpener = (t: TestContext) => Promise<Store>;
