import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import type { RevocationOutcome } from '../contracts/revocations.js';
import { bytes, minutes, storeError, t0 } from '../test-fixtures.js';
import { PostgresStore } from './pg-store.js';
import { testDatabaseUrl } from './test-server.js';

// Two instances (two stores, two pools) on one database racing the writes that must have exactly
// one winner across processes: revoking one certificate, and spending one ACME nonce. Each race
// runs many times over, so a lost update that shows only under some interleavings shows here.

const ROUNDS = 25;

/** Two stores on one new database, as two instances would open it, and the database's URL. */
async function twoInstances(t: TestContext): Promise<{ a: PostgresStore; b: PostgresStore; url: string }> {
  const url = await testDatabaseUrl(t);
  const quiet = { info: () => undefined, warn: () => undefined };
  const stores = await Promise.all([
    PostgresStore.open(url, { logger: quiet }),
    PostgresStore.open(url, { logger: quiet }),
  ]);
  t.after(() => Promise.all(stores.map((s) => s.close())));
  return { a: stores[0], b: stores[1], url };
}

/** Polls `check` until it returns true; fails after `ms`. */
async function eventually(what: string, check: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`${what}: not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function issue(
  store: PostgresStore,
  serials: string[],
  spkiSha256: (serial: string) => string | undefined = () => undefined,
): Promise<void> {
  await store.createIssuer({
    id: 'int-1',
    name: 'issuer-int-1',
    sealedKey: bytes('k'),
    keyAlgorithm: 'ECDSA-P256',
    csrDer: bytes('csr'),
    createdAt: t0,
  });
  await store.setIssuerCertificate('int-1', bytes('cert'));
  await store.activateIssuer('int-1', t0);
  for (const serial of serials) {
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
        createdAt: t0,
        ...(spkiSha256(serial) === undefined ? {} : { spkiSha256: spkiSha256(serial) }),
      },
      audit: { at: t0, action: 'issue', actor: 'test', serial, detail: {} },
    });
    await store.completeCertificate(serial, bytes(`der-${serial}`), t0);
  }
}

const revoke = (store: PostgresStore, serial: string, reason: string, actor: string): Promise<RevocationOutcome> =>
  store.revocations.revoke(
    { serial, revokedAt: minutes(1), reason, actor },
    { at: t0, action: 'revoke', actor, serial, detail: { reason } },
  );

describe('postgres store: races between two instances', () => {
  it('two instances revoking one certificate at once: one records it, the other finds it revoked', async (t) => {
    const { a, b } = await twoInstances(t);
    const serials = Array.from({ length: ROUNDS }, (_, i) => `0a${i.toString(16).padStart(2, '0')}`);
    await issue(a, serials);

    // A server watching the change cursor while the races run must end up with every serial once.
    const seen: string[] = [];
    let cursor = await b.revocations.changeCursor();
    let racing = true;
    const watch = async (): Promise<void> => {
      do {
        for (const change of await b.revocations.changes(cursor)) {
          assert.ok(BigInt(change.cursor) > BigInt(cursor), 'a cursor never goes back');
          seen.push(change.serial);
          cursor = change.cursor;
        }
      } while (racing);
    };
    const watcher = watch();

    try {
      for (const serial of serials) {
        const outcomes = await Promise.all([
          revoke(a, serial, 'superseded', 'instance-a'),
          revoke(b, serial, 'superseded', 'instance-b'),
        ]);
        const winners = outcomes.filter((o) => !o.alreadyRevoked);
        assert.equal(winners.length, 1, `${serial}: exactly one instance records the revocation`);
        const stored = await a.revocations.get(serial);
        for (const outcome of outcomes) assert.deepEqual(outcome.record, stored, 'both report the first revocation');
        assert.equal(stored?.actor, winners[0]?.record.actor);
      }
    } finally {
      racing = false;
      await watcher;
    }
    for (const change of await b.revocations.changes(cursor)) seen.push(change.serial);

    assert.deepEqual(seen, serials, 'the watcher saw each revocation once, in the order they were recorded');
    assert.deepEqual(
      (await a.revocations.changes(null)).map((c) => c.serial),
      serials,
      'read from the start, in revision order (numeric: 10 after 9)',
    );
    const audit = await a.listAudit({ action: 'revoke' });
    assert.equal(audit.length, ROUNDS, 'one audit entry per revocation, none for the loser');
  });

  it('superseded and keyCompromise racing end as if run one after the other', async (t) => {
    const { a, b } = await twoInstances(t);
    const serials = Array.from({ length: ROUNDS }, (_, i) => `0b${i.toString(16).padStart(2, '0')}`);
    await issue(a, serials);
    for (const serial of serials) {
      const [superseded, compromised] = await Promise.all([
        revoke(a, serial, 'superseded', 'instance-a'),
        revoke(b, serial, 'keyCompromise', 'instance-b'),
      ]);
      // Either order is SQLite's outcome for that order; nothing else is.
      const supersededFirst =
        !superseded.alreadyRevoked && !compromised.alreadyRevoked && compromised.previousReason === 'superseded';
      const compromiseFirst =
        !compromised.alreadyRevoked &&
        compromised.previousReason === undefined &&
        superseded.alreadyRevoked &&
        superseded.record.reason === 'keyCompromise';
      assert.ok(supersededFirst || compromiseFirst, `${serial}: ${JSON.stringify([superseded, compromised])}`);
      assert.equal((await a.revocations.get(serial))?.reason, 'keyCompromise');
    }
  });

  it('two instances spending one ACME nonce at once: exactly one spends it', async (t) => {
    const { a, b } = await twoInstances(t);
    const nonces = Array.from({ length: ROUNDS * 4 }, (_, i) => `nonce-${i}`);
    const results = await Promise.all(
      nonces.map(async (nonce) => {
        const spent = await Promise.all([
          a.acme.spendNonce(nonce, minutes(60)),
          b.acme.spendNonce(nonce, minutes(60)),
          a.acme.spendNonce(nonce, minutes(60)),
          b.acme.spendNonce(nonce, minutes(60)),
        ]);
        return spent.filter(Boolean).length;
      }),
    );
    assert.deepEqual(
      results,
      nonces.map(() => 1),
      'each nonce spent by exactly one call',
    );
    assert.equal((await a.counts()).acme_spent_nonces, nonces.length);
  });

  it('a reader’s cursor never passes a revocation still in flight at another instance', async (t) => {
    const { a, b, url } = await twoInstances(t);
    const key = 'ab'.repeat(32);
    await issue(a, ['0c01', '0c02'], (serial) => (serial === '0c01' ? key : undefined));

    // Hold a's revocation of 0c01 open after it recorded its revision: an uncommitted row of
    // another session on the key it blocks makes its blocked_keys insert wait.
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    t.after(() => holder.end());
    await holder.query('BEGIN');
    await holder.query(
      "INSERT INTO blocked_keys (spki_sha256, reason, serial, blocked_at) VALUES ($1, 'keyCompromise', NULL, now())",
      [key],
    );
    // Who waits for a lock, seen from a session outside any transaction (inside one, PostgreSQL
    // keeps the first snapshot of pg_stat_activity until it ends).
    const monitor = new pg.Client({ connectionString: url });
    await monitor.connect();
    t.after(() => monitor.end());
    const waiters = async (): Promise<number> => {
      const { rows } = await monitor.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'shortleaf' AND wait_event_type = 'Lock'",
      );
      return rows[0]?.n ?? 0;
    };
    const first = a.revocations.revoke(
      { serial: '0c01', revokedAt: minutes(1), reason: 'keyCompromise', actor: 'instance-a' },
      { at: t0, action: 'revoke', actor: 'instance-a', serial: '0c01', detail: {} },
      undefined,
      { lineage: true, key: true },
    );
    first.catch(() => undefined); // awaited below
    await eventually('the first revocation waits in flight', async () => (await waiters()) === 1);

    // b revokes another certificate meanwhile; it may not commit a change a reader could see
    // before the one in flight.
    let secondSettled = false;
    const second = revoke(b, '0c02', 'superseded', 'instance-b').finally(() => (secondSettled = true));
    second.catch(() => undefined);
    await eventually('the second revocation waits or ends', async () => secondSettled || (await waiters()) === 2);
    const readerCursor = await b.revocations.changeCursor();

    await holder.query('ROLLBACK');
    await Promise.all([first, second]);
    assert.deepEqual(
      (await b.revocations.changes(readerCursor)).map((c) => c.serial),
      ['0c01', '0c02'],
      'a cursor taken meanwhile still leads to both, in commit order',
    );
  });

  it('two instances binding one EAB key, moving one order or starting one challenge: one winner each', async (t) => {
    const { a, b } = await twoInstances(t);
    await a.addProvisioner({ name: 'acme', type: 'acme', publicJwk: null, policy: '{}', createdAt: t0 });
    const account = (id: string, eabKid: string) => ({
      id,
      provisioner: 'acme',
      thumbprint: `tp-${id}`,
      jwk: '{}',
      status: 'valid' as const,
      contact: [],
      eabKid,
      createdAt: t0,
    });
    for (let round = 0; round < ROUNDS; round++) {
      const kid = `kid-${round}`;
      await a.acme.createEabKey({ kid, provisioner: 'acme', sealedKey: bytes('k'), createdAt: t0 });
      const results = await Promise.allSettled([
        a.acme.createAccount(account(`acct-a-${round}`, kid), { kid, at: minutes(1) }),
        b.acme.createAccount(account(`acct-b-${round}`, kid), { kid, at: minutes(1) }),
      ]);
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1, `${kid}: one account binds it`);
      const lost = results.find((r) => r.status === 'rejected');
      assert.ok(lost !== undefined);
      storeError('eabKeyUsed', kid)(lost.reason);
      const bound = await a.acme.getEabKey(kid);
      assert.ok(bound?.accountId !== null && (await b.acme.getAccount(bound!.accountId!)) !== null);
    }
    assert.equal((await a.counts()).acme_accounts, ROUNDS, 'no account without its key');

    const authorization = (id: string) => ({
      id,
      accountId: 'acct-a-0',
      identifier: { type: 'dns' as const, value: `${id}.internal` },
      wildcard: false,
      status: 'pending' as const,
      expires: minutes(60),
      challenges: [
        {
          id: `${id}-http`,
          authorizationId: id,
          type: 'http-01' as const,
          token: `token-${id}`,
          status: 'pending' as const,
          validated: null,
          error: null,
        },
      ],
      createdAt: t0,
    });
    for (let round = 0; round < ROUNDS; round++) {
      const authz = authorization(`az-${round}`);
      await a.acme.createOrder(
        {
          id: `ord-${round}`,
          accountId: 'acct-a-0',
          status: 'pending',
          identifiers: [authz.identifier],
          authorizationIds: [authz.id],
          notBefore: null,
          notAfter: null,
          expires: minutes(60),
          error: null,
          certificateSerial: null,
          replaces: null,
          replacesSerial: null,
          createdAt: t0,
        },
        [authz],
      );
      const moved = await Promise.all([
        a.acme.transitionOrder(`ord-${round}`, 'pending', { status: 'processing' }),
        b.acme.transitionOrder(`ord-${round}`, 'pending', { status: 'processing' }),
      ]);
      assert.equal(moved.filter(Boolean).length, 1, `ord-${round}: one instance moves it`);
      const started = await Promise.all([
        a.acme.startChallenge(`az-${round}-http`),
        b.acme.startChallenge(`az-${round}-http`),
      ]);
      assert.equal(started.filter(Boolean).length, 1, `az-${round}: one validation runs`);
    }
  });
});
