import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { StoreError } from './errors.js';
import { loadMigrations, pendingMigrations } from './migrate.js';
import type { OpenOptions } from './records.js';
import { toStorageError } from './sqlite-errors.js';

// The SQLite engine's file: its permissions, SQLite's integrity check, online backup, and the
// check that a file is a Shortleaf database this code can open.

// The database holds sealed keys and the record of every certificate: only the CA's own user may
// read it. The folder is made private only when we create it; an existing one is the operator's.
export function prepareDatabaseFile(path: string): void {
  const dir = dirname(resolve(path));
  if (!existsSync(dir)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700); // mode passed to mkdir is filtered by the umask
  }
  // Create it 0600 before SQLite does, so it is never readable by others even for a moment;
  // SQLite gives the -wal and -shm files the mode of the database file.
  closeSync(openSync(path, 'a', 0o600));
  for (const file of [path, `${path}-wal`, `${path}-shm`]) {
    if (existsSync(file)) chmodSync(file, 0o600);
  }
}

// SQLite's own check of every page, index and constraint; "ok" or a list of problems.
export function checkIntegrity(db: Database.Database, path: string): void {
  const result = db.pragma('integrity_check', { simple: true }) as string;
  if (result !== 'ok')
    throw new StoreError('notShortleafDatabase', `${path} fails SQLite's integrity check: ${result}`);
}

/**
 * Copies the database to `destination` with SQLite's online backup API while other connections
 * keep writing. All pages are copied in one step, which is one read transaction: under WAL that
 * is a consistent snapshot and never blocks the writer, and a write by another process cannot
 * restart a copy that is already half done.
 */
export async function backupDatabase(db: Database.Database, destination: string): Promise<void> {
  try {
    await db.backup(destination, { progress: () => 0x7fffffff });
    // The copy is one self-contained file (no -wal beside it), checked before anyone relies on it.
    const copy = new Database(destination, { fileMustExist: true });
    try {
      copy.pragma('journal_mode = DELETE');
      checkIntegrity(copy, destination);
    } finally {
      copy.close();
    }
  } catch (err) {
    throw err instanceof StoreError ? err : toStorageError(err);
  }
}

/**
 * Checks that the file at `path` is a Shortleaf database this version can open: SQLite's
 * `integrity_check` passes, its schema records Shortleaf's migrations, and none newer than this
 * code knows (`schemaTooNew`). Anything else is `notShortleafDatabase`, with SQLite's reason.
 * Opens the file read-write (SQLite may touch its journal), so check a copy you own.
 */
export async function verifyDatabaseFile(path: string, opts: Pick<OpenOptions, 'migrationsDir'> = {}): Promise<void> {
  const migrations = loadMigrations(opts.migrationsDir);
  let db: Database.Database;
  try {
    db = new Database(path, { fileMustExist: true });
  } catch (err) {
    throw new StoreError('notShortleafDatabase', `${path} cannot be opened as a database: ${(err as Error).message}`, {
      cause: err,
    });
  }
  try {
    checkIntegrity(db, path);
    const hasSchema = (table: string) =>
      db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(table) !== undefined;
    if (!hasSchema('schema_migrations') || !hasSchema('certificates') || !hasSchema('issuers')) {
      throw new StoreError(
        'notShortleafDatabase',
        `${path} is an SQLite database but not a Shortleaf one (no Shortleaf schema)`,
      );
    }
    pendingMigrations(db, migrations); // throws schemaTooNew
  } catch (err) {
    if (err instanceof StoreError) throw err;
    throw new StoreError('notShortleafDatabase', `${path} is not a Shortleaf database: ${(err as Error).message}`, {
      cause: err,
    });
  } finally {
    db.close();
  }
}
