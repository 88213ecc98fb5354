import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it, type TestContext } from 'node:test';
import { generateKeyPair, parseCrl, publicKeyOf } from '@shortleaf/pki';
import { startPostgres, testDatabaseUrl } from '@shortleaf/store/postgres-testing';
import { createAuthority } from './authority.js';
import { createCrlPublisher } from './crl-publisher.js';
import { loadActiveIssuer } from './issuer.js';
import { createRevoker } from './revoke.js';
import { DAY, HOUR, T0, URLS, memoryLogger, movableClock, passphraseSealer } from './test-fixtures.js';
import { postgresDatabase, setUpIntermediate, sqliteDatabase, type TestDatabase } from './test-instances.js';

/**
 * A CA on the database and `count` instances of it, each with its own store connection, logger
 * and CRL publisher (1 s refresh when `refreshAfterMs` is 0), all on one movable clock.
 */
async function instances(t: TestContext, database: TestDatabase, count: number, refreshAfterMs = 8 * HOUR) {
  const open = await database(t);
  const clock = movableClock(T0);
  const sealer = passphraseSealer();
  const first = await open();
  await setUpIntermediate(first, sealer, clock);
  const all = [];
  for (let i = 0; i < count; i++) {
    const store = i === 0 ? first : await open();
    const issuer = await loadActiveIssuer(store, sealer);
    const logger = memoryLogger();
    const crls = createCrlPublisher({
      store,
      issuer,
      clock,
      logger,
      distributionPoint: 'http://status.test/crl',
      validityMs: DAY,
      refreshAfterMs,
      rebuildDelayMs: 50,
    });
    t.after(() => crls.stop());
    const authority = createAuthority({
      store,
      issuer,
      clock,
      random: (n) => new Uint8Array(randomBytes(n)),
      urls: URLS,
      logger,
    });
    const revoke = createRevoker({ store, clock, logger, onRevoked: () => crls.requestRebuild() });
    const built = () =>
      logger.lines.filter((l) => l.event === 'crl_published').map((l) => BigInt(String(l.fields.number)));
    all.push({ store, issuer, logger, crls, authority, revoke, built });
  }
  return { clock, all };
}

type Instance = Awaited<ReturnType<typeof instances>>['all'][number];

const issueLeaf = async (i: Instance) =>
  (
    await i.authority.issueServerCertificate({
      publicKey: publicKeyOf(generateKeyPair('EC-P256').privateKey),
      names: ['svc.internal'],
      lifetimeMs: DAY,
    })
  ).serial;

const lists = (i: Instance, serial: string) =>
  parseCrl(i.crls.current()?.der ?? new Uint8Array()).entries.some((e) => e.serial === serial);

async function until(what: string, done: () => Promise<boolean> | boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await sleep(20);
  }
}

/** Every CRL number any instance built: each once, and together a run without gaps. */
function assertNumbering(all: Instance[]): bigint[] {
  const numbers = all.flatMap((i) => i.built()).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  assert.equal(new Set(numbers).size, numbers.length, `no number built twice: ${numbers.join(',')}`);
  numbers.forEach((n, k) => assert.equal(n, numbers[0]! + BigInt(k), `no gap: ${numbers.join(',')}`));
  return numbers;
}

function publisherSuite(engine: string, database: TestDatabase) {
  describe(`CRL publisher on several instances, ${engine}`, () => {
    it('builds one CRL at a time: rebuilds raced from two instances take distinct, growing numbers', async (t) => {
      const { all } = await instances(t, database, 2);
      const [a, b] = all as [Instance, Instance];
      await Promise.all([a.crls.start(), b.crls.start()]);
      const rows = await Promise.all([a, b, a, b, a, b].map((i) => i.crls.rebuild()));
      const numbers = assertNumbering(all);
      // The newest built is what the database and both instances serve.
      const latest = numbers.at(-1)!;
      assert.equal((await a.store.revocations.latestCrl(a.issuer.id))?.number, latest);
      assert.ok(rows.every((r) => r.number <= latest));
      await a.crls.follow();
      await b.crls.follow();
      assert.equal(a.crls.current()?.number, latest);
      assert.equal(b.crls.current()?.number, latest);
    });

    it('lists each revocation, made through either instance, in the next CRL both serve', async (t) => {
      const { clock, all } = await instances(t, database, 2);
      const [a, b] = all as [Instance, Instance];
      await a.crls.start();
      await b.crls.start();
      for (let k = 0; k < 4; k++) {
        clock.advance(1_000);
        const via = k % 2 === 0 ? a : b;
        const other = via === a ? b : a;
        const serial = await issueLeaf(via);
        await via.revoke({ serial, reason: 'keyCompromise', actor: 't', requester: 't' });
        // What the other instance's watcher does when it sees the revocation.
        other.crls.requestRebuild();
        await until(`both serve a CRL listing revocation ${k}`, async () => {
          await a.crls.follow();
          await b.crls.follow();
          return lists(a, serial) && lists(b, serial);
        });
      }
      assertNumbering(all);
    });

    it('builds nothing without the lock, and serves the CRL another instance built after its request', async (t) => {
      const { clock, all } = await instances(t, database, 2);
      const [a, b] = all as [Instance, Instance];
      await a.crls.start();
      await b.crls.start();
      const before = b.built().length;
      const held = (await a.store.coordination.tryLock(`crl:${a.issuer.id}`))!;
      assert.ok(held !== null);
      const waiting = b.crls.rebuild();
      await sleep(700);
      assert.equal(b.built().length, before, 'no CRL is built while another holds the lock');
      clock.advance(1_000);
      await held.release();
      const built = await a.crls.rebuild();
      assert.equal((await waiting).number, built.number, "B serves A's CRL, built after B asked");
      assert.equal(b.built().length, before, 'and builds none of its own');
    });

    it('answers a refresh due on every instance with one new CRL, not one per instance', async (t) => {
      const { all } = await instances(t, database, 3, 0);
      for (const i of all) await i.crls.start();
      const started = all.flatMap((i) => i.built()).length;
      await until('a scheduled refresh built a CRL', () => all.flatMap((i) => i.built()).length > started);
      // Every instance's refresh falls due within milliseconds of the others'.
      await sleep(400);
      assert.equal(all.flatMap((i) => i.built()).length, started + 1);
      assertNumbering(all);
    });
  });
}

publisherSuite('sqlite', sqliteDatabase);
publisherSuite('postgres', postgresDatabase(testDatabaseUrl));

// A database outage must not stop the schedule: the failed rebuild is logged and tried again
// until the database is back (before, a failed refresh was never rescheduled).
describe('CRL publisher through a PostgreSQL restart', () => {
  it('logs the failed rebuild, keeps serving its CRL, and publishes once the database is back', async (t) => {
    const server = await startPostgres();
    t.after(() => server.destroy());
    const { clock, all } = await instances(
      t,
      postgresDatabase(() => server.createDatabase()),
      1,
    );
    const [a] = all as [Instance];
    await a.crls.start();
    const served = a.crls.current()!;
    await server.stop();
    clock.advance(1_000);
    a.crls.requestRebuild();
    await until('the failure is logged', () => a.logger.lines.some((l) => l.event === 'crl_publish_failed'), 15_000);
    assert.equal(a.crls.current(), served, 'the CRL in service stays');
    await server.start();
    await until('a CRL is published once the database is back', () => a.crls.current()!.number > served.number, 40_000);
  });
});
