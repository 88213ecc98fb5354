// `shortleaf migrate --data DIR`: creates a private database, records what it applied, is
// idempotent, and refuses a database from a newer Shortleaf.
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { shortleaf, shortleafOk, tempDir } from './helpers/cli.js';
import { databasePath, tableCounts } from './helpers/data.js';
import { Database } from './helpers/workspace.js';

const mode = (path: string) => statSync(path).mode & 0o777;

function readMigrations(dataDir: string): Array<{ version: number; name: string; applied_at: string }> {
  const db = new Database(databasePath(dataDir), { readonly: true, fileMustExist: true });
  try {
    return db.prepare('SELECT version, name, applied_at FROM schema_migrations ORDER BY version').all() as Array<{
      version: number;
      name: string;
      applied_at: string;
    }>;
  } finally {
    db.close();
  }
}

describe('shortleaf migrate', () => {
  const dir = tempDir();
  const data = dir.file('fresh/data');
  after(() => dir.remove());

  it('on a fresh folder creates the database 0600 in a 0700 folder and records 0001_init.sql', async () => {
    const r = await shortleafOk(['migrate', '--data', data]);
    assert.match(r.stdout, /is up to date/);
    assert.equal(mode(data), 0o700);
    assert.equal(mode(databasePath(data)), 0o600);
    const rows = readMigrations(data);
    const files = readdirSync(new URL('../migrations/', import.meta.url))
      .filter((f) => /^\d{4}_.*\.sql$/.test(f))
      .sort();
    assert.ok(files.includes('0001_init.sql') && files.includes('0002_revocation.sql'));
    assert.deepEqual(
      rows.map(({ version, name }) => ({ version, name })),
      files.map((name) => ({ version: Number(name.slice(0, 4)), name })),
    );
    assert.ok(!Number.isNaN(Date.parse(rows[0]!.applied_at)));
    const counts = await tableCounts(data);
    for (const table of ['issuers', 'roots', 'provisioners', 'certificates', 'token_uses', 'audit_log', 'settings']) {
      assert.equal(counts[table], 0, `table ${table} exists and is empty`);
    }
    const db = new Database(databasePath(data), { readonly: true });
    try {
      assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    } finally {
      db.close();
    }
  });

  it('running it again changes nothing', async () => {
    const before = { rows: readMigrations(data), counts: await tableCounts(data) };
    await shortleafOk(['migrate', '--data', data]);
    assert.deepEqual(readMigrations(data), before.rows, 'nothing re-applied');
    assert.deepEqual(await tableCounts(data), before.counts);
    assert.equal(mode(databasePath(data)), 0o600);
  });

  it('refuses a database migrated by a newer Shortleaf (schemaTooNew)', async () => {
    const newer = dir.file('newer');
    await shortleafOk(['migrate', '--data', newer]);
    const db = new Database(databasePath(newer));
    try {
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(
        9999,
        '9999_future.sql',
        new Date().toISOString(),
      );
    } finally {
      db.close();
    }
    const r = await shortleaf(['migrate', '--data', newer]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /\[schemaTooNew\]/);
    assert.match(r.stderr, /9999/);
  });
});
