// copySqliteToPostgres against a real PostgreSQL: what the SQLite store held reads back the same
// through the PostgreSQL store (orders that SQLite takes from its rowid included), the identities
// continue past the copied rows, ACME accounts and EAB keys that name each other arrive, and a
// target that is not empty is refused with nothing written.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import type { Store } from '../contracts/store.js';
import { openStore } from '../open-store.js';
import { SqliteStore } from '../sqlite-store.js';
import { bytes, minutes, storeError, t0, tempDir } from '../test-fixtures.js';
import { copySqliteToPostgres } from './copy-from-sqlite.js';
import { testDatabaseUrl } from './test-server.js';

const audit = (action: string, serial: string | null = null) => ({
  at: t0,
  action,
  actor: 'operator:test',
  serial,
  detail: { action },
});

/** A SQLite CA with a bit of everything, the orders that only a rowid decides included. */
async function sqliteCa(t: TestContext): Promise<string> {
  const path = join(tempDir(t), 'shortleaf.db');
  const store = await SqliteStore.open(path);
  try {
    await store.createIssuer({
      id: 'int-1',
      name: 'primary',
      sealedKey: bytes('sealed key'),
      keyAlgorithm: 'ECDSA-P256',
      csrDer: bytes('csr'),
      createdAt: t0,
    });
    await store.setIssuerCertificate('int-1', bytes('intermediate'));
    await store.activateIssuer('int-1', t0);
    await store.addProvisioner({ name: 'ops', type: 'jwk', publicJwk: '{}', policy: '{}', createdAt: t0 });
    await store.addProvisioner({ name: 'acme', type: 'acme', publicJwk: null, policy: '{}', createdAt: t0 });
    // Same createdAt, serials out of order: only insertion order sorts them.
    for (const serial of ['0c', '0a', '0b']) {
      await store.reserveCertificate({
        certificate: {
          serial,
          issuerId: 'int-1',
          subject: `CN=${serial}`,
          names: [`${serial}.test`],
          notBefore: t0,
          notAfter: minutes(60),
          provisioner: 'ops',
          requester: 'test',
          createdAt: t0,
          ...(serial === '0b' ? { renewedFrom: '0a', lineage: '0a', lineageStartedAt: t0 } : {}),
        },
        tokenUse: { provisioner: 'ops', jti: `jti-${serial}`, expiresAt: minutes(5) },
        audit: audit('issue', serial),
      });
      if (serial !== '0c') await store.completeCertificate(serial, bytes(`der ${serial}`), t0);
    }
    await store.revocations.revoke(
      { serial: '0a', revokedAt: minutes(2), reason: 'superseded', actor: 'test' },
      audit('revoke', '0a'),
    );
    for (const number of [1n, 2n, 9007199254740993n])
      await store.revocations.insertCrl({
        issuerId: 'int-1',
        number,
        thisUpdate: t0,
        nextUpdate: minutes(60),
        entries: 1,
        der: bytes(`crl ${number}`),
      });
    await store.acme.createEabKey({ kid: 'kid-1', provisioner: 'acme', sealedKey: bytes('hmac'), createdAt: t0 });
    await store.acme.createAccount(
      {
        id: 'acct-1',
        provisioner: 'acme',
        thumbprint: 'thumb',
        jwk: '{}',
        status: 'valid',
        contact: [],
        eabKid: 'kid-1',
        createdAt: t0,
      },
      { kid: 'kid-1', at: minutes(1) },
    );
    await store.setSetting('seal.salt', 'salt-value');
    return path;
  } finally {
    await store.close();
  }
}

/** Everything the contract reads back, so the two engines can be compared whole. */
async function snapshot(store: Store) {
  const { schema_migrations: _, ...counts } = await store.counts();
  return {
    counts,
    certificates: await store.listCertificates(),
    lineage: await store.listLineage('0a'),
    revocations: await store.revocations.list(),
    // Number(): SQLite reads `entries` back as a bigint, PostgreSQL as the number the type says.
    crl: await store.revocations.latestCrl('int-1').then((c) => c && { ...c, entries: Number(c.entries) }),
    audit: await store.listAudit(),
    eab: await store.acme.getEabKey('kid-1'),
    account: await store.acme.getAccount('acct-1'),
    issuer: await store.getActiveIssuer(),
    salt: await store.getSetting('seal.salt'),
  };
}

async function opened<T>(store: Store | Promise<Store>, use: (s: Store) => Promise<T>): Promise<T> {
  const s = await store;
  try {
    return await use(s);
  } finally {
    await s.close();
  }
}

describe('copySqliteToPostgres', () => {
  it('copies every row so the PostgreSQL store reads back what the SQLite one did', async (t) => {
    const sqlitePath = await sqliteCa(t);
    const url = await testDatabaseUrl(t);
    const report = await copySqliteToPostgres({ sqlitePath, url });

    const before = await opened(SqliteStore.open(sqlitePath, { readonly: true }), snapshot);
    const after = await opened(openStore({ engine: 'postgres', url }), snapshot);
    assert.deepEqual(after, before);
    assert.deepEqual(
      after.certificates.map((c) => c.serial),
      ['0c', '0a', '0b'],
      'insertion order kept',
    );
    assert.equal(after.crl?.number, 9007199254740993n, 'a CRL number past 2^53 arrives exact');

    assert.deepEqual(
      Object.fromEntries(report.tables.map((r) => [r.table, r.rows])),
      before.counts,
      'the report counts every table',
    );
    assert.equal(report.certificates, 2);
    assert.deepEqual(report.crlNumbers, [{ issuerId: 'int-1', count: 3, latest: '9007199254740993' }]);
    assert.equal(report.settings, 1);
    const order = report.tables.map((r) => r.table);
    assert.ok(order.indexOf('issuers') < order.indexOf('certificates'), 'referenced tables first');
    assert.ok(order.indexOf('certificates') < order.indexOf('revocations'));

    // New rows follow the copied ones: the audit identity moved past the copied ids.
    await opened(openStore({ engine: 'postgres', url }), async (store) => {
      await store.appendAudit(audit('after-copy'));
      const entries = await store.listAudit();
      assert.equal(entries.length, before.audit.length + 1);
      assert.equal(entries.at(-1)?.action, 'after-copy');
    });
  });

  it('refuses a target that is not empty and writes nothing', async (t) => {
    const sqlitePath = await sqliteCa(t);
    const url = await testDatabaseUrl(t);
    await opened(openStore({ engine: 'postgres', url }), (s) => s.setSetting('someone', 'was here'));
    const before = await opened(openStore({ engine: 'postgres', url }), (s) => s.counts());
    await assert.rejects(copySqliteToPostgres({ sqlitePath, url }), storeError('conflict', 'settings 1'));
    assert.deepEqual(await opened(openStore({ engine: 'postgres', url }), (s) => s.counts()), before);
  });

  it('refuses a SQLite path with no database rather than copying an empty one', async (t) => {
    const url = await testDatabaseUrl(t);
    const missing = join(tempDir(t), 'none.db');
    await assert.rejects(copySqliteToPostgres({ sqlitePath: missing, url }), storeError('notFound', missing));
  });
});
