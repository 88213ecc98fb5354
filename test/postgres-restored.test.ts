// After PostgreSQL's own restore (pg_restore, point-in-time recovery) the database does not know
// the CRLs the CA published after the backup; `shortleaf store restored` records a floor so the next
// CRL number is above all of them, as `shortleaf restore` does for SQLite (test/backup.test.ts).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { openStore } from '@shortleaf/store';
import { testDatabaseUrl } from '@shortleaf/store/postgres-testing';
import { shortleafOk, tempDir } from './helpers/cli.js';
import { crlInfo } from './helpers/revocation.js';
import { startServer } from './helpers/server.js';

test('store restored raises the next CRL number above every number published before the restore', async (t) => {
  const url = await testDatabaseUrl(t);
  const dir = tempDir();
  t.after(() => dir.remove());
  const data = join(dir.path, 'data');
  await shortleafOk(['init', '--data', data, '--database', url]);

  const before = Date.now();
  const r = await shortleafOk(['store', 'restored', '--database', url, '--from', 'pitr 2026-12-03T10:00:00Z']);
  const floor = BigInt(/at least (\d+)/.exec(r.stdout)?.[1] ?? '0');
  assert.ok(floor >= BigInt(before) * 1000n, `floor ${floor} is the restore time in microseconds`);

  const store = await openStore({ engine: 'postgres', url });
  try {
    const restores = (await store.listAudit({ action: 'restore' })).map((e) => e.detail);
    assert.deepEqual(restores, [{ from: 'pitr 2026-12-03T10:00:00Z', crlNumberFloor: floor.toString() }]);
  } finally {
    await store.close();
  }

  const server = await startServer({ data, args: ['--database', url] });
  t.after(() => server.stop());
  const crl = await fetch(`${server.status}/crl`);
  assert.equal(crl.status, 200);
  const info = await crlInfo(new Uint8Array(await crl.arrayBuffer()));
  assert.ok(info.number >= floor, `the CRL served after the restore is number ${info.number}, at least ${floor}`);
});
