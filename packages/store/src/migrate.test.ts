import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { StoreError } from './errors.js';
import { applyMigrations, defaultMigrationsDir, loadMigrations } from './migrate.js';
import { SqliteStore } from './sqlite-store.js';

const repoMigrations = fileURLToPath(new URL('../../../migrations/', import.meta.url));

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'shortleaf-store-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A migrations folder holding the real 0001 (or every real migration) plus the given extra files. */
function migrationsDir(t: TestContext, extra: Record<string, string>, withInit: boolean | 'all' = true): string {
  const dir = join(tempDir(t), 'migrations');
  mkdirSync(dir);
  const real =
    withInit === 'all'
      ? readdirSync(repoMigrations).filter((f) => f.endsWith('.sql'))
      : withInit
        ? ['0001_init.sql']
        : [];
  for (const name of real) copyFileSync(join(repoMigrations, name), join(dir, name));
  for (const [name, sql] of Object.entries(extra)) writeFileSync(join(dir, name), sql);
  return dir;
}

function rawDb(t: TestContext, path: string): Database.Database {
  const db = new Database(path);
  t.after(() => db.close());
  return db;
}

function tableNames(db: Database.Database): string[] {
  return db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all() as string[];
}

function recorded(db: Database.Database): { version: number; name: string; applied_at: string }[] {
  return db.prepare('SELECT * FROM schema_migrations ORDER BY version').all() as {
    version: number;
    name: string;
    applied_at: string;
  }[];
}

function isStoreError(code: string, messagePart: string | RegExp) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof StoreError, `expected StoreError, got ${String(err)}`);
    assert.equal(err.code, code);
    if (typeof messagePart === 'string') assert.ok(err.message.includes(messagePart), err.message);
    else assert.match(err.message, messagePart);
    return true;
  };
}

describe('migrations', () => {
  it('the default folder is the repository migrations/ folder', () => {
    assert.equal(fileURLToPath(defaultMigrationsDir), repoMigrations);
    assert.deepEqual(
      loadMigrations().map((m) => m.name),
      loadMigrations(repoMigrations).map((m) => m.name),
    );
    assert.equal(loadMigrations()[0]?.name, '0001_init.sql');
  });

  it('applies each migration once, in order, records it, and applies nothing the second time', (t) => {
    const db = new Database(':memory:');
    t.after(() => db.close());
    const migrations = loadMigrations(repoMigrations);
    const names = readdirSync(repoMigrations)
      .filter((f) => /^\d{4}_.*\.sql$/.test(f))
      .sort();
    assert.ok(names.length >= 2, 'the repository has its migrations');
    const at = new Date('2025-01-02T03:04:05.000Z');
    assert.deepEqual(
      applyMigrations(db, migrations, () => at),
      names,
    );
    assert.deepEqual(
      recorded(db),
      names.map((name) => ({ version: Number(name.slice(0, 4)), name, applied_at: at.toISOString() })),
    );
    for (const table of [
      'audit_log',
      'certificates',
      'issuers',
      'provisioners',
      'roots',
      'settings',
      'token_uses',
      'revocations',
      'crls',
      'root_crls',
      'ocsp_signers',
    ]) {
      assert.ok(tableNames(db).includes(table), `missing table ${table}`);
    }
    assert.deepEqual(applyMigrations(db, migrations), []);
    assert.equal(recorded(db).length, names.length);
  });

  it('re-opening a store applies nothing', async (t) => {
    const path = join(tempDir(t), 'ca.db');
    await (await SqliteStore.open(path)).close();
    const before = recorded(rawDb(t, path));
    await (await SqliteStore.open(path)).close();
    assert.deepEqual(recorded(rawDb(t, path)), before);
  });

  it('applies in numeric, not lexical, order', (t) => {
    const dir = migrationsDir(
      t,
      { '9_make.sql': 'CREATE TABLE later (a INTEGER);', '10_alter.sql': 'ALTER TABLE later ADD COLUMN b TEXT;' },
      false,
    );
    const db = new Database(':memory:');
    t.after(() => db.close());
    assert.deepEqual(applyMigrations(db, loadMigrations(dir)), ['9_make.sql', '10_alter.sql']);
  });

  it('ignores files that are not NNNN_name.sql', (t) => {
    const dir = migrationsDir(t, { 'README.md': '# notes', '0002_draft.sql~': 'garbage' });
    assert.deepEqual(
      loadMigrations(dir).map((m) => m.name),
      ['0001_init.sql'],
    );
  });

  it('refuses two files with the same version', (t) => {
    const dir = migrationsDir(t, { '0002_a.sql': 'SELECT 1;', '0002_b.sql': 'SELECT 1;' });
    assert.throws(() => loadMigrations(dir), isStoreError('migrationFailed', 'share version 2'));
  });

  it('a failing migration rolls back completely and names the file; earlier ones stay', async (t) => {
    const dir = migrationsDir(t, {
      '0002_good.sql': 'CREATE TABLE good (x INTEGER);',
      '0003_bad.sql': 'CREATE TABLE half_done (x INTEGER);\nINSERT INTO no_such_table VALUES (1);',
      '0004_never.sql': 'CREATE TABLE never (x INTEGER);',
    });
    const path = join(tempDir(t), 'ca.db');
    await assert.rejects(
      SqliteStore.open(path, { migrationsDir: dir }),
      isStoreError('migrationFailed', '0003_bad.sql'),
    );
    const db = rawDb(t, path);
    assert.deepEqual(
      recorded(db).map((r) => r.name),
      ['0001_init.sql', '0002_good.sql'],
    );
    assert.ok(tableNames(db).includes('good'));
    assert.ok(!tableNames(db).includes('half_done'), 'the first statement of the failed file must be rolled back');
    assert.ok(!tableNames(db).includes('never'), 'nothing after the failed file is applied');
  });

  it('refuses a database with a version this code has no file for (schemaTooNew)', async (t) => {
    const newer = migrationsDir(t, { '9999_future.sql': 'CREATE TABLE future (x INTEGER);' }, 'all');
    const path = join(tempDir(t), 'ca.db');
    await (await SqliteStore.open(path, { migrationsDir: newer })).close();
    await assert.rejects(
      SqliteStore.open(path, { migrationsDir: repoMigrations }),
      isStoreError('schemaTooNew', /version\(s\) 9999 /),
    );
    await assert.rejects(
      SqliteStore.open(path, { migrationsDir: repoMigrations, readonly: true }),
      isStoreError('schemaTooNew', '9999'),
    );
  });

  it('a read-only open refuses a database that still needs migrations, and writes nothing', async (t) => {
    const path = join(tempDir(t), 'ca.db');
    await (await SqliteStore.open(path)).close();
    const before = recorded(rawDb(t, path)).length;
    const dir = migrationsDir(t, { '9999_next.sql': 'CREATE TABLE next (x INTEGER);' }, 'all');
    await assert.rejects(
      SqliteStore.open(path, { migrationsDir: dir, readonly: true }),
      isStoreError('migrationFailed', '9999_next.sql'),
    );
    assert.equal(recorded(rawDb(t, path)).length, before);
  });

  it('a missing migrations folder is a migrationFailed error', async (t) => {
    const path = join(tempDir(t), 'ca.db');
    await assert.rejects(
      SqliteStore.open(path, { migrationsDir: join(tempDir(t), 'nope') }),
      isStoreError('migrationFailed', 'nope'),
    );
  });
});
