import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AuditEntry } from '../contracts/records.js';
import type { Store } from '../contracts/store.js';
import { bytes, minutes, storeError, t0 } from '../test-fixtures.js';
import type { StoreOpener } from './opener.js';

// Revocations as every engine must record them, and the change cursor a server watches to learn
// of revocations other processes (the CLI, another instance) wrote.

const audit = (serial: string): AuditEntry => ({
  at: t0,
  action: 'revoke',
  actor: 'operator:test',
  serial,
  detail: {},
});

/** A store with an active issuer and these serials issued, in this order. */
async function withIssued(open: StoreOpener, t: Parameters<StoreOpener>[0], serials: string[]): Promise<Store> {
  const store = await open(t);
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
      },
      audit: { at: t0, action: 'issue', actor: 'test', serial, detail: {} },
    });
    await store.completeCertificate(serial, bytes(`der-${serial}`), t0);
  }
  return store;
}

const revoke = (store: Store, serial: string, reason: string) =>
  store.revocations.revoke({ serial, revokedAt: minutes(1), reason, actor: 'operator:test' }, audit(serial));

export function revocationsContract(engine: string, open: StoreOpener): void {
  describe(`${engine} store: revocation changes`, () => {
    it('orders changes and CRLs by number, not by text (revision 10 after 9; CRL 2^60 + 1 after 2)', async (t) => {
      const serials = Array.from({ length: 12 }, (_, i) => (i + 10).toString(16).padStart(2, '0'));
      const store = await withIssued(open, t, serials);
      for (const serial of serials) await revoke(store, serial, 'superseded');
      const changes = await store.revocations.changes(null);
      assert.deepEqual(
        changes.map((c) => c.serial),
        serials,
        'every revocation, in the order recorded',
      );
      const afterNinth = await store.revocations.changes(changes[8]!.cursor);
      assert.deepEqual(
        afterNinth.map((c) => c.serial),
        serials.slice(9),
      );
      for (const number of [2n, 9n, 10n, 2n ** 60n + 1n]) {
        await store.revocations.insertCrl({
          issuerId: 'int-1',
          number,
          thisUpdate: t0,
          nextUpdate: minutes(60),
          entries: 0,
          der: bytes(`crl-${number}`),
        });
      }
      const latest = await store.revocations.latestCrl('int-1');
      assert.equal(latest?.number, 2n ** 60n + 1n);
      assert.equal(latest?.entries, 0, 'entries is a number on every engine');
      await store.revocations.pruneCrls('int-1', 2);
      await store.revocations.insertCrl({
        issuerId: 'int-1',
        number: 11n,
        thisUpdate: t0,
        nextUpdate: minutes(60),
        entries: 0,
        der: bytes('crl-11'),
      });
      assert.equal(
        (await store.revocations.latestCrl('int-1'))?.number,
        2n ** 60n + 1n,
        'pruning kept the highest numbers',
      );
    });

    it('lists every revocation from a null cursor, and only later ones from a returned cursor', async (t) => {
      const store = await withIssued(open, t, ['0a', '0b', '0c']);
      assert.deepEqual(await store.revocations.changes(null), []);
      const empty = await store.revocations.changeCursor();
      assert.deepEqual(await store.revocations.changes(empty), []);
      await revoke(store, '0b', 'superseded');
      await revoke(store, '0a', 'cessationOfOperation');
      const all = await store.revocations.changes(null);
      assert.deepEqual(
        all.map((c) => c.serial),
        ['0b', '0a'],
        'in the order they were recorded',
      );
      assert.deepEqual(
        (await store.revocations.changes(empty)).map((c) => c.serial),
        ['0b', '0a'],
      );
      assert.deepEqual(
        (await store.revocations.changes(all[0]!.cursor)).map((c) => c.serial),
        ['0a'],
      );
      const head = await store.revocations.changeCursor();
      assert.equal(head, all[1]!.cursor, 'changeCursor stands after everything recorded');
      assert.deepEqual(await store.revocations.changes(head), []);
      await revoke(store, '0c', 'unspecified');
      assert.deepEqual(
        (await store.revocations.changes(head)).map((c) => c.serial),
        ['0c'],
      );
    });

    it('a reason replaced by keyCompromise is a new change; a repeated revocation is not', async (t) => {
      const store = await withIssued(open, t, ['1a', '1b']);
      await revoke(store, '1a', 'superseded');
      await revoke(store, '1b', 'superseded');
      const head = await store.revocations.changeCursor();
      assert.equal((await revoke(store, '1a', 'superseded')).alreadyRevoked, true);
      assert.deepEqual(await store.revocations.changes(head), [], 'nothing changed');
      const upgraded = await revoke(store, '1a', 'keyCompromise');
      assert.equal(upgraded.previousReason, 'superseded');
      const changes = await store.revocations.changes(head);
      assert.deepEqual(
        changes.map((c) => c.serial),
        ['1a'],
        'a watcher re-signs OCSP and rebuilds the CRL for it',
      );
      assert.deepEqual(
        (await store.revocations.changes(null)).map((c) => c.serial),
        ['1b', '1a'],
        'it moved after every earlier change',
      );
    });

    it('a revocation of a serial that was never issued is notFound and is no change', async (t) => {
      const store = await withIssued(open, t, []);
      await assert.rejects(revoke(store, 'ff', 'unspecified'), storeError('notFound', 'ff'));
      assert.deepEqual(await store.revocations.changes(null), []);
    });

    it('refuses a cursor it did not make', async (t) => {
      const store = await withIssued(open, t, []);
      await assert.rejects(store.revocations.changes('not a cursor'), RangeError);
    });
  });
}
