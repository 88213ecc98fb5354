// Kept so existing relative imports inside the store keep working: the records are the engine-neutral
// contracts (contracts/records.ts); only the SQLite engine's open options live here.
export type * from './contracts/records.js';

/** Options for `SqliteStore.open`. */
export interface OpenOptions {
  /** Folder of `NNNN_name.sql` files; defaults to the repository's `migrations/`. */
  migrationsDir?: string | URL;
  /** Open without writing; refuses a database that still needs migrations. */
  readonly?: boolean;
}
