import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { applyMigrations, loadMigrations } from './migrate.js';

const repoMigrations = fileURLToPath(new URL('../../../migrations/', import.meta.url));
const T = '2031-03-01T12:00:00.000Z';

/** A database file opened as the store opens it: foreign keys on while migrations run. */
function openDb(t: TestContext): Database.Database {
  const dir = mkdtempSync(join(tmpdir(), 'shortleaf-0007-'));
  const db = new Database(join(dir, 'ca.db'));
  t.after(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });
  db.pragma('foreign_keys = ON');
  return db;
}

/** Provisioners of both types, and rows in every table that references one (and below them). */
function fill(db: Database.Database): void {
  const provisioner = db.prepare(
    'INSERT INTO provisioners (name, type, public_jwk, policy, created_at, options) VALUES (?, ?, ?, ?, ?, ?)',
  );
  provisioner.run(
    'ops',
    'jwk',
    '{"kty":"EC","crv":"P-256","x":"x","y":"y"}',
    '{"names":{"dns":["*.internal"]}}',
    T,
    '{}',
  );
  provisioner.run('acme', 'acme', null, '{}', T, '{"requireEab":true}');
  provisioner.run('acme-2', 'acme', null, '{"mtlsRenewal":true}', T, '{}');
  const eab = db.prepare(
    'INSERT INTO acme_eab_keys (kid, provisioner, sealed_key, account_id, created_at, bound_at) VALUES (?, ?, ?, NULL, ?, NULL)',
  );
  eab.run('kid-unbound', 'acme', Buffer.from('sealed-1'), T);
  eab.run('kid-bound', 'acme', Buffer.from('sealed-2'), T);
  const account = db.prepare(
    "INSERT INTO acme_accounts (id, provisioner, thumbprint, jwk, status, contact, eab_kid, created_at) VALUES (?, ?, ?, '{}', 'valid', '[]', ?, ?)",
  );
  account.run('acct-1', 'acme', 'tp-1', 'kid-bound', T);
  account.run('acct-2', 'acme-2', 'tp-2', null, T);
  db.prepare("UPDATE acme_eab_keys SET account_id = 'acct-1', bound_at = ? WHERE kid = 'kid-bound'").run(T);
  db.prepare(
    "INSERT INTO acme_orders (id, account_id, status, identifiers, expires, created_at) VALUES ('order-1', 'acct-1', 'pending', '[]', ?, ?)",
  ).run(T, T);
}

const dump = (db: Database.Database, table: string): unknown[] => db.prepare(`SELECT * FROM ${table} ORDER BY 1`).all();
const schemaOf = (db: Database.Database, table: string): unknown =>
  db.prepare("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?").pluck().get(table);
const REFERENCING = ['acme_accounts', 'acme_eab_keys', 'acme_orders'];

describe('migration 0007: the provisioner type is no longer fixed by a CHECK', () => {
  it('keeps every provisioner and every row that references one, with foreign keys on as the store runs it', (t) => {
    const db = openDb(t);
    const migrations = loadMigrations(repoMigrations);
    assert.ok(migrations.some((m) => m.name === '0007_provisioner_type_open.sql'));
    applyMigrations(
      db,
      migrations.filter((m) => m.version < 7),
    );
    fill(db);
    // Before: the schema names the types, so a new one cannot be stored.
    assert.throws(
      () =>
        db
          .prepare("INSERT INTO provisioners (name, type, policy, created_at) VALUES ('k8s', 'kubernetes', '{}', ?)")
          .run(T),
      /CHECK constraint failed/,
    );
    const before = Object.fromEntries(['provisioners', ...REFERENCING].map((table) => [table, dump(db, table)]));
    const schemas = Object.fromEntries(REFERENCING.map((table) => [table, schemaOf(db, table)]));

    const applied = applyMigrations(db, migrations);
    assert.ok(applied.includes('0007_provisioner_type_open.sql'), applied.join(', '));

    for (const [table, rows] of Object.entries(before)) assert.deepEqual(dump(db, table), rows, table);
    for (const [table, sql] of Object.entries(schemas))
      assert.equal(schemaOf(db, table), sql, `${table} still references provisioners (name) as before`);
    assert.deepEqual(db.pragma('foreign_key_check'), []);
    assert.equal(db.pragma('foreign_keys', { simple: true }), 1, 'foreign keys stay on');
    assert.equal(db.pragma('defer_foreign_keys', { simple: true }), 0, 'deferring ended with the migration');
    assert.equal(schemaOf(db, 'provisioners_before_0007'), undefined, 'the holding table is gone');

    // After: any type the registry knows can be stored; an empty one cannot.
    db.prepare("INSERT INTO provisioners (name, type, policy, created_at) VALUES ('k8s', 'kubernetes', '{}', ?)").run(
      T,
    );
    assert.equal(db.prepare("SELECT options FROM provisioners WHERE name = 'k8s'").pluck().get(), '{}');
    assert.throws(
      () =>
        db.prepare("INSERT INTO provisioners (name, type, policy, created_at) VALUES ('blank', '', '{}', ?)").run(T),
      /CHECK constraint failed/,
    );
    // The references still hold: no account for a provisioner that does not exist, no deleting one in use.
    assert.throws(
      () =>
        db
          .prepare(
            "INSERT INTO acme_accounts (id, provisioner, thumbprint, jwk, status, created_at) VALUES ('acct-x', 'nobody', 'tp-x', '{}', 'valid', ?)",
          )
          .run(T),
      /FOREIGN KEY constraint failed/,
    );
    assert.throws(
      () => db.prepare("DELETE FROM provisioners WHERE name = 'acme'").run(),
      /FOREIGN KEY constraint failed/,
    );
    db.prepare("DELETE FROM provisioners WHERE name = 'ops'").run();
  });

  it('applies to an empty database and with foreign keys off alike', (t) => {
    const db = openDb(t);
    db.pragma('foreign_keys = OFF');
    applyMigrations(db, loadMigrations(repoMigrations));
    db.prepare("INSERT INTO provisioners (name, type, policy, created_at) VALUES ('k8s', 'kubernetes', '{}', ?)").run(
      T,
    );
    assert.deepEqual(dump(db, 'provisioners').length, 1);
  });
});
