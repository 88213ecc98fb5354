import type { Store } from './contracts/store.js';
import type { OpenOptions } from './records.js';
import { SqliteStore } from './sqlite-store.js';

/**
 * Which engine to open, and where. One member per engine: a new engine (PostgreSQL: a `url`)
 * is a new member here and a new case below, and the compiler finds every place that must learn it.
 */
export type StoreEngineOptions = { engine: 'sqlite'; path: string } & OpenOptions;

/**
 * Opens (creating and migrating as needed) the store the apps run on, typed by the engine-neutral
 * contract: the apps call this rather than an engine's own `open`.
 */
export async function openStore(opts: StoreEngineOptions): Promise<Store> {
  switch (opts.engine) {
    case 'sqlite': {
      const { engine: _engine, path, ...sqlite } = opts;
      return SqliteStore.open(path, sqlite);
    }
  }
}
