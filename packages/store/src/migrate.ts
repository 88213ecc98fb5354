import type Database from 'better-sqlite3';
import { StoreError } from './errors.js';
import { refuseNewerSchema, type Migration } from './migration-files.js';
import { toStorageError } from './sqlite-errors.js';

// The SQLite engine's migration runner: what it applied is in `schema_migrations`, applied under
// SQLite's write lock. The files and the rules are engine-neutral (migration-files.ts).
export { defaultMigrationsDir, loadMigrations, type Migration } from './migration-files.js';

function hasMigrationsTable(db: Database.Database): boolean {
  return (
    db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").get() !== undefined
  );
}

function appliedVersions(db: Database.Database): Set<number> {
  if (!hasMigrationsTable(db)) return new Set();
  const rows = db.prepare('SELECT version FROM schema_migrations').pluck().all() as number[];
  return new Set(rows);
}

/**
 * The migrations not yet applied to `db`, without changing anything. Used for read-only opens,
 * which cannot migrate; throws `schemaTooNew` like `applyMigrations`.
 */
export function pendingMigrations(db: Database.Database, migrations: Migration[]): Migration[] {
  const applied = appliedVersions(db);
  refuseNewerSchema(applied, migrations);
  return migrations.filter((m) => !applied.has(m.version));
}

/**
 * Bring `db` up to date: apply each not-yet-applied migration in numeric order, each in its own
 * transaction together with its row in `schema_migrations`, and return the file names applied.
 * A file that fails leaves no trace (SQLite DDL is transactional) and is named in the
 * `migrationFailed` error; the ones before it stay applied.
 */
export function applyMigrations(
  db: Database.Database,
  migrations: Migration[],
  now: () => Date = () => new Date(),
): string[] {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at TEXT NOT NULL
  )`);
  refuseNewerSchema(appliedVersions(db), migrations);

  const isApplied = db.prepare('SELECT 1 FROM schema_migrations WHERE version = ?');
  const record = db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
  const applied: string[] = [];
  for (const migration of migrations) {
    // IMMEDIATE takes the write lock before the check, so two processes starting together
    // cannot both apply the same file; the loser sees the row and skips it.
    const applyOne = db.transaction((): boolean => {
      if (isApplied.get(migration.version) !== undefined) return false;
      db.exec(migration.sql);
      record.run(migration.version, migration.name, now().toISOString());
      return true;
    });
    try {
      if (applyOne.immediate()) applied.push(migration.name);
    } catch (err) {
      const storageError = toStorageError(err);
      if (storageError !== err) throw storageError;
      const reason = err instanceof Error ? err.message : String(err);
      throw new StoreError('migrationFailed', `migration ${migration.name} failed: ${reason}`, { cause: err });
    }
  }
  return applied;
}
