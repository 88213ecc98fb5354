import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { StoreError } from './errors.js';
import type { AuditEntry, CertificateReservation, NewIssuer } from './records.js';
import { loadMigrations } from './migrate.js';
import { SqliteStore } from './sqlite-store.js';
import { bytes, minutes, openStore, storeError, t0, tempDir } from './test-fixtures.js';

// What only the SQLite engine does: its file, its pragmas, its backup, and the schema's own
// guards. The behaviour every engine shares is the contract suite (sqlite.contract.test.ts).

function issuer(id: string, overrides: Partial<NewIssuer> = {}): NewIssuer {
  return {
    id,
    name: `issuer-${id}`,
    sealedKey: bytes(`sealed-${id}`),
    keyAlgorithm: 'ECDSA-P256',
    csrDer: bytes(`csr-${id}`),
    createdAt: t0,
    ...overrides,
  };
}

async function activeIssuer(store: SqliteStore, id = 'int-1'): Promise<string> {
  await store.createIssuer(issuer(id));
  await store.setIssuerCertificate(id, bytes(`cert-${id}`));
  await store.activateIssuer(id, t0);
  return id;
}

function reservation(serial: string, overrides: Partial<CertificateReservation> = {}): CertificateReservation {
  return {
    serial,
    issuerId: 'int-1',
    subject: 'CN=api.internal',
    names: ['api.internal', '10.0.0.7'],
    notBefore: minutes(-1),
    notAfter: minutes(24 * 60),
    provisioner: 'ops',
    requester: 'alice@example.com',
    createdAt: t0,
    ...overrides,
  };
}

function audit(action: string, serial: string | null = null, at = t0): AuditEntry {
  return { at, action, actor: 'provisioner:ops', serial, detail: { note: action, n: 1 } };
}

describe('SqliteStore: opening', () => {
  it('creates a missing parent folder 0700 and keeps the database (and its WAL) 0600', async (t) => {
    const dir = join(tempDir(t), 'data', 'nested');
    const path = join(dir, 'ca.db');
    const store = await openStore(t, path);
    await store.setSetting('k', 'v'); // forces the -wal file into existence
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(statSync(`${path}-wal`).mode & 0o777, 0o600);
  });

  it('tightens an existing database file that others could read', async (t) => {
    const path = join(tempDir(t), 'ca.db');
    new Database(path).close();
    await (await SqliteStore.open(path)).close();
    assert.equal(statSync(path).mode & 0o777, 0o600);
  });

  it('puts the database in WAL mode', async (t) => {
    const path = join(tempDir(t), 'ca.db');
    await openStore(t, path);
    const db = new Database(path, { readonly: true });
    t.after(() => db.close());
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
  });

  it('runs its connection with synchronous=FULL, foreign keys on and a 5 s busy timeout', async (t) => {
    const store = await openStore(t);
    // These are per-connection settings, invisible from another connection: look at the store's own.
    const db = (store as unknown as { db: Database.Database }).db;
    assert.equal(db.pragma('synchronous', { simple: true }), 2); // FULL: a certificate is on disk before anyone sees it
    assert.equal(db.pragma('foreign_keys', { simple: true }), 1);
    assert.equal(db.pragma('busy_timeout', { simple: true }), 5000);
  });

  it('reports a missing database opened read-only as storageUnavailable', async (t) => {
    await assert.rejects(
      SqliteStore.open(join(tempDir(t), 'absent.db'), { readonly: true }),
      storeError('storageUnavailable', 'SQLITE_CANTOPEN'),
    );
  });

  it('maps a write to a read-only database to storageUnavailable, keeping the SQLite error as cause', async (t) => {
    const path = join(tempDir(t), 'ca.db');
    await (await SqliteStore.open(path)).close();
    const store = await SqliteStore.open(path, { readonly: true });
    t.after(() => store.close());
    await assert.rejects(store.setSetting('k', 'v'), (err: unknown) => {
      storeError('storageUnavailable', 'SQLITE_READONLY')(err);
      assert.match(String((err as StoreError & { cause: { code: string } }).cause.code), /^SQLITE_READONLY/);
      return true;
    });
    assert.equal(await store.getSetting('k'), null); // reads still work
  });

  it('works on :memory:', async (t) => {
    const store = await openStore(t, ':memory:');
    assert.ok(((await store.counts()).schema_migrations ?? 0) >= 2);
  });
});

describe('SqliteStore: what only SQLite does', () => {
  it('the schema itself refuses a second active issuer', async (t) => {
    const path = join(tempDir(t), 'ca.db');
    const store = await openStore(t, path);
    await activeIssuer(store, 'a');
    await store.createIssuer(issuer('b'));
    const db = new Database(path);
    t.after(() => db.close());
    assert.throws(() => db.prepare("UPDATE issuers SET active = 1 WHERE id = 'b'").run(), {
      code: 'SQLITE_CONSTRAINT_UNIQUE',
    });
  });

  it('backs up to a self-contained file that verifyFile accepts, and verifyFile refuses other files', async (t) => {
    const dir = tempDir(t);
    const store = await openStore(t, join(dir, 'ca.db'));
    await activeIssuer(store);
    await store.reserveCertificate({ certificate: reservation('00aa11'), audit: audit('issue', '00aa11') });
    await store.backup(join(dir, 'copy.db'));
    await SqliteStore.verifyFile(join(dir, 'copy.db'));
    const copy = await SqliteStore.open(join(dir, 'copy.db'), { readonly: true });
    t.after(() => copy.close());
    assert.equal((await copy.getCertificate('00aa11'))?.status, 'reserved');

    const plain = new Database(join(dir, 'plain.db'));
    plain.exec('CREATE TABLE notes (body TEXT)');
    plain.close();
    await assert.rejects(
      SqliteStore.verifyFile(join(dir, 'plain.db')),
      storeError('notShortleafDatabase', 'not a Shortleaf one'),
    );
    await assert.rejects(
      SqliteStore.verifyFile(join(dir, 'missing.db')),
      storeError('notShortleafDatabase', 'cannot be opened'),
    );
  });

  it('counts every table', async (t) => {
    const store = await openStore(t);
    assert.deepEqual(await store.counts(), {
      acme_accounts: 0,
      acme_authorizations: 0,
      acme_challenges: 0,
      acme_eab_keys: 0,
      acme_order_authorizations: 0,
      acme_orders: 0,
      acme_spent_nonces: 0,
      audit_log: 0,
      blocked_keys: 0,
      certificates: 0,
      crls: 0,
      issuers: 0,
      ocsp_signers: 0,
      provisioners: 0,
      revocations: 0,
      root_crls: 0,
      roots: 0,
      schema_migrations: loadMigrations().length,
      settings: 0,
      token_uses: 0,
    });
  });

  it('persists across close and reopen', async (t) => {
    const path = join(tempDir(t), 'ca.db');
    const first = await SqliteStore.open(path);
    await activeIssuer(first);
    await first.reserveCertificate({ certificate: reservation('77'), audit: audit('r') });
    await first.completeCertificate('77', bytes('der'), minutes(1));
    await first.close();
    const second = await openStore(t, path);
    assert.equal((await second.getCertificate('77'))?.status, 'issued');
    assert.equal((await second.getActiveIssuer())?.id, 'int-1');
  });
});
