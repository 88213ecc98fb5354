import { existsSync } from 'node:fs';
import { openSealer, openStore as openEngine, type SealSettings, type Store } from '@shortleaf/store';
import type { KeySealer } from '@shortleaf/authority';
import { UsageError } from './cli.js';
import { envDatabaseUrl } from './config.js';
import { databaseUrlProblem, redactDatabaseUrl } from './database-url.js';
import { dataLayout } from './layout.js';
import { dataPassphrase } from './passphrase.js';

/**
 * Where a CA's state lives: the SQLite file in a data directory (the default), or a PostgreSQL
 * database that any number of instances share. With PostgreSQL the data directory, when given,
 * holds only local files: the development root and passphrase `init` writes, provisioner keys.
 */
export type StoreLocation =
  { engine: 'sqlite'; dataDir: string } | { engine: 'postgres'; url: string; dataDir?: string };

export type PostgresLocation = Extract<StoreLocation, { engine: 'postgres' }>;

/** The flags every verb that reaches the store takes: `--data DIR` and `--database URL`. */
export const LOCATION_FLAGS = { data: { type: 'string' }, database: { type: 'string' } } as const;

/** A SQLite data directory as a location. */
export const sqliteAt = (dataDir: string): StoreLocation => ({ engine: 'sqlite', dataDir });

/**
 * The location a verb's flags name. The database URL comes from `--database`, else
 * SHORTLEAF_DATABASE_URL, else (for `serve`) the config file's `database.url`; without one the
 * state is SQLite in `--data` (or `defaultDataDir`, for the verbs that have one).
 */
export function storeLocation(
  values: { data?: string | undefined; database?: string | undefined },
  opts: { configUrl?: string | null; defaultDataDir?: string } = {},
): StoreLocation {
  const dataDir = values.data ?? opts.defaultDataDir;
  const [url, source] =
    values.database !== undefined
      ? [values.database, '--database']
      : envDatabaseUrl() !== undefined
        ? [envDatabaseUrl()!, 'SHORTLEAF_DATABASE_URL']
        : [opts.configUrl ?? undefined, 'database.url'];
  if (url === undefined) {
    if (dataDir === undefined) throw new UsageError('--data DIR is required (or --database URL for PostgreSQL)');
    return sqliteAt(dataDir);
  }
  const problem = databaseUrlProblem(url, source);
  if (problem !== null) throw new UsageError(problem);
  return dataDir === undefined ? { engine: 'postgres', url } : { engine: 'postgres', url, dataDir };
}

/** The location for people: the data directory, or the PostgreSQL URL without its password. */
export function describeLocation(location: StoreLocation): string {
  return location.engine === 'sqlite' ? location.dataDir : `PostgreSQL ${redactDatabaseUrl(location.url)}`;
}

/**
 * Opens the store at a location (migrating it) without touching any secret. Typed by the
 * engine-neutral `Store`, so nothing the CLI and `serve` build on depends on the engine below.
 * `readonly` (for verbs that only read): a data directory's file must exist and is neither
 * created nor migrated; PostgreSQL opens as usual, its readers never blocking its writers.
 */
export async function openStore(location: StoreLocation, opts: { readonly?: boolean } = {}): Promise<Store> {
  if (location.engine === 'postgres') return openEngine({ engine: 'postgres', url: location.url });
  const { database } = dataLayout(location.dataDir);
  if (opts.readonly !== true) return openEngine({ engine: 'sqlite', path: database });
  if (!existsSync(database)) throw new Error(`no database at ${database}`);
  return openEngine({ engine: 'sqlite', path: database, readonly: true });
}

/** Opens the store for one CLI verb and closes it whatever happens. */
export async function withStore<T>(location: StoreLocation, use: (store: Store) => Promise<T>): Promise<T> {
  const store = await openStore(location);
  try {
    return await use(store);
  } finally {
    await store.close();
  }
}

/**
 * A KeySealer bound to a passphrase, which stays in its closure only. The key is derived once,
 * here, from the passphrase and the database's sealing salt (made on first use), so unsealing a
 * row costs microseconds rather than a scrypt run per row (an EAB attempt used to cost ~120 ms).
 */
export function passphraseSealer(passphrase: string, settings: SealSettings): Promise<KeySealer> {
  return openSealer(passphrase, settings);
}

/**
 * Resolves the data passphrase (env, file, the development file in the data directory if there
 * is one, prompt) and returns a sealer for it, keyed with `store`'s sealing salt.
 */
export async function storeSealer(
  location: StoreLocation,
  store: SealSettings,
  passwordFile?: string,
): Promise<{ sealer: KeySealer; source: string }> {
  const { passphrase, source } = await dataPassphrase({
    ...(passwordFile === undefined ? {} : { passwordFile }),
    ...(location.dataDir === undefined ? {} : { devFile: dataLayout(location.dataDir).password }),
  });
  return { sealer: await passphraseSealer(passphrase, store), source };
}

/** `storeSealer` for a verb that has no store open yet: opens the location just for its salt. */
export async function dataSealer(
  location: StoreLocation,
  passwordFile?: string,
): Promise<{ sealer: KeySealer; source: string }> {
  return withStore(location, (store) => storeSealer(location, store, passwordFile));
}
