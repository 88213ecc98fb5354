import { randomBytes } from 'node:crypto';
import {
  closeSync,
  copyFileSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { SqliteStore, StoreError } from '@shortleaf/store';
import { out, parse, UsageError } from '../cli.js';
import { cliOperator } from '../config.js';
import { LOCATION_FLAGS, storeLocation } from '../data.js';
import { acquireInstanceLock } from '../instance-lock.js';
import { recordRestore } from '../crl-floor.js';
import { dataLayout } from '../layout.js';

const NOT_INCLUDED =
  'the backup holds the sealed keys but not the passphrase that unseals them (DATA/password or SHORTLEAF_PASSWORD): keep that separately';

/**
 * The data directory a backup or restore works on. Both copy SQLite's file; a PostgreSQL CA is
 * backed up by PostgreSQL's own tools, which also give point-in-time recovery.
 */
function sqliteDataDir(verb: string, values: { data?: string | undefined; database?: string | undefined }): string {
  const location = storeLocation(values);
  if (location.engine === 'postgres')
    throw new UsageError(
      `${verb} copies a SQLite data directory; back up a PostgreSQL CA with pg_dump or point-in-time recovery (README: High availability)`,
    );
  return location.dataDir;
}

// A private temporary file beside `path`, so the final rename stays on one filesystem.
function privateTempFile(path: string): string {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  closeSync(openSync(tmp, 'wx', 0o600));
  return tmp;
}

function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * `shortleaf backup --data DIR --out FILE [--force]`: a consistent copy of the database, taken
 * online with SQLite's backup API while the server keeps issuing. The file is 0600 (it holds the
 * sealed intermediate key), passes `integrity_check`, and appears under its name only when complete.
 */
export async function backupCommand(args: string[]): Promise<void> {
  const { values } = parse(args, { ...LOCATION_FLAGS, out: { type: 'string' }, force: { type: 'boolean' } }, ['out']);
  const layout = dataLayout(sqliteDataDir('backup', values));
  if (!existsSync(layout.database)) throw new Error(`no database at ${layout.database}`);
  const target = resolve(values.out!);
  if (existsSync(target) && !values.force) throw new Error(`${target} already exists; pass --force to replace it`);
  mkdirSync(dirname(target), { recursive: true, mode: 0o700 });
  // Read-only: a backup never migrates or otherwise changes the database it copies.
  const store = await SqliteStore.open(layout.database, { readonly: true });
  const tmp = privateTempFile(target);
  try {
    await store.backup(tmp);
    fsyncPath(tmp);
    renameSync(tmp, target);
    fsyncPath(dirname(target));
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  } finally {
    await store.close();
  }
  out(`backup of ${layout.database} written to ${target} (${statSync(target).size} bytes, mode 0600)`);
  out(`note: ${NOT_INCLUDED}`);
}

/**
 * `shortleaf restore --data DIR --from FILE [--force]`: puts a backup in place as DIR's database.
 * Refused while a server holds DIR (its instance lock, which restore then holds itself), and when
 * DIR already has a database unless `--force`. The file must pass `integrity_check` and carry a
 * Shortleaf schema this version knows; it is checked and prepared as a private copy inside DIR,
 * then renamed over the database, so a failed restore leaves DIR as it was.
 *
 * Serials need nothing: they are 128-bit random and unique by constraint. CRL numbers do: the
 * original may have published numbers after the backup that the backup never saw, and two
 * different CRLs under one number would let a verifier keep the stale one. The restored database
 * records a floor for its next CRL number: the restore time in microseconds since 1970. A CA's
 * numbers grow by one per CRL, far slower than one per microsecond, so the floor exceeds every
 * number published before the restore, including after earlier restores, as long as clocks are right.
 */
export async function restoreCommand(args: string[]): Promise<void> {
  const { values } = parse(args, { ...LOCATION_FLAGS, from: { type: 'string' }, force: { type: 'boolean' } }, ['from']);
  const layout = dataLayout(sqliteDataDir('restore', values));
  const from = resolve(values.from!);
  if (!existsSync(from) || !statSync(from).isFile()) throw new UsageError(`--from ${from}: no such file`);
  mkdirSync(layout.dataDir, { recursive: true, mode: 0o700 });

  let lock;
  try {
    lock = acquireInstanceLock(layout.dataDir);
  } catch (err) {
    throw new Error(`restore refused: ${(err as Error).message}`);
  }
  try {
    if (existsSync(layout.database) && !values.force) {
      throw new Error(
        `${layout.database} already exists; restore into an empty data directory, or pass --force to replace it`,
      );
    }
    const tmp = privateTempFile(layout.database);
    try {
      copyFileSync(from, tmp);
      try {
        await SqliteStore.verifyFile(tmp);
      } catch (err) {
        if (err instanceof StoreError)
          throw new StoreError(
            err.code,
            `${from} is not a backup this version can restore: ${err.message.replaceAll(tmp, 'the file')}`,
            { cause: err },
          );
        throw err;
      }
      // Opening migrates a backup taken by an older version; a newer one was refused above.
      const store = await SqliteStore.open(tmp);
      try {
        await recordRestore(store, from, new Date());
      } finally {
        await store.close();
      }
      fsyncPath(tmp);
      // A -wal left by the replaced database must never be replayed into the restored one.
      for (const stale of [`${layout.database}-wal`, `${layout.database}-shm`]) rmSync(stale, { force: true });
      renameSync(tmp, layout.database);
      fsyncPath(layout.dataDir);
    } catch (err) {
      for (const file of [tmp, `${tmp}-wal`, `${tmp}-shm`]) rmSync(file, { force: true });
      throw err;
    }
  } finally {
    lock.release();
  }
  out(`restored ${from} into ${layout.database}; the next CRL number will be at least the restore floor`);
  out(
    `note: ${NOT_INCLUDED}. One-time tokens spent on the original after the backup could be spent again until they expire.`,
  );
}
