import Database from 'better-sqlite3';

/** An exclusive lock on a file, held until `release()` or until the process ends. */
export interface FileLock {
  release(): void;
}

/**
 * Takes an exclusive lock on `path` (created if missing) without waiting, or returns null when
 * another process holds it. The lock is SQLite's own: a connection in `locking_mode=EXCLUSIVE`
 * that has begun an exclusive transaction keeps its POSIX advisory lock until it closes. The
 * kernel drops that lock when the holder dies, even by SIGKILL, so there is never a stale lock
 * to detect or take over, and a recycled PID can never keep a data directory locked.
 */
export function tryLockFile(path: string): FileLock | null {
  const db = new Database(path, { timeout: 0 });
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('BEGIN EXCLUSIVE; COMMIT;');
  } catch (err) {
    db.close();
    if (
      typeof err === 'object' &&
      err !== null &&
      'code' in err &&
      String((err as { code: unknown }).code).startsWith('SQLITE_BUSY')
    )
      return null;
    throw err;
  }
  return { release: () => void (db.open && db.close()) };
}
