import type { Store } from './contracts/store.js';
import type { PgOpenOptions } from './postgres/pg-store.js';
import type { OpenOptions } from './records.js';
import { SqliteStore } from './sqlite-store.js';

/**
 * Which engine to open, and where. One member per engine: a new engine is a new member here and a
 * new case below, and the compiler finds every place that must learn it.
 */
export type StoreEngineOptions =
  | ({ engine: 'sqlite'; path: string } & OpenOptions)
  | ({ engine: 'postgres'; url: string } & Pick<PgOpenOptions, 'migrationsDir' | 'poolSize'>);

/**
 * Opens (creating and migrating as needed) the store the apps run on, typed by the engine-neutral
 * contract: the apps call this rather than an engine's own `open`. The PostgreSQL engine is loaded
 * only when asked for, so a SQLite CA never loads its driver.
 */
export async function openStore(opts: StoreEngineOptions): Promise<Store> {
  switch (opts.engine) {
    case 'sqlite': {
      const { engine: _engine, path, ...sqlite } = opts;
      return SqliteStore.open(path, sqlite);
    }
    case 'postgres': {
      const { engine: _engine, url, ...postgres } = opts;
      const { PostgresStore } = await import('./postgres/pg-store.js');
      return PostgresStore.open(url, postgres);
    }
  }
}
