import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { test } from 'node:test';
import pg from 'pg';
import { startPostgres, testDatabaseUrl } from './test-server.js';

test('a server of our own: separate databases, a restart clients survive, nothing left after destroy', async (t) => {
  const server = await startPostgres();
  t.after(() => server.destroy());
  assert.notEqual(server.port, 5432, "never the Debian package's own cluster");

  const [a, b] = [await server.createDatabase(), await server.createDatabase()];
  assert.notEqual(a, b);
  const poolA = new pg.Pool({ connectionString: a, max: 2 });
  const poolErrors: Error[] = [];
  poolA.on('error', (err) => poolErrors.push(err)); // idle clients hear the shutdown
  t.after(() => poolA.end());
  await poolA.query('CREATE TABLE note (body text)');
  await poolA.query("INSERT INTO note VALUES ('in a')");
  const clientB = new pg.Client({ connectionString: b });
  await clientB.connect();
  const { rows } = await clientB.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM information_schema.tables WHERE table_name = 'note'",
  );
  assert.equal(rows[0]?.n, 0, 'database b does not see the table created in a');
  await clientB.end();

  await server.restart();
  assert.match(String(poolErrors[0]), /terminat/, 'the idle client was told the server shut down');
  const after = await poolA.query<{ body: string }>('SELECT body FROM note');
  assert.deepEqual(after.rows, [{ body: 'in a' }], 'the pool reconnects and the committed row survived');
  assert.match(readFileSync(server.logFile, 'utf8'), /statement: SELECT body FROM note/, 'statements are logged');

  const dir = dirname(server.logFile);
  await server.destroy();
  await server.destroy(); // idempotent
  assert.equal(existsSync(dir), false, 'its folder is removed');
  await assert.rejects(new pg.Client({ connectionString: a }).connect(), /ECONNREFUSED/);
});

test('testDatabaseUrl gives each test its own database on the shared server', async (t) => {
  const url = await testDatabaseUrl(t);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  t.after(() => client.end());
  const { rows } = await client.query<{ db: string }>('SELECT current_database() AS db');
  assert.match(rows[0]?.db ?? '', /^t_[0-9a-f]{16}$/);
  assert.equal(rows[0]?.db, new URL(url).pathname.slice(1));
});
