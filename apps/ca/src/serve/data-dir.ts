import { existsSync } from 'node:fs';
import {
  assertTemplatesFitProvisioners,
  loadActiveIssuer,
  type CertificateTemplate,
  type KeySealer,
  type LoadedIssuer,
  type Logger,
} from '@shortleaf/authority';
import { StoreError, type Store } from '@shortleaf/store';
import { Stopped } from '../cli.js';
import { initCa } from '../commands/init.js';
import { redactDatabaseUrl, redactUrlsIn } from '../database-url.js';
import { describeLocation, openStore, storeSealer, type PostgresLocation, type StoreLocation } from '../data.js';
import { acquireInstanceLock } from '../instance-lock.js';
import { dataLayout } from '../layout.js';
import { stopSignals } from './signals.js';

/** The first wait after a failed connection; each next one doubles, up to the cap. */
const RETRY_FIRST_MS = 1_000;
const RETRY_CAP_MS = 10_000;

/** What `serve` runs on once its store is open: the store, the unsealer, the active intermediate. */
export interface OpenedStore {
  store: Store;
  sealer: KeySealer;
  issuer: LoadedIssuer;
  /** Gives up what start-up took beside the store (SQLite: the instance lock). */
  release(): void;
}

interface OpenOptions {
  location: StoreLocation;
  passwordFile: string | undefined;
  templates: ReadonlyMap<string, CertificateTemplate>;
  logger: Logger;
}

/**
 * Opens the store `serve` runs on, unseals the active intermediate and checks the templates
 * against the provisioners. SQLite and PostgreSQL start differently (see each below); on failure
 * nothing is left open or locked.
 */
export async function openDataDir(opts: OpenOptions): Promise<OpenedStore> {
  const { location, logger } = opts;
  if (location.dataDir !== undefined && existsSync(dataLayout(location.dataDir).offlineRoot)) {
    logger.warn('development_root_present', {
      path: dataLayout(location.dataDir).offlineRoot,
      note: 'the root key is on this machine; production keeps it offline. The server never reads it.',
    });
  }
  return location.engine === 'sqlite' ? openSqlite(location.dataDir, opts) : openPostgres(location, opts);
}

/**
 * SQLite, the single-process default: initialises a development CA on first run, and takes the
 * one-server-per-directory lock before the database is opened and migrated.
 */
async function openSqlite(dataDir: string, opts: OpenOptions): Promise<OpenedStore> {
  const location: StoreLocation = { engine: 'sqlite', dataDir };
  if (!existsSync(dataLayout(dataDir).database)) {
    opts.logger.warn('first_run_init', { dataDir, note: 'no database found: initialising a development CA' });
    await initCa({ engine: 'sqlite', dataDir });
  }
  const instanceLock = acquireInstanceLock(dataDir);
  try {
    const store = await openStore(location);
    return await unsealed(store, location, opts, () => instanceLock.release());
  } catch (err) {
    instanceLock.release();
    throw err;
  }
}

/**
 * PostgreSQL, any number of instances on one database: nothing local is locked, and nothing is
 * initialised. Instances starting together against an empty database would each make a CA, so
 * `serve` refuses one and names the command that makes it, once. A database that cannot be
 * reached is waited for (see `openWhenReachable`).
 */
async function openPostgres(location: PostgresLocation, opts: OpenOptions): Promise<OpenedStore> {
  // Left behind by `store copy`, most likely: say it is not what this server runs on.
  if (location.dataDir !== undefined && existsSync(dataLayout(location.dataDir).database))
    opts.logger.warn('sqlite_database_ignored', {
      path: dataLayout(location.dataDir).database,
      note: 'this server runs on PostgreSQL; never serve the SQLite copy beside it',
    });
  const store = await openWhenReachable(location, opts.logger);
  try {
    if ((await store.getActiveIssuer()) === null)
      throw new Error(
        `${describeLocation(location)} has no active intermediate, and serve never makes a CA in a shared database (instances starting together would each make their own). Run, once: shortleaf init --data DIR --database URL (development), or finish the ceremony with shortleaf intermediate import --database URL`,
      );
  } catch (err) {
    await store.close();
    throw err;
  }
  return unsealed(store, location, opts, () => undefined);
}

/** Unseals the active intermediate of an open store; closes the store if that fails. */
async function unsealed(
  store: Store,
  location: StoreLocation,
  opts: OpenOptions,
  release: () => void,
): Promise<OpenedStore> {
  try {
    const { sealer } = await storeSealer(location, store, opts.passwordFile);
    const issuer = await loadActiveIssuer(store, sealer);
    await assertTemplatesFitProvisioners(opts.templates, store);
    return { store, sealer, issuer, release };
  } catch (err) {
    await store.close();
    throw err;
  }
}

/**
 * Opens a PostgreSQL store, waiting for a database that cannot be reached yet (it may be starting,
 * failing over, or behind a network not up yet): each failure is logged as `database_unavailable`
 * with the URL (password removed), the error and the wait, and retried after 1 s, 2 s, 4 s, …,
 * at most 10 s, until it succeeds or SIGTERM/SIGINT stops `serve` (`Stopped`). Any other failure
 * (a schema too new, a refused login) is thrown at once.
 */
async function openWhenReachable(location: PostgresLocation, logger: Logger): Promise<Store> {
  const signals = stopSignals();
  const stop = signals.signal.then((signal) => ({ signal }));
  try {
    for (let attempt = 1; ; attempt++) {
      const opening = openStore(location);
      const outcome = await Promise.race([
        opening.then(
          (store) => ({ store }),
          (error: unknown) => ({ error }),
        ),
        stop,
      ]);
      if ('store' in outcome) return outcome.store;
      if ('signal' in outcome) {
        // An attempt still under way must not leave a connection behind if it succeeds later.
        opening.then((store) => store.close()).catch(() => undefined);
        throw stopped(outcome.signal, logger);
      }
      if (!(outcome.error instanceof StoreError && outcome.error.code === 'storageUnavailable')) throw outcome.error;
      const waitMs = Math.min(RETRY_FIRST_MS * 2 ** (attempt - 1), RETRY_CAP_MS);
      logger.warn('database_unavailable', {
        database: redactDatabaseUrl(location.url),
        attempt,
        error: redactUrlsIn(describeError(outcome.error)),
        note: `retrying in ${waitMs / 1000} s`,
      });
      let timer: NodeJS.Timeout | undefined;
      const waited = await Promise.race([
        new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), waitMs))),
        stop,
      ]);
      clearTimeout(timer);
      if (waited !== null) throw stopped(waited.signal, logger);
    }
  } finally {
    signals.release();
  }
}

function stopped(signal: string, logger: Logger): Stopped {
  logger.info('stopped', { signal, note: 'stopped while waiting for the database' });
  return new Stopped(signal);
}

/** The error and what caused it (`PostgreSQL unavailable: ECONNREFUSED` says little alone). */
function describeError(err: StoreError): string {
  const cause = err.cause;
  // `localhost` resolves to two addresses: Node reports both failures in an AggregateError.
  const causes = cause instanceof AggregateError ? cause.errors : [cause];
  const messages = causes.filter((c): c is Error => c instanceof Error && c.message !== '').map((c) => c.message);
  return messages.length === 0 ? err.message : `${err.message} (${messages.join('; ')})`;
}
