import { StoreError } from './errors.js';

/** The extended result code better-sqlite3 puts on its errors, e.g. `SQLITE_CONSTRAINT_UNIQUE`. */
export function sqliteCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null || !('code' in err)) return undefined;
  const code = (err as { code: unknown }).code;
  return typeof code === 'string' && code.startsWith('SQLITE_') ? code : undefined;
}

/** True when the error is a PRIMARY KEY or UNIQUE violation: "that row already exists". */
export function isUniqueViolation(err: unknown): boolean {
  const code = sqliteCode(err);
  return code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE';
}

/** True when the error is a FOREIGN KEY violation: the row points at something that is not there. */
export function isForeignKeyViolation(err: unknown): boolean {
  return sqliteCode(err) === 'SQLITE_CONSTRAINT_FOREIGNKEY';
}

// Failures of the disk or the file, not of the request: the same call may succeed later or on
// another instance, so callers answer "try again" rather than "you sent something wrong".
const unavailablePrefixes = [
  'SQLITE_FULL',
  'SQLITE_READONLY',
  'SQLITE_IOERR',
  'SQLITE_BUSY',
  'SQLITE_LOCKED',
  'SQLITE_CANTOPEN',
  'SQLITE_CORRUPT',
  'SQLITE_NOTADB',
];

/**
 * Turn a SQLite failure of the storage itself into `StoreError('storageUnavailable')`, keeping the
 * original as `cause`. Anything else (a StoreError, a constraint we did not expect, a bug) is
 * returned unchanged so it is not disguised as an outage.
 */
export function toStorageError(err: unknown): unknown {
  const code = sqliteCode(err);
  if (code === undefined) return err;
  if (!unavailablePrefixes.some((prefix) => code === prefix || code.startsWith(`${prefix}_`))) return err;
  return new StoreError('storageUnavailable', `storage unavailable (${code})`, { cause: err });
}
