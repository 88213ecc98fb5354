import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { StoreError, openStore, type Store } from '@shortleaf/store';
import { startPostgres, testDatabaseUrl } from '@shortleaf/store/postgres-testing';
import { passphraseSealer } from '../../authority/src/test-fixtures.js';
import {
  NONCE_CLOCK_SKEW_MS,
  NONCE_KEY_SETTING,
  createSharedNoncePool,
  sharedNonceKey,
  type SharedNoncePool,
} from './shared-nonces.js';

const random = (n: number) => new Uint8Array(randomBytes(n));
const HOUR = 3_600_000;

/** Opens another connection to one database, as another instance would; closed after the test. */
type SharedDatabase = (t: TestContext) => Promise<() => Promise<Store>>;

const sqliteDatabase: SharedDatabase = async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'shortleaf-nonces-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return async () => {
    const store = await openStore({ engine: 'sqlite', path: join(dir, 'ca.db') });
    t.after(() => store.close());
    return store;
  };
};

const postgresDatabase =
  (url: (t: TestContext) => Promise<string>): SharedDatabase =>
  async (t) => {
    const database = await url(t);
    return async () => {
      const store = await openStore({ engine: 'postgres', url: database });
      t.after(() => store.close());
      return store;
    };
  };

/** One instance: its own store connection, the shared key from the database, its own pool. */
async function instance(open: () => Promise<Store>, now: () => number) {
  const store = await open();
  const key = await sharedNonceKey({ settings: store, sealer: passphraseSealer(), random });
  const pool: SharedNoncePool = createSharedNoncePool({ key, store: store.acme, random, now });
  const spent = async () => (await store.counts()).acme_spent_nonces;
  return { store, key, pool, spent };
}

function sharedPoolSuite(engine: string, database: SharedDatabase) {
  describe(`shared nonce pool (RFC 8555 §6.5), ${engine}`, () => {
    it('accepts a nonce issued by one instance once at another, then refuses it at both', async (t) => {
      const open = await database(t);
      const now = () => 1_750_000_000_000;
      const a = await instance(open, now);
      const b = await instance(open, now);
      assert.deepEqual(a.key, b.key, 'every instance seals under the key the first one stored');
      const nonce = a.pool.issue();
      assert.match(nonce, /^[A-Za-z0-9_-]{22}$/);
      assert.equal(await b.pool.consume(nonce), true);
      assert.equal(await a.pool.consume(nonce), false);
      assert.equal(await b.pool.consume(nonce), false);
    });

    it('lets exactly one of two instances racing on one nonce have it', async (t) => {
      const open = await database(t);
      const now = () => 1_750_000_000_000;
      const a = await instance(open, now);
      const b = await instance(open, now);
      const nonces = Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).pool.issue());
      const outcomes = await Promise.all(nonces.flatMap((n) => [a.pool.consume(n), b.pool.consume(n)]));
      for (let i = 0; i < nonces.length; i++)
        assert.equal(Number(outcomes[2 * i]) + Number(outcomes[2 * i + 1]), 1, `nonce ${i} spent exactly once`);
    });

    it('stores the key sealed, never in the clear', async (t) => {
      const open = await database(t);
      const a = await instance(open, () => 0);
      const stored = (await a.store.getSetting(NONCE_KEY_SETTING))!;
      const clear = Buffer.from(a.key);
      assert.ok(!stored.includes(clear.toString('base64')) && !stored.includes(clear.toString('hex')));
      assert.ok(!Buffer.from(stored, 'base64').includes(clear), 'the setting is not the key itself');
    });

    // Issuing writes nothing, so a flood of HEAD new-nonce costs the database nothing; only a
    // nonce that opens under the key and is in its lifetime reaches it.
    it('writes nothing to issue, nor to refuse a forged, altered or foreign nonce', async (t) => {
      const open = await database(t);
      const now = () => 1_750_000_000_000;
      const a = await instance(open, now);
      for (let i = 0; i < 1000; i++) a.pool.issue();
      const good = a.pool.issue();
      const altered = Buffer.from(good, 'base64url');
      altered[3]! ^= 1;
      const foreign = createSharedNoncePool({ key: random(32), store: a.store.acme, random, now }).issue();
      for (const junk of [altered.toString('base64url'), foreign, '', 'A'.repeat(22), `${good}A`])
        assert.equal(await a.pool.consume(junk), false, junk);
      assert.equal(await a.spent(), 0);
      assert.equal(await a.pool.consume(good), true);
      assert.equal(await a.spent(), 1);
    });

    it('refuses a nonce past its lifetime, or dated further ahead than instance clocks drift', async (t) => {
      const open = await database(t);
      let nowA = 1_750_000_000_000;
      let nowB = nowA;
      const a = await instance(open, () => nowA);
      const b = await instance(open, () => nowB);
      // B's clock behind A's, within the drift allowed: A's nonce is good at B.
      nowB -= NONCE_CLOCK_SKEW_MS / 2;
      assert.equal(await b.pool.consume(a.pool.issue()), true);
      nowB = nowA - 2 * NONCE_CLOCK_SKEW_MS;
      assert.equal(await b.pool.consume(a.pool.issue()), false, 'dated past the drift allowed');
      nowB = nowA;
      const old = a.pool.issue();
      nowA += HOUR;
      nowB = nowA - 1;
      assert.equal(await a.pool.consume(old), false, 'an hour old');
      assert.equal(await b.pool.consume(old), true, 'a millisecond younger than an hour');
    });

    // A spent nonce is kept until no instance's clock, within the drift allowed, would take it.
    it('prunes spent nonces only once no instance could accept them again', async (t) => {
      const open = await database(t);
      let now = 1_750_000_000_000;
      const a = await instance(open, () => now);
      const b = await instance(open, () => now - NONCE_CLOCK_SKEW_MS + 1);
      const nonce = a.pool.issue();
      assert.equal(await a.pool.consume(nonce), true);
      now += HOUR;
      assert.equal(await a.pool.prune(), 0);
      assert.equal(await b.pool.consume(nonce), false, 'B, a little behind, still finds it spent');
      now += NONCE_CLOCK_SKEW_MS + 1;
      assert.equal(await a.pool.prune(), 1);
      assert.equal(await a.spent(), 0);
      assert.equal(await b.pool.consume(nonce), false, 'and by then its lifetime refuses it');
    });
  });
}

sharedPoolSuite('sqlite', sqliteDatabase);
sharedPoolSuite('postgres', postgresDatabase(testDatabaseUrl));

// While the database is down a nonce cannot be spent, so the request fails as the CA being
// unavailable (a 503 the client retries, acmeErrorFor), never as badNonce; issuing goes on.
describe('shared nonce pool through a PostgreSQL restart', () => {
  it('issues throughout, refuses to spend with storageUnavailable while down, and spends once it is back', async (t) => {
    const server = await startPostgres();
    t.after(() => server.destroy());
    const open = await postgresDatabase(() => server.createDatabase())(t);
    const a = await instance(open, () => 1_750_000_000_000);
    const before = a.pool.issue();
    await server.stop();
    const during = a.pool.issue();
    await assert.rejects(
      a.pool.consume(before),
      (err) => err instanceof StoreError && err.code === 'storageUnavailable',
    );
    await server.start();
    const deadline = Date.now() + 30_000;
    let spent: boolean | undefined;
    while (spent === undefined && Date.now() < deadline)
      spent = await a.pool.consume(during).catch(async () => {
        await new Promise((r) => setTimeout(r, 100));
        return undefined;
      });
    assert.equal(spent, true);
    assert.equal(await a.pool.consume(before), true, 'the refused attempt spent nothing');
  });
});
