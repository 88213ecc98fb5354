import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { CertificateReservation } from '../contracts/records.js';
import { bytes, minutes, storeError, t0 } from '../test-fixtures.js';
import { PostgresStore } from './pg-store.js';
import { testDatabaseUrl } from './test-server.js';

// What the PostgreSQL revocations repository does beyond the contract suite's cursor tests: the
// reach of a revocation over lineages and keys, CRL numbers, root CRLs and OCSP signers, with
// SQLite's codes and messages (packages/store/src/revocation-repository.ts is the reference).

async function open(t: TestContext): Promise<PostgresStore> {
  const store = await PostgresStore.open(await testDatabaseUrl(t), {
    logger: { info: () => undefined, warn: () => undefined },
  });
  t.after(() => store.close());
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
  return store;
}

/** Reserves and signs a certificate; `createdAt` all equal, so only insertion order tells them apart. */
async function issue(
  store: PostgresStore,
  serial: string,
  fields: Partial<CertificateReservation> & { spkiSha256: string },
): Promise<void> {
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
      ...fields,
    },
    audit: { at: t0, action: 'issue', actor: 'test', serial, detail: {} },
  });
  await store.completeCertificate(serial, bytes(`der-${serial}`), t0);
}

const K1 = '11'.repeat(32);
const K2 = '22'.repeat(32);
const K3 = '33'.repeat(32);
const K4 = '44'.repeat(32);

describe('postgres revocations: reach, CRLs, root CRLs, OCSP signers', () => {
  it('reaches the live certificates of the lineage, then of the key, and blocks the key', async (t) => {
    const store = await open(t);
    const renewal = (lineage: string, from: string) => ({ lineage, renewedFrom: from, lineageStartedAt: t0 });
    await issue(store, 'a1', { spkiSha256: K1 });
    await issue(store, 'a3', { spkiSha256: K2, ...renewal('a1', 'a1'), notAfter: minutes(0.5) }); // expired by then
    await issue(store, 'a2', { spkiSha256: K2, ...renewal('a1', 'a1') });
    await issue(store, 'b1', { spkiSha256: K2 }); // another lineage, the same key as a2
    await issue(store, 'b2', { spkiSha256: K3, ...renewal('b1', 'b1') }); // renewed from it into a new key
    await issue(store, 'c1', { spkiSha256: K4 });
    const at = minutes(1);
    const audit = { at, action: 'revoke', actor: 'operator:test', serial: 'a2', detail: { via: 'test' } };

    const lineage = await store.revocations.revoke(
      { serial: 'a2', revokedAt: at, reason: 'superseded', actor: 'operator:test' },
      audit,
      undefined,
      { lineage: true, key: false },
    );
    assert.equal(lineage.alreadyRevoked, false);
    assert.deepEqual(lineage.also, [{ serial: 'a1', revokedAt: at, reason: 'superseded', actor: 'operator:test' }]);
    assert.equal(await store.revocations.blockedKey(K2), null, 'no key reach, no block');

    const later = minutes(2);
    const key = await store.revocations.revoke(
      { serial: 'a2', revokedAt: later, reason: 'keyCompromise', actor: 'operator:other' },
      { ...audit, at: later, actor: 'operator:other' },
      undefined,
      { lineage: true, key: true },
    );
    assert.equal(key.previousReason, 'superseded');
    assert.deepEqual(key.record, { serial: 'a2', revokedAt: at, reason: 'keyCompromise', actor: 'operator:other' });
    assert.deepEqual(
      key.also,
      [
        { serial: 'a1', revokedAt: at, reason: 'keyCompromise', actor: 'operator:other' },
        { serial: 'b1', revokedAt: later, reason: 'keyCompromise', actor: 'operator:other' },
        { serial: 'b2', revokedAt: later, reason: 'keyCompromise', actor: 'operator:other' },
      ],
      'the lineage moved to keyCompromise at its first time; the key’s certificates and their lineages, in reservation order',
    );
    assert.deepEqual(await store.revocations.blockedKey(K2), {
      spkiSha256: K2,
      reason: 'keyCompromise',
      serial: 'a2',
      blockedAt: later,
    });
    assert.equal(await store.revocations.get('a3'), null, 'an expired certificate is not reached');
    assert.equal(await store.revocations.get('c1'), null);

    const reached = (await store.listAudit({ action: 'revoke' })).filter((e) => e.detail.reachedFrom === 'a2');
    assert.deepEqual(
      reached.map((e) => [e.serial, e.detail.previousReason ?? null]),
      [
        ['a1', null],
        ['a1', 'superseded'],
        ['b1', null],
        ['b2', null],
      ],
    );
    assert.equal(reached[0]?.detail.via, 'test', 'the caller’s detail is kept');

    const counts = await store.counts();
    const again = await store.revocations.revoke(
      { serial: 'a2', revokedAt: minutes(3), reason: 'keyCompromise', actor: 'operator:third' },
      audit,
      { provisioner: 'ops', jti: 'jti-1', expiresAt: minutes(5) },
      { lineage: true, key: true },
    );
    assert.deepEqual(again, { record: key.record, alreadyRevoked: true, also: [] });
    assert.deepEqual(
      (await store.revocations.list()).map((r) => r.serial),
      ['b2', 'b1', 'a1', 'a2'],
      'newest first; equal times, the latest change first',
    );
    assert.equal((await store.counts()).token_uses, (counts.token_uses ?? 0) + 1, 'the token is spent all the same');
  });

  it('a replayed token or a certificate not yet issued writes nothing', async (t) => {
    const store = await open(t);
    await issue(store, 'a1', { spkiSha256: K1 });
    await store.reserveCertificate({
      certificate: {
        serial: 'a2',
        issuerId: 'int-1',
        subject: 'CN=a2',
        names: ['a2.internal'],
        notBefore: t0,
        notAfter: minutes(60),
        provisioner: 'ops',
        requester: 'test',
        createdAt: t0,
      },
      tokenUse: { provisioner: 'ops', jti: 'jti-1', expiresAt: minutes(5) },
      audit: { at: t0, action: 'issue', actor: 'test', serial: 'a2', detail: {} },
    });
    const counts = await store.counts();
    const r = { serial: 'a1', revokedAt: minutes(1), reason: 'superseded', actor: 'ops' };
    const audit = { at: t0, action: 'revoke', actor: 'ops', serial: 'a1', detail: {} };
    await assert.rejects(
      store.revocations.revoke(r, audit, { provisioner: 'ops', jti: 'jti-1', expiresAt: minutes(5) }),
      storeError('tokenReplayed', 'already been used'),
    );
    await assert.rejects(
      store.revocations.revoke({ ...r, serial: 'a2' }, audit, { provisioner: 'ops', jti: 'jti-2', expiresAt: t0 }),
      storeError('notFound', 'a2'),
    );
    assert.deepEqual(await store.counts(), counts);
  });

  it('lists a CRL’s entries: the issuer’s revoked certificates not expired at the previous CRL', async (t) => {
    const store = await open(t);
    await issue(store, 'b1', { spkiSha256: K1, notAfter: minutes(30) });
    await issue(store, 'a1', { spkiSha256: K2 });
    for (const serial of ['b1', 'a1'])
      await store.revocations.revoke(
        { serial, revokedAt: minutes(1), reason: 'superseded', actor: 'ops' },
        { at: t0, action: 'revoke', actor: 'ops', serial, detail: {} },
      );
    const entries = (previous: Date | null) =>
      store.revocations.listForCrl('int-1', previous).then((list) => list.map((e) => e.serial));
    assert.deepEqual(await entries(null), ['a1', 'b1'], 'equal times: by serial');
    assert.deepEqual(await entries(minutes(30)), ['a1', 'b1'], 'still carried by the CRL after its expiry');
    assert.deepEqual(await entries(minutes(31)), ['a1']);
    assert.deepEqual(await store.revocations.listForCrl('int-2', null), []);
  });

  it('CRL numbers are used once, the newest is the largest, pruning keeps the newest', async (t) => {
    const store = await open(t);
    const crl = (number: bigint) => ({
      issuerId: 'int-1',
      number,
      thisUpdate: t0,
      nextUpdate: minutes(60),
      entries: 2,
      der: bytes(`crl-${number}`),
    });
    assert.equal(await store.revocations.latestCrl('int-1'), null);
    const big = 2n ** 60n + 1n; // past what a JavaScript number holds exactly
    for (const n of [1n, big, 2n]) await store.revocations.insertCrl(crl(n));
    await assert.rejects(store.revocations.insertCrl(crl(2n)), storeError('conflict', 'CRL number 2 of issuer int-1'));
    assert.deepEqual(await store.revocations.latestCrl('int-1'), { ...crl(big), der: Buffer.from(crl(big).der) });
    await store.revocations.pruneCrls('int-1', 2);
    assert.equal((await store.counts()).crls, 2);
    await store.revocations.pruneCrls('int-1', 0);
    assert.equal(await store.revocations.latestCrl('int-1'), null);
    await assert.rejects(store.revocations.pruneCrls('int-1', -1), RangeError);
  });

  it('imports root CRLs of our roots only, each number once', async (t) => {
    const store = await open(t);
    const fingerprint = await store.addRoot(bytes('root'), t0);
    const rootCrl = (number: bigint, rootFingerprint = fingerprint) => ({
      rootFingerprint,
      number,
      thisUpdate: t0,
      nextUpdate: minutes(60),
      der: bytes(`root-crl-${number}`),
      importedAt: minutes(1),
    });
    await store.revocations.importRootCrl(rootCrl(1n));
    await store.revocations.importRootCrl(rootCrl(3n));
    await assert.rejects(store.revocations.importRootCrl(rootCrl(3n)), storeError('conflict', 'already imported'));
    await assert.rejects(
      store.revocations.importRootCrl(rootCrl(4n, 'ff'.repeat(32))),
      storeError('notFound', 'not one of our roots'),
    );
    assert.deepEqual(await store.revocations.latestRootCrl(fingerprint), {
      ...rootCrl(3n),
      der: Buffer.from(rootCrl(3n).der),
    });
    assert.equal(await store.revocations.latestRootCrl('ff'.repeat(32)), null);
  });

  it('finds the newest OCSP signer, or the newest with its certificate', async (t) => {
    const store = await open(t);
    const signer = (id: string) => ({
      id,
      issuerId: 'int-1',
      sealedKey: bytes(`key-${id}`),
      csrDer: bytes(`csr-${id}`),
      createdAt: t0,
    });
    assert.equal(await store.revocations.getOcspSigner('int-1'), null);
    await store.revocations.createOcspSigner(signer('s1'));
    await store.revocations.createOcspSigner(signer('s2')); // same instant: the later inserted is newer
    await store.revocations.setOcspSignerCertificate('s1', bytes('cert-s1'));
    assert.equal((await store.revocations.getOcspSigner('int-1'))?.id, 's2');
    assert.deepEqual(await store.revocations.getOcspSigner('int-1', { certified: true }), {
      ...signer('s1'),
      sealedKey: Buffer.from(bytes('key-s1')),
      csrDer: Buffer.from(bytes('csr-s1')),
      certDer: Buffer.from(bytes('cert-s1')),
    });
    await assert.rejects(store.revocations.setOcspSignerCertificate('s9', bytes('x')), storeError('notFound', 's9'));
  });
});
