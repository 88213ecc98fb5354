import { it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import type { Store } from '../contracts/store.js';
import { bytes, minutes, t0, tempDir } from '../test-fixtures.js';
import { SqliteStore } from '../sqlite-store.js';
import { PostgresStore } from './pg-store.js';
import { testDatabaseUrl } from './test-server.js';

// migrations/postgres/0001_core.sql keeps SQLite's table and column names and picks types a
// SQLite value casts to when passed as a parameter (ISO text to timestamptz, 0/1 to boolean, BLOB
// to bytea), so `store copy` can move rows column by column. This copies the core tables that way
// and reads both engines back through the Store contract.

const coreTables = ['issuers', 'roots', 'provisioners', 'certificates', 'token_uses', 'audit_log', 'settings'];

async function fill(store: Store): Promise<void> {
  await store.createIssuer({
    id: 'int-1',
    name: 'issuer-int-1',
    sealedKey: bytes('sealed'),
    keyAlgorithm: 'ECDSA-P256',
    csrDer: bytes('csr'),
    createdAt: t0,
  });
  await store.setIssuerCertificate('int-1', bytes('cert'));
  await store.activateIssuer('int-1', minutes(1));
  await store.addRoot(bytes('root'), t0);
  await store.addProvisioner({ name: 'ops', type: 'jwk', publicJwk: '{"kty":"EC"}', policy: '{}', createdAt: t0 });
  for (const [serial, createdAt] of [
    ['0b', t0],
    ['0a', t0],
    ['0c', minutes(-1)],
  ] as const) {
    await store.reserveCertificate({
      certificate: {
        serial,
        issuerId: 'int-1',
        subject: `CN=${serial}`,
        names: [`${serial}.internal`],
        notBefore: t0,
        notAfter: minutes(60),
        provisioner: 'ops',
        requester: 'test',
        createdAt,
        spkiSha256: 'ab'.repeat(32),
        tbsDer: bytes(`tbs-${serial}`),
      },
      tokenUse: { provisioner: 'ops', jti: `jti-${serial}`, expiresAt: minutes(5) },
      audit: { at: createdAt, action: 'issue', actor: 'test', serial, detail: { n: 1 } },
    });
  }
  await store.completeCertificate('0a', bytes('der-0a'), minutes(2));
  await store.reserveCertificate({
    certificate: {
      serial: '0d',
      issuerId: 'int-1',
      subject: 'CN=0d',
      names: ['0d.internal'],
      notBefore: t0,
      notAfter: minutes(90),
      provisioner: 'ops',
      requester: 'test',
      createdAt: minutes(3),
      renewedFrom: '0a',
      lineage: '0a',
      lineageStartedAt: t0,
    },
    audit: { at: minutes(3), action: 'renew', actor: 'test', serial: '0d', detail: {} },
  });
  await store.setSetting('seal.salt', 'c2FsdA');
}

/** Everything the core of the contract reads back. */
async function readBack(store: Store): Promise<unknown> {
  return {
    issuers: await store.listIssuers(),
    active: await store.getActiveIssuer(),
    roots: await store.listRoots(),
    provisioners: await store.listProvisioners(),
    certificates: await store.listCertificates(),
    lineage: await store.listLineage('0a'),
    audit: await store.listAudit(),
    setting: await store.getSetting('seal.salt'),
    lastExpiry: await store.lastCertificateExpiry('int-1'),
  };
}

it('a SQLite row copies into the PostgreSQL table of the same name column by column, and reads back the same', async (t) => {
  const path = join(tempDir(t), 'ca.db');
  const sqlite = await SqliteStore.open(path);
  await fill(sqlite);
  const expected = await readBack(sqlite);
  await sqlite.close();

  const url = await testDatabaseUrl(t);
  const postgres = await PostgresStore.open(url);
  t.after(() => postgres.close());
  const db = new Database(path, { readonly: true });
  t.after(() => db.close());
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  t.after(() => client.end());
  for (const table of coreTables) {
    // In rowid order: PostgreSQL's seq then keeps SQLite's insertion order.
    for (const row of db.prepare(`SELECT * FROM ${table} ORDER BY rowid`).all() as Record<string, unknown>[]) {
      const columns = Object.keys(row);
      await client.query(
        `INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')})`,
        Object.values(row),
      );
    }
  }
  // audit_log keeps SQLite's ids; the copy moves its identity past them, or the next append collides.
  await client.query("SELECT setval(pg_get_serial_sequence('audit_log', 'id'), (SELECT max(id) FROM audit_log))");
  assert.deepEqual(await readBack(postgres), expected);
  await postgres.appendAudit({ at: minutes(9), action: 'after-copy', actor: 'test', serial: null, detail: {} });
  assert.equal((await postgres.listAudit()).at(-1)?.action, 'after-copy');
  assert.deepEqual(
    (await postgres.listCertificates()).map((c) => c.serial),
    ['0c', '0b', '0a', '0d'],
    'equal createdAt keeps insertion order',
  );
});
