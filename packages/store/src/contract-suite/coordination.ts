import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { NoticeTopic, Store } from '../contracts/store.js';
import { bytes, minutes, t0 } from '../test-fixtures.js';
import type { StoreOpener } from './opener.js';

// What processes sharing a database coordinate through, as every engine must behave within one
// store: the lock, change notices, spent ACME nonces and write-once settings. Engines shared by
// several processes test the same across two stores in their own tests.

/** Resolves on the next notice on `topic`; rejects after `ms`. */
async function nextNotice(store: Store, topic: NoticeTopic, ms = 5_000): Promise<void> {
  let unsubscribe: (() => void) | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no '${topic}' notice within ${ms} ms`)), ms);
      void store.coordination
        .subscribe(topic, () => {
          clearTimeout(timer);
          resolve();
        })
        .then((u) => (unsubscribe = u), reject);
    });
  } finally {
    unsubscribe?.();
  }
}

export function coordinationContract(engine: string, open: StoreOpener): void {
  describe(`${engine} store: coordination`, () => {
    it('grants a lock to one holder at a time, and again once released', async (t) => {
      const store = await open(t);
      const first = await store.coordination.tryLock('crl:int-1');
      assert.ok(first !== null && first.held);
      assert.equal(await store.coordination.tryLock('crl:int-1'), null, 'held: refused');
      const other = await store.coordination.tryLock('crl:int-2');
      assert.ok(other !== null, 'another name is another lock');
      await first.release();
      assert.equal(first.held, false);
      await first.release(); // idempotent
      const again = await store.coordination.tryLock('crl:int-1');
      assert.ok(again !== null && again.held, 'free after release');
      await again.release();
      await other.release();
    });

    it('sends a notice after a revocation, a CRL and an intermediate change commit', async (t) => {
      const store = await open(t);
      const issuerNotice = nextNotice(store, 'issuers');
      await new Promise((r) => setTimeout(r, 50)); // let the subscription start listening
      await store.createIssuer({
        id: 'int-1',
        name: 'issuer-int-1',
        sealedKey: bytes('sealed'),
        keyAlgorithm: 'ECDSA-P256',
        csrDer: bytes('csr'),
        createdAt: t0,
      });
      await issuerNotice;

      const crlNotice = nextNotice(store, 'crls');
      await new Promise((r) => setTimeout(r, 50));
      await store.revocations.insertCrl({
        issuerId: 'int-1',
        number: 1n,
        thisUpdate: t0,
        nextUpdate: minutes(60),
        entries: 0,
        der: bytes('crl-1'),
      });
      await crlNotice;

      await store.setIssuerCertificate('int-1', bytes('cert'));
      await store.activateIssuer('int-1', t0);
      await store.reserveCertificate({
        certificate: {
          serial: '0a',
          issuerId: 'int-1',
          subject: 'CN=a',
          names: ['a.internal'],
          notBefore: t0,
          notAfter: minutes(60),
          provisioner: 'ops',
          requester: 'x',
          createdAt: t0,
        },
        audit: { at: t0, action: 'issue', actor: 'ops', serial: '0a', detail: {} },
      });
      await store.completeCertificate('0a', bytes('der-0a'), t0);
      const revocationNotice = nextNotice(store, 'revocations');
      await new Promise((r) => setTimeout(r, 50));
      await store.revocations.revoke(
        { serial: '0a', revokedAt: t0, reason: 'keyCompromise', actor: 'ops' },
        { at: t0, action: 'revoke', actor: 'ops', serial: '0a', detail: {} },
      );
      await revocationNotice;
    });

    it('spends an ACME nonce exactly once, and prunes it after its expiry', async (t) => {
      const store = await open(t);
      assert.equal(await store.acme.spendNonce('n-1', minutes(60)), true);
      assert.equal(await store.acme.spendNonce('n-1', minutes(60)), false, 'a second spend is refused');
      assert.equal(await store.acme.spendNonce('n-2', minutes(5)), true);
      assert.equal(await store.acme.pruneSpentNonces(minutes(30)), 1, 'only the expired one goes');
      assert.equal(await store.acme.spendNonce('n-1', minutes(60)), false, 'n-1 is still remembered');
    });

    it('keeps the first value written with settingOnce', async (t) => {
      const store = await open(t);
      assert.equal(await store.settingOnce('acme.nonce_key', 'first'), 'first');
      assert.equal(await store.settingOnce('acme.nonce_key', 'second'), 'first');
      assert.equal(await store.getSetting('acme.nonce_key'), 'first');
    });
  });
}
