import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { StoreError } from './errors.js';
import { GroupCommitter } from './group-commit.js';
import { toStorageError } from './sqlite-errors.js';
import { SqliteStore } from './sqlite-store.js';

const t0 = new Date('2026-01-01T00:00:00.000Z');

async function openWithIssuer(t: TestContext): Promise<{ store: SqliteStore; path: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'shortleaf-group-'));
  const path = join(dir, 'ca.db');
  const store = await SqliteStore.open(path);
  t.after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  await store.createIssuer({
    id: 'i1',
    name: 'primary',
    sealedKey: new Uint8Array([1]),
    keyAlgorithm: 'EC-P256',
    csrDer: new Uint8Array([2]),
    createdAt: t0,
  });
  return { store, path };
}

const reserve = (store: SqliteStore, serial: string, jti: string) =>
  store.reserveCertificate({
    certificate: {
      serial,
      issuerId: 'i1',
      subject: 's',
      names: ['dns:s'],
      notBefore: t0,
      notAfter: t0,
      provisioner: 'p',
      requester: 'r',
      createdAt: t0,
    },
    tokenUse: { provisioner: 'p', jti, expiresAt: t0 },
    audit: { at: t0, action: 'issue', actor: 'p', serial, detail: {} },
  });

describe('group commit of issuance writes', () => {
  it('commits writes queued together in one transaction, failing only the bad one', async (t) => {
    const { store, path } = await openWithIssuer(t);
    // Ten writes in flight at once, one reusing a token: it alone fails, the rest are durable.
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) => reserve(store, `a${i}`, i === 7 ? 'jti-3' : `jti-${i}`)),
    );
    const rejected = results.flatMap((r, i) => (r.status === 'rejected' ? [[i, r.reason] as const] : []));
    assert.equal(rejected.length, 1);
    assert.equal(rejected[0]![0], 7);
    assert.ok(rejected[0]![1] instanceof StoreError);
    assert.equal((rejected[0]![1] as StoreError).code, 'tokenReplayed');
    // A second connection sees exactly the nine committed rows and their audit entries.
    const other = new Database(path, { readonly: true });
    t.after(() => other.close());
    assert.equal(other.prepare('SELECT count(*) FROM certificates').pluck().get(), 9);
    assert.equal(other.prepare('SELECT count(*) FROM audit_log').pluck().get(), 9);
    assert.equal(other.prepare("SELECT count(*) FROM certificates WHERE serial = 'a7'").pluck().get(), 0);
  });

  it('completes reservations queued in the same turn as new reservations', async (t) => {
    const { store } = await openWithIssuer(t);
    await reserve(store, 'b1', 'j-b1');
    await Promise.all([store.completeCertificate('b1', new Uint8Array([9]), t0), reserve(store, 'b2', 'j-b2')]);
    assert.equal((await store.getCertificate('b1'))?.status, 'issued');
    assert.equal((await store.getCertificate('b2'))?.status, 'reserved');
    await assert.rejects(
      store.completeCertificate('zz', new Uint8Array([1]), t0),
      (e: unknown) => e instanceof StoreError && e.code === 'notFound',
    );
  });

  it('a write whose failure ends the transaction (SQLITE_FULL) fails the whole batch; nothing after it commits alone', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'shortleaf-group-'));
    const db = new Database(join(dir, 'g.db'));
    t.after(() => {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    });
    db.exec('CREATE TABLE t (x INTEGER)');
    const committer = new GroupCommitter(db, toStorageError);
    const insert = db.prepare('INSERT INTO t (x) VALUES (?)');
    // SQLite rolls the whole transaction back by itself on some errors (SQLITE_FULL, SQLITE_IOERR):
    // the second write does what SQLite would do, then fails as it would.
    const diskFull = () => {
      db.exec('ROLLBACK');
      throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
    };
    const results = await Promise.allSettled([
      committer.submit(() => insert.run(1)),
      committer.submit(diskFull),
      committer.submit(() => insert.run(3)),
    ]);
    for (const r of results) {
      assert.equal(r.status, 'rejected');
      assert.ok(r.reason instanceof StoreError && r.reason.code === 'storageUnavailable', String(r.reason));
    }
    assert.equal(
      db.prepare('SELECT count(*) FROM t').pluck().get(),
      0,
      'a write the caller was told failed must not be committed',
    );
    assert.equal(db.inTransaction, false);
    // The committer keeps working once the disk does.
    await committer.submit(() => insert.run(4));
    assert.deepEqual(db.prepare('SELECT x FROM t').pluck().all(), [4]);
  });
});
