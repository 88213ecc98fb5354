import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tryLockFile } from '@shortleaf/store';

/** Held by the one `shortleaf serve` of a data directory until it stops. */
export interface InstanceLock {
  release(): void;
}

/**
 * Makes `shortleaf serve` the only server of its data directory, or throws a message naming the
 * server that already is. Two servers on one SQLite file would each keep their own in-memory CRL
 * number, OCSP cache and ACME nonces, and hand out answers the other contradicts.
 *
 * The lock is a kernel advisory lock on `DATA/serve.lock` (through SQLite, see `tryLockFile`):
 * it disappears with its process however that process ends, so a server killed with SIGKILL
 * leaves nothing to clean up. `DATA/serve.pid` only names the holder in the message. The CLI's
 * own verbs (revoke, provisioner add, certs list) do not take it: they write through SQLite's
 * usual locking while the server runs; `restore` and `store copy` do, so no server writes while
 * they replace or read the whole database. On PostgreSQL nothing takes it: any number of servers
 * share the database and coordinate through it.
 */
export function acquireInstanceLock(dataDir: string, now: Date = new Date()): InstanceLock {
  const lockPath = join(dataDir, 'serve.lock');
  const pidPath = join(dataDir, 'serve.pid');
  const lock = tryLockFile(lockPath);
  if (lock === null) {
    throw new Error(
      `another shortleaf serve (${describeHolder(pidPath)}) is already using the data directory ${dataDir}; stop it first, or give this one its own --data`,
    );
  }
  const mine = JSON.stringify({ pid: process.pid, startedAt: now.toISOString() });
  writeFileSync(pidPath, `${mine}\n`, { mode: 0o600 });
  return {
    release() {
      try {
        if (readFileSync(pidPath, 'utf8').trim() === mine) rmSync(pidPath, { force: true });
      } catch {
        /* already gone */
      }
      lock.release();
    },
  };
}

function describeHolder(pidPath: string): string {
  try {
    const { pid, startedAt } = JSON.parse(readFileSync(pidPath, 'utf8')) as { pid?: unknown; startedAt?: unknown };
    if (typeof pid === 'number') return `pid ${pid}${typeof startedAt === 'string' ? `, started ${startedAt}` : ''}`;
  } catch {
    /* written a moment from now, or removed: the lock itself is what counts */
  }
  return 'pid unknown';
}
