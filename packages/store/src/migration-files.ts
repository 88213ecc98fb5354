import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { StoreError } from './contracts/errors.js';

// The migration files and the rules every engine's runner follows (numbered files applied in
// order, each once, a schema newer than the code refused). How an engine records what it applied
// (SQLite: `schema_migrations`, found through `sqlite_master`) stays in that engine's runner.

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

// A database migrated by newer code may have columns or meanings this code does not know; writing
// to it could corrupt data the newer code relies on, so refuse rather than guess.
export function refuseNewerSchema(applied: Set<number>, migrations: Migration[]): void {
  const known = new Set(migrations.map((m) => m.version));
  const unknown = [...applied].filter((v) => !known.has(v)).sort((a, b) => a - b);
  if (unknown.length > 0) {
    throw new StoreError(
      'schemaTooNew',
      `the database has schema version(s) ${unknown.join(', ')} that this version of Shortleaf does not know; upgrade Shortleaf`,
    );
  }
}
