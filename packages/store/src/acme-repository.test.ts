import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { loadMigrations } from './migrate.js';
import { SqliteStore } from './sqlite-store.js';
import { openStore, t0, tempDir } from './test-fixtures.js';

const repoMigrations = fileURLToPath(new URL('../../../migrations/', import.meta.url));

// What only the SQLite engine does for ACME state: its migrations and its indexes. The behaviour
// every engine shares is the contract suite (contract-suite/acme.ts).
describe('AcmeRepository: schema', () => {
  it('an existing database at schema version 2 migrates to 3 and keeps its provisioners', async (t) => {
    const dir = tempDir(t);
    const v2 = join(dir, 'migrations-v2');
    mkdirSync(v2);
    for (const name of ['0001_init.sql', '0002_revocation.sql'])
      copyFileSync(join(repoMigrations, name), join(v2, name));
    const path = join(dir, 'ca.db');
    await (await SqliteStore.open(path, { migrationsDir: v2 })).close();
    // Written as the previous version wrote it: its INSERT names no options column.
    const raw = new Database(path);
    raw
      .prepare('INSERT INTO provisioners (name, type, public_jwk, policy, created_at) VALUES (?, ?, ?, ?, ?)')
      .run('ops', 'jwk', '{"kty":"EC"}', '{"dns":["*.internal"]}', t0.toISOString());
    assert.deepEqual(raw.prepare('SELECT version FROM schema_migrations ORDER BY version').pluck().all(), [1, 2]);
    raw.close();

    const store = await openStore(t, path);
    assert.deepEqual(await store.getProvisioner('ops'), {
      name: 'ops',
      type: 'jwk',
      publicJwk: '{"kty":"EC"}',
      policy: '{"dns":["*.internal"]}',
      options: '{}',
      createdAt: t0,
    });
    assert.equal(
      (await store.counts()).schema_migrations,
      loadMigrations().length,
      'every migration in the folder is applied',
    );
    await store.addProvisioner({ name: 'acme', type: 'acme', publicJwk: null, policy: '{}', createdAt: t0 });
    await store.acme.createAccount({
      id: 'acct-1',
      provisioner: 'acme',
      thumbprint: 'tp-acct-1',
      jwk: '{"kty":"EC"}',
      status: 'valid',
      contact: [],
      eabKid: null,
      createdAt: t0,
    });
    assert.equal((await store.acme.getAccount('acct-1'))?.id, 'acct-1');
  });

  it('the queries the front door runs often are served by indexes', async (t) => {
    const path = join(tempDir(t), 'ca.db');
    await (await SqliteStore.open(path)).close();
    const db = new Database(path, { readonly: true });
    t.after(() => db.close());
    const plan = (sql: string): string =>
      (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all() as Array<{ detail: string }>).map((r) => r.detail).join('; ');
    assert.match(
      plan("SELECT COUNT(*) FROM acme_challenges WHERE account_id = 'a' AND status = 'invalid' AND validated > 'x'"),
      /USING COVERING INDEX acme_challenges_failures/,
    );
    assert.match(
      plan("SELECT COUNT(*) FROM acme_orders WHERE account_id = 'a' AND created_at > 'x'"),
      /USING COVERING INDEX acme_orders_account/,
    );
    assert.match(
      plan("SELECT * FROM acme_orders WHERE certificate_serial = '0a'"),
      /USING INDEX acme_orders_certificate/,
    );
    assert.match(
      plan("SELECT id FROM acme_orders WHERE replaces_serial = '0a' AND status != 'invalid' LIMIT 1"),
      /USING INDEX acme_orders_replaces/,
    );
    assert.match(
      plan(
        "SELECT * FROM acme_authorizations WHERE account_id = 'a' AND identifier_type = 'dns' AND identifier_value = 'v' AND wildcard = 0 AND status = 'valid' AND expires > 'x' ORDER BY expires DESC, created_at DESC LIMIT 1",
      ),
      /USING INDEX acme_authorizations_reuse/,
    );
  });
});
