import type { Pool, PoolClient } from 'pg';
import { StoreError } from '../contracts/errors.js';
import { loadMigrations, refuseNewerSchema, type Migration } from '../migration-files.js';
import { advisoryKey } from './pg-context.js';
import { toStorageError } from './pg-errors.js';

// The PostgreSQL engine's migration runner. The files are migrations/postgres/ (numbered on their
// own, see its 0001_core.sql), the rules engine-neutral (migration-files.ts); what was applied is
// this database's `schema_migrations`.

/** The repository's `migrations/postgres/` folder; same depth from `src/postgres/` and from `dist/postgres/`. */
export const defaultPgMigrationsDir = new URL('../../../../migrations/postgres/', import.meta.url);

/** The PostgreSQL migrations in `dir` (default: the repository's), in numeric order. */
export function loadPgMigrations(dir: string | URL = defaultPgMigrationsDir): Migration[] {
  return loadMigrations(dir);
}

/**
 * Bring the database up to date: apply each not-yet-applied migration in numeric order, each in
 * its own transaction together with its row in `schema_migrations`, and return the file names
 * applied. The whole run holds a session advisory lock, so instances starting together apply
 * each file once: the others wait, then find it recorded. A file that fails leaves no trace
 * (PostgreSQL DDL is transactional) and is named in the `migrationFailed` error; the ones before
 * it stay applied. A database migrated by newer code is refused (`schemaTooNew`).
 */
export async function applyPgMigrations(
  pool: Pool,
  migrations: Migration[],
  now: () => Date = () => new Date(),
): Promise<string[]> {
  let client: PoolClient;
  try {
    client = await pool.connect();
  } catch (err) {
    throw toStorageError(err);
  }
  let broken: Error | undefined;
  const onError = (err: Error): void => {
    broken = err;
  };
  client.on('error', onError);
  try {
    await client.query(`SELECT pg_advisory_lock(${advisoryKey('$1')})`, ['migrate']);
    try {
      return await applyLocked(client, migrations, now);
    } finally {
      if (broken === undefined) await client.query(`SELECT pg_advisory_unlock(${advisoryKey('$1')})`, ['migrate']);
    }
  } catch (err) {
    throw toStorageError(err);
  } finally {
    client.removeListener('error', onError);
    // A client that failed mid-way may hold the lock or a broken transaction: never reuse it.
    client.release(broken ?? true);
  }
}

async function applyLocked(client: PoolClient, migrations: Migration[], now: () => Date): Promise<string[]> {
  await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL
  )`);
  const { rows } = await client.query<{ version: number }>('SELECT version FROM schema_migrations');
  const applied = new Set(rows.map((r) => r.version));
  refuseNewerSchema(applied, migrations);
  const done: string[] = [];
  for (const migration of migrations.filter((m) => !applied.has(m.version))) {
    try {
      await client.query('BEGIN');
      await client.query(migration.sql);
      await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [
        migration.version,
        migration.name,
        now(),
      ]);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      const storageError = toStorageError(err);
      if (storageError !== err) throw storageError;
      const reason = err instanceof Error ? err.message : String(err);
      throw new StoreError('migrationFailed', `migration ${migration.name} failed: ${reason}`, { cause: err });
    }
    done.push(migration.name);
  }
  return done;
}
