import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { StoreError } from './errors.js';
import { toStorageError } from './sqlite-errors.js';

/** One numbered SQL file from the migrations folder. */
export interface Migration {
  version: number;
  /** The file name, e.g. `0001_init.sql`: what is recorded, returned and named in errors. */
  name: string;
  sql: string;
}

/** The repository's `migrations/` folder; same depth from `src/` and from `dist/`. */
export const defaultMigrationsDir = new URL('../../../migrations/', import.meta.url);

const fileNamePattern = /^(\d+)_([A-Za-z0-9_-]+)\.sql$/;

/**
 * Read the `NNNN_name.sql` files of a folder in numeric order. Other files (a README, an editor's
 * backup) are ignored; two files with the same number are refused, because which one "counts"
 * would depend on directory order.
 */
export function loadMigrations(dir: string | URL = defaultMigrationsDir): Migration[] {
  const path = typeof dir === 'string' ? dir : fileURLToPath(dir);
  let files: string[];
  try {
    files = readdirSync(path);
  } catch (err) {
    throw new StoreError('migrationFailed', `cannot read the migrations folder ${path}`, { cause: err });
  }
  const byVersion = new Map<number, Migration>();
  for (const name of files) {
    const match = fileNamePattern.exec(name);
    if (match === null) continue;
    const version = Number(match[1]);
    const existing = byVersion.get(version);
    if (existing !== undefined) {
      throw new StoreError('migrationFailed', `migrations ${existing.name} and ${name} share version ${version}`);
    }
    byVersion.set(version, { version, name, sql: readFileSync(join(path, name), 'utf8') });
  }
  return [...byVersion.values()].sort((a, b) => a.version - b.version);
}

function hasMigrationsTable(db: Database.Database): boolean {
  return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").get() !== undefined;
}

function appliedVersions(db: Database.Database): Set<number> {
  if (!hasMigrationsTable(db)) return new Set();
  const rows = db.prepare('SELECT version FROM schema_migrations').pluck().all() as number[];
  return new Set(rows);
}

// A database migrated by newer code may have columns or meanings this code does not know; writing
// to it could corrupt data the newer code relies on, so refuse rather than guess.
function refuseNewerSchema(applied: Set<number>, migrations: Migration[]): void {
  const known = new Set(migrations.map((m) => m.version));
  const unknown = [...applied].filter((v) => !known.has(v)).sort((a, b) => a - b);
  if (unknown.length > 0) {
    throw new StoreError(
      'schemaTooNew',
      `the database has schema version(s) ${unknown.join(', ')} that this version of Shortleaf does not know; upgrade Shortleaf`,
    );
  }
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
export function applyMigrations(db: Database.Database, migrations: Migration[], now: () => Date = () => new Date()): string[] {
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
