import { join } from 'node:path';
import { SqliteStore } from './workspace.js';

/** Path of the database inside a data folder (apps/ca/src/layout.ts). */
export const databasePath = (dataDir: string): string => join(dataDir, 'shortleaf.db');

/**
 * Row counts of every table, read through a short-lived read-only connection (WAL lets it read
 * while the server writes), so a test can prove a refused request changed nothing.
 */
export async function tableCounts(dataDir: string): Promise<Record<string, number>> {
  const store = await SqliteStore.open(databasePath(dataDir), { readonly: true });
  try {
    return await store.counts();
  } finally {
    await store.close();
  }
}

/** Opens the database read-only for a callback and always closes it. */
export async function withStore<T>(
  dataDir: string,
  fn: (store: SqliteStore) => Promise<T>,
  opts: { readonly?: boolean } = { readonly: true },
): Promise<T> {
  const store = await SqliteStore.open(databasePath(dataDir), { readonly: opts.readonly ?? true });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}
