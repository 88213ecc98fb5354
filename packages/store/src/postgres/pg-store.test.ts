import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { StoreError } from '../contracts/errors.js';
import type { Store } from '../contracts/store.js';
import { bytes, minutes, t0, tempDir } from '../test-fixtures.js';
import type { PgLogger } from './pg-logger.js';
import { defaultPgMigrationsDir, loadPgMigrations } from './pg-migrate.js';
import { PostgresStore } from './pg-store.js';
import { startPostgres, testDatabaseUrl, type PostgresServer } from './test-server.js';

// What only the PostgreSQL engine does: several stores (instances) on one database, and a
// database that goes away and comes back. The contract suite covers everything both engines share.

/** Keeps what the store reports, so a test can wait for a reconnect and the output stays quiet. */
function collectingLogger(): PgLogger & { events: string[] } {
  const events: string[] = [];
  return { events, info: (event) => events.push(event), warn: (event) => events.push(event) };
}

async function openOn(t: { after: (fn: () => Promise<void>) => void }, url: string): Promise<PostgresStore> {
  const store = await PostgresStore.open(url, { logger: collectingLogger() });
  t.after(() => store.close());
  return store;
}

/** Polls `check` until it returns true; fails after `ms`. */
async function eventually(what: string, check: () => Promise<boolean> | boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`${what}: not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Resolves with how long the call took when it rejects with StoreError('storageUnavailable'). */
async function unavailable(call: Promise<unknown>): Promise<number> {
  const started = Date.now();
  await assert.rejects(call, (err: unknown) => {
    assert.ok(err instanceof StoreError, `expected StoreError, got ${String(err)}`);
    assert.equal(err.code, 'storageUnavailable');
    return true;
  });
  return Date.now() - started;
}

async function withIssuer(store: Store): Promise<void> {
  await store.createIssuer({
    id: 'int-1',
    name: 'issuer-int-1',
    sealedKey: bytes('sealed'),
    keyAlgorithm: 'ECDSA-P256',
    csrDer: bytes('csr'),
    createdAt: t0,
  });
  await store.setIssuerCertificate('int-1', bytes('cert'));
  await store.activateIssuer('int-1', t0);
}

const reservation = (serial: string) => ({
  certificate: {
    serial,
    issuerId: 'int-1',
    subject: `CN=${serial}`,
    names: [`${serial}.internal`],
    notBefore: t0,
    notAfter: minutes(60),
    provisioner: 'ops',
    requester: 'test',
    createdAt: t0,
  },
  tokenUse: { provisioner: 'ops', jti: `jti-${serial}`, expiresAt: minutes(5) },
  audit: { at: t0, action: 'issue', actor: 'test', serial, detail: {} },
});

describe('postgres store: several instances on one database', () => {
  it('applies each migration once when several instances open an empty database together', async (t) => {
    const url = await testDatabaseUrl(t);
    const stores = await Promise.all([openOn(t, url), openOn(t, url), openOn(t, url)]);
    const counts = await stores[0]!.counts();
    assert.equal(counts.schema_migrations, loadPgMigrations().length);
    assert.equal(counts.issuers, 0);
  });

  it('spends a token once when two instances race to reserve with it', async (t) => {
    const url = await testDatabaseUrl(t);
    const [a, b] = [await openOn(t, url), await openOn(t, url)];
    await withIssuer(a);
    const same = { provisioner: 'ops', jti: 'raced', expiresAt: minutes(5) };
    const results = await Promise.allSettled([
      a.reserveCertificate({ ...reservation('0a'), tokenUse: same }),
      b.reserveCertificate({ ...reservation('0b'), tokenUse: same }),
    ]);
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    const refused = results.find((r) => r.status === 'rejected');
    assert.ok(refused?.status === 'rejected' && (refused.reason as StoreError).code === 'tokenReplayed');
    assert.equal((await a.counts()).certificates, 1);
  });

  it('a reservation waits for a revocation in flight, then sees the key it blocked', async (t) => {
    const url = await testDatabaseUrl(t);
    const store = await openOn(t, url);
    await withIssuer(store);
    const key = 'cd'.repeat(32);
    // Another instance's revocation, stopped half-way: it holds its lock and has not committed yet.
    const revoker = new pg.Client({ connectionString: url });
    await revoker.connect();
    t.after(() => revoker.end());
    await revoker.query('BEGIN');
    await revoker.query('LOCK TABLE revocations IN SHARE ROW EXCLUSIVE MODE');
    const reserving = store.reserveCertificate({
      ...reservation('0a'),
      certificate: { ...reservation('0a').certificate, spkiSha256: key },
    });
    reserving.catch(() => undefined); // asserted below; no unhandled rejection meanwhile
    await eventually('the reservation waits', async () => {
      const { rows } = await revoker.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_locks WHERE relation = 'revocations'::regclass AND NOT granted",
      );
      return rows[0]?.n === 1;
    });
    await revoker.query(
      "INSERT INTO blocked_keys (spki_sha256, reason, serial, blocked_at) VALUES ($1, 'keyCompromise', NULL, now())",
      [key],
    );
    await revoker.query('COMMIT');
    await assert.rejects(reserving, (err: unknown) => err instanceof StoreError && err.code === 'keyBlocked');
    const counts = await store.counts();
    assert.equal(counts.certificates, 0);
    assert.equal(counts.token_uses, 0, 'the token stays unspent');
  });

  it('a lock is held by one instance, and taken over when its holder’s connection dies', async (t) => {
    const url = await testDatabaseUrl(t);
    const [a, b] = [await openOn(t, url), await openOn(t, url)];
    const held = await a.coordination.tryLock('crl:int-1');
    assert.ok(held?.held);
    assert.equal(await b.coordination.tryLock('crl:int-1'), null, 'another instance is refused');

    // The holder dies as far as the database can tell: its session is terminated.
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    t.after(() => admin.end());
    await admin.query(
      `SELECT pg_terminate_backend(l.pid) FROM pg_locks l JOIN pg_stat_activity s ON s.pid = l.pid
       WHERE l.locktype = 'advisory' AND s.datname = current_database()`,
    );
    await eventually('the holder learns it lost the lock', () => !held.held);
    let taken: Awaited<ReturnType<Store['coordination']['tryLock']>> = null;
    await eventually('the other instance takes the lock', async () => {
      taken = await b.coordination.tryLock('crl:int-1');
      return taken !== null;
    });
    await taken!.release();
  });

  it('a write through one instance wakes the subscribers of another', async (t) => {
    const url = await testDatabaseUrl(t);
    const [a, b] = [await openOn(t, url), await openOn(t, url)];
    let notices = 0;
    await a.coordination.subscribe('issuers', () => notices++);
    await b.addRoot(bytes('root'), t0);
    await eventually('a notice arrives', () => notices === 1, 5_000);
  });
});

describe('postgres store: migrations', () => {
  it('names a migration that fails, keeps the ones before it, and applies the rest once it is fixed', async (t) => {
    const url = await testDatabaseUrl(t);
    const dir = tempDir(t);
    copyFileSync(new URL('0001_core.sql', defaultPgMigrationsDir), join(dir, '0001_core.sql'));
    writeFileSync(
      join(dir, '0002_broken.sql'),
      'CREATE TABLE extra (id text PRIMARY KEY);\nSELECT no_such_function();',
    );
    await assert.rejects(
      PostgresStore.open(url, { migrationsDir: dir, logger: collectingLogger() }),
      (err: unknown) =>
        err instanceof StoreError && err.code === 'migrationFailed' && err.message.includes('0002_broken.sql'),
    );
    writeFileSync(join(dir, '0002_broken.sql'), 'CREATE TABLE extra (id text PRIMARY KEY);');
    const store = await PostgresStore.open(url, { migrationsDir: dir, logger: collectingLogger() });
    t.after(() => store.close());
    const counts = await store.counts();
    assert.equal(counts.schema_migrations, 2);
    assert.equal(counts.extra, 0, 'the failed attempt left nothing behind to collide with');
  });

  it('refuses a database migrated by a newer Shortleaf (schemaTooNew)', async (t) => {
    const url = await testDatabaseUrl(t);
    await (await PostgresStore.open(url, { logger: collectingLogger() })).close();
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    await client.query(
      "INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, '9999_future.sql', now())",
    );
    await client.end();
    await assert.rejects(
      PostgresStore.open(url, { logger: collectingLogger() }),
      (err: unknown) => err instanceof StoreError && err.code === 'schemaTooNew' && err.message.includes('9999'),
    );
  });

  it('closes once, however often it is asked', async (t) => {
    const store = await PostgresStore.open(await testDatabaseUrl(t), { logger: collectingLogger() });
    await store.coordination.subscribe('crls', () => undefined);
    const lock = await store.coordination.tryLock('x');
    await Promise.all([store.close(), store.close()]);
    await store.close();
    assert.equal(lock?.held, false);
  });
});

describe('postgres store: the database goes away and comes back', () => {
  let server: PostgresServer;
  before(async () => {
    server = await startPostgres({ logStatements: false });
  });
  after(() => server.destroy());

  it('answers storageUnavailable at once while the server is down, and recovers by itself', async (t) => {
    const logger = collectingLogger();
    const store = await PostgresStore.open(await server.createDatabase(), { logger });
    t.after(() => store.close());
    await withIssuer(store);
    await store.reserveCertificate(reservation('01'));
    let notices = 0;
    await store.coordination.subscribe('revocations', () => notices++);
    const lock = await store.coordination.tryLock('crl:int-1');
    assert.ok(lock?.held);

    await server.stop();
    const waited = [
      await unavailable(store.getCertificate('01')),
      await unavailable(store.reserveCertificate(reservation('02'))),
      await unavailable(store.completeCertificate('01', bytes('der'), t0)),
      await unavailable(store.counts()),
    ];
    assert.ok(Math.max(...waited) < 6_000, `failed fast, not hung: ${waited.join(', ')} ms`);
    await eventually('the lock is known lost', () => !lock.held);
    await assert.rejects(store.getCertificate('01'), (err: unknown) => {
      assert.ok(err instanceof StoreError && !err.message.includes('01'), 'no parameter value in the message');
      return true;
    });

    await server.start();
    await eventually('the pool serves again', async () => {
      try {
        return (await store.getCertificate('01'))?.status === 'reserved';
      } catch {
        return false;
      }
    });
    await store.reserveCertificate(reservation('02'));
    await store.completeCertificate('02', bytes('der'), t0);
    // The listening connection came back and told its subscribers to look (notices may be lost).
    await eventually('subscribers were called after the reconnect', () => notices >= 1);
    assert.ok(logger.events.includes('store_notices_reconnected'));
    const before = notices;
    await store.revocations.revoke(
      { serial: '02', revokedAt: t0, reason: 'superseded', actor: 'test' },
      { at: t0, action: 'revoke', actor: 'test', serial: '02', detail: {} },
    );
    await eventually('notices flow again', () => notices > before, 5_000);
  });

  it('keeps serving across a restart: idle connections are replaced, not handed out dead', async (t) => {
    const store = await PostgresStore.open(await server.createDatabase(), { logger: collectingLogger() });
    t.after(() => store.close());
    await withIssuer(store);
    // Fill the pool with idle connections.
    await Promise.all(Array.from({ length: 5 }, (_, i) => store.getSetting(`k${i}`)));
    await server.restart();
    await eventually('the server accepts connections', async () => {
      const probe = new pg.Client({ connectionString: server.url() });
      probe.on('error', () => undefined);
      try {
        await probe.connect();
        await probe.end();
        return true;
      } catch {
        return false;
      }
    });
    // Every idle connection died with the server; none of them may answer the next requests.
    const results = await Promise.all(Array.from({ length: 5 }, (_, i) => store.getSetting(`k${i}`)));
    assert.deepEqual(results, [null, null, null, null, null]);
    await store.reserveCertificate(reservation('03'));
  });

  it('refuses to open while the server is down, saying why, and leaves nothing open', async () => {
    const url = await server.createDatabase();
    await server.stop();
    try {
      await unavailable(PostgresStore.open(url, { logger: collectingLogger() }));
    } finally {
      await server.start();
    }
  });

  it('sorts text the way SQLite does (byte order) whatever the database’s collation', async (t) => {
    const admin = new pg.Client({ connectionString: server.url() });
    await admin.connect();
    const name = `icu_${Date.now()}`;
    try {
      await admin.query(`CREATE DATABASE ${name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'`);
    } finally {
      await admin.end();
    }
    const store = await openOn(t, server.url(name));
    for (const provisioner of ['b', 'B', '_x', 'a']) {
      await store.addProvisioner({ name: provisioner, type: 'jwk', publicJwk: null, policy: '{}', createdAt: t0 });
    }
    assert.deepEqual(
      (await store.listProvisioners()).map((p) => p.name),
      ['B', '_x', 'a', 'b'],
    );
  });
});
