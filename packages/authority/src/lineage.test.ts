import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { after, before, beforeEach, describe, it } from 'node:test';
import { issuerHashes, parseCrl, parseCsr } from '@shortleaf/pki';
import { StoreError, keyDigest } from '@shortleaf/store';
import type { IssuedCertificate } from './authority.js';
import { createCrlPublisher } from './crl-publisher.js';
import { createOcspResponder, type OcspResponderService } from './ocsp-responder.js';
import { createOcspSignerManager } from './ocsp-signers.js';
import { createRevoker, type Revoke } from './revoke.js';
import {
  AUD,
  DAY,
  HOUR,
  T0,
  addProvisioner,
  at,
  createTestCa,
  makeCsr,
  mint,
  ocspRequest,
  rejectsWith,
  unchanged,
  type TestCa,
  type TestCsr,
  type TestProvisioner,
} from './test-fixtures.js';

// Hole: renewal had no lineage. Five renewals under five keys were all valid at once, revoking
// the original left them good and renewable, and an ACME certificate renewed over mTLS forever.
describe('lineage', () => {
  let ca: TestCa;
  let ops: TestProvisioner;
  let revoke: Revoke;
  let notified: string[];
  let ocsp: OcspResponderService;
  let stopSigners: () => void;

  before(async () => {
    ca = await createTestCa();
    ops = await addProvisioner(ca.store, 'ops', {});
    await ca.store.addProvisioner({ name: 'acme', type: 'acme', publicJwk: null, policy: '{}', createdAt: T0 });
    await ca.store.addProvisioner({
      name: 'acme-mtls',
      type: 'acme',
      publicJwk: null,
      policy: JSON.stringify({ mtlsRenewal: true }),
      createdAt: T0,
    });
    const signers = createOcspSignerManager({
      authority: ca.authority,
      lifetimeMs: 3 * DAY,
      logger: ca.logger,
      onRotate: () => ocsp?.clear(),
    });
    await signers.start();
    stopSigners = () => signers.stop();
    ocsp = createOcspResponder({
      store: ca.store,
      issuer: ca.issuer,
      intermediateResponder: () => signers.current(),
      rootResponder: null,
      clock: ca.clock,
      logger: ca.logger,
      validityMs: 12 * HOUR,
      maxCacheEntries: 100,
    });
    revoke = createRevoker({
      store: ca.store,
      clock: ca.clock,
      logger: ca.logger,
      onRevoked: async (serial) => {
        notified.push(serial);
        await ocsp.resign(serial);
      },
    });
  });
  after(async () => {
    stopSigners();
    await ca.close();
  });
  beforeEach(() => {
    ca.clock.set(T0);
    notified = [];
  });

  const sign = async (name: string, key: TestCsr = makeCsr([name]), p: TestProvisioner = ops) =>
    ca.authority.sign({
      csr: key.pem,
      token: await mint(p, { subject: name, now: ca.clock.now() }),
      audiences: [AUD],
      requester: 't',
    });
  const renew = (cert: IssuedCertificate, rekey?: TestCsr) =>
    ca.authority.renew({
      clientCertificate: cert.der,
      ...(rekey === undefined ? {} : { csr: rekey.pem }),
      requester: 't',
    });
  const row = async (serial: string) => (await ca.store.getCertificate(serial))!;
  const revocation = (serial: string) => ca.store.revocations.get(serial);
  const byOrder = (name: string, key: TestCsr, provisioner = 'acme') =>
    ca.authority.issueForOrder({
      provisioner,
      account: 'acct',
      order: 'ord',
      csr: parseCsr(key.der),
      names: [{ kind: 'dns', value: name }],
      requester: 't',
    });

  it('records where each renewal came from, and the lineage it continues, under the same and a new key', async () => {
    const key = makeCsr(['l1.internal']);
    const original = await sign('l1.internal', key);
    ca.clock.advance(HOUR);
    const same = await renew(original);
    ca.clock.advance(HOUR);
    const rekeyed = await renew(same, makeCsr([]));
    const first = await row(original.serial);
    assert.equal(first.renewedFrom, null);
    assert.equal(first.lineage, original.serial);
    assert.equal(first.lineageStartedAt.toISOString(), T0.toISOString());
    assert.equal(first.spkiSha256, keyDigest(key.publicKey.keyObject));
    const second = await row(same.serial);
    assert.equal(second.renewedFrom, original.serial);
    assert.equal(second.lineage, original.serial);
    assert.equal(
      second.lineageStartedAt.toISOString(),
      T0.toISOString(),
      'a renewal inherits when the credential was presented',
    );
    assert.equal(second.spkiSha256, first.spkiSha256);
    const third = await row(rekeyed.serial);
    assert.equal(third.renewedFrom, same.serial);
    assert.equal(third.lineage, original.serial);
    assert.notEqual(third.spkiSha256, first.spkiSha256);
    assert.deepEqual(
      (await ca.store.listLineage(original.serial)).map((c) => c.serial),
      [original.serial, same.serial, rekeyed.serial],
    );
  });

  it('keyCompromise of the original reaches every live certificate of its lineage and of its key, and blocks the key', async () => {
    const key = makeCsr(['k1.internal']);
    const original = await sign('k1.internal', key);
    ca.clock.advance(HOUR);
    const renewed = await renew(original);
    const rekeyed = [await renew(renewed, makeCsr([]))];
    for (let i = 0; i < 2; i++) rekeyed.push(await renew(rekeyed.at(-1)!, makeCsr([])));
    // Another lineage on the same key (a second token for the same CSR key), renewed into a new key.
    const sameKey = await sign('k1.internal', key);
    const sameKeyChild = await renew(sameKey, makeCsr([]));
    // An unrelated certificate stays good.
    const bystander = await sign('k1.internal');
    const reached = [renewed, ...rekeyed, sameKey, sameKeyChild].map((c) => c.serial);
    for (const serial of [original.serial, ...reached])
      assert.equal(
        (await ocsp.respond(ocspRequest(issuerHashes(ca.issuer.certificate, 'sha1'), serial))).outcome,
        'good',
      );

    const result = await revoke({
      serial: original.serial,
      reason: 'keyCompromise',
      actor: 'test',
      requester: 't',
      keyProven: true,
    });
    assert.equal(result.alreadyRevoked, false);
    assert.equal(result.keyBlocked, true);
    assert.deepEqual([...result.also].sort(), [...reached].sort());
    assert.deepEqual(
      [...notified].sort(),
      [original.serial, ...reached].sort(),
      'OCSP and the CRL hear of every certificate reached',
    );
    for (const serial of [original.serial, ...reached]) {
      assert.equal((await revocation(serial))?.reason, 'keyCompromise', serial);
      const answer = await ocsp.respond(ocspRequest(issuerHashes(ca.issuer.certificate, 'sha1'), serial));
      assert.equal(answer.outcome, 'revoked', serial);
      assert.equal(answer.hit, true, 'the cached answer was re-signed by the revocation');
    }
    assert.equal(await revocation(bystander.serial), null);
    const audits = (await ca.store.listAudit({ action: 'revoke' })).filter((e) =>
      [original.serial, ...reached].includes(e.serial ?? ''),
    );
    assert.equal(audits.length, reached.length + 1, 'one audit entry per certificate revoked');
    assert.ok(
      audits.filter((e) => e.serial !== original.serial).every((e) => e.detail.reachedFrom === original.serial),
    );
    assert.equal((await ca.store.getBlockedKey(keyDigest(key.publicKey.keyObject)))?.serial, original.serial);

    // None of them renews, and the key gets no certificate through any door.
    for (const c of [renewed, rekeyed.at(-1)!, sameKeyChild])
      await rejectsWith(renew(c), 'certificateRevoked', 'keyCompromise');
    const token = await mint(ops, { subject: 'k1.internal', now: ca.clock.now() });
    await unchanged(ca, () =>
      rejectsWith(
        ca.authority.sign({ csr: key.pem, token, audiences: [AUD], requester: 't' }),
        'keyBlocked',
        'keyCompromise',
      ),
    );
    // The refusal left the token unspent: it still works with another key.
    await ca.authority.sign({ csr: makeCsr(['k1.internal']).pem, token, audiences: [AUD], requester: 't' });
    await rejectsWith(byOrder('k1.internal', key), 'keyBlocked', 'blocked');
    await rejectsWith(
      ca.authority.issueServerCertificate({ publicKey: key.publicKey, names: ['ca.internal'], lifetimeMs: HOUR }),
      'keyBlocked',
      'blocked',
    );
    await rejectsWith(renew(bystander, key), 'keyBlocked', 'blocked');
  });

  it('keyCompromise from a revoker who did not prove it holds the key reaches the lineage only, and blocks nothing', async () => {
    const key = makeCsr(['np.internal']);
    const original = await sign('np.internal', key);
    ca.clock.advance(HOUR);
    const child = await renew(original, makeCsr([]));
    // Someone else's certificate for the same public key (a CSR is no secret).
    const other = await sign('np.internal', key);
    const token = await mint(ops, { subject: original.serial, sans: [original.serial], now: ca.clock.now() });
    const auth = await ca.authority.authorizeRevocation({
      serial: original.serial,
      token,
      clientCertificate: null,
      audiences: [AUD],
    });
    assert.equal(auth.keyProven, false);
    const result = await revoke({
      serial: original.serial,
      reason: 'keyCompromise',
      actor: auth.actor,
      requester: 't',
      tokenUse: auth.tokenUse!,
      keyProven: auth.keyProven,
    });
    assert.deepEqual(result.also, [child.serial]);
    assert.equal(result.keyBlocked, false);
    assert.equal(await revocation(other.serial), null);
    assert.equal(await ca.store.getBlockedKey(keyDigest(key.publicKey.keyObject)), null);
    // The certificate itself over mutual TLS proves the key: then the key's other certificates follow.
    const self = await ca.authority.authorizeRevocation({
      serial: other.serial,
      token: undefined,
      clientCertificate: other.der,
      audiences: [AUD],
    });
    assert.equal(self.keyProven, true);
    assert.equal(
      (
        await revoke({
          serial: other.serial,
          reason: 'keyCompromise',
          actor: self.actor,
          requester: 't',
          keyProven: self.keyProven,
        })
      ).keyBlocked,
      true,
    );
  });

  it('leaves expired lineage members alone: nothing to revoke there', async () => {
    const original = await ca.authority.sign({
      csr: makeCsr(['e1.internal']).pem,
      token: await mint(ops, { subject: 'e1.internal', now: ca.clock.now() }),
      notAfter: '1h',
      audiences: [AUD],
      requester: 't',
    });
    ca.clock.advance(30 * 60_000);
    const renewed = await renew(original, makeCsr([]));
    ca.clock.advance(HOUR);
    const result = await revoke({
      serial: renewed.serial,
      reason: 'keyCompromise',
      actor: 'test',
      requester: 't',
      keyProven: true,
    });
    assert.deepEqual(result.also, []);
    assert.equal(await revocation(original.serial), null);
  });

  it('a revocation racing a renewal: the renewal of a revoked parent is refused in the same transaction, and one reserved meanwhile is reached', async () => {
    const original = await sign('race.internal');
    await revoke({ serial: original.serial, reason: 'superseded', actor: 'test', requester: 't' });
    const inFlight = {
      serial: 'abc123',
      issuerId: ca.issuer.id,
      subject: 'race.internal',
      names: ['dns:race.internal'],
      notBefore: T0,
      notAfter: at(T0, DAY),
      provisioner: 'ops',
      requester: 't',
      createdAt: T0,
      renewedFrom: original.serial,
      lineage: original.serial,
      lineageStartedAt: T0,
    };
    await assert.rejects(
      ca.store.reserveCertificate({
        certificate: inFlight,
        audit: { at: T0, action: 'renew', actor: 't', serial: 'abc123', detail: {} },
      }),
      (e) => e instanceof StoreError && e.code === 'revoked',
    );
    const other = await sign('race2.internal');
    await ca.store.reserveCertificate({
      certificate: { ...inFlight, serial: 'abc124', renewedFrom: other.serial, lineage: other.serial },
      audit: { at: T0, action: 'renew', actor: 't', serial: 'abc124', detail: {} },
    });
    const result = await revoke({
      serial: other.serial,
      reason: 'cessationOfOperation',
      actor: 'test',
      requester: 't',
    });
    assert.deepEqual(result.also, ['abc124'], 'a certificate being signed now is revoked before anyone sees it');
  });

  it('superseded revokes only that certificate (its renewal is the one superseding it); cessationOfOperation reaches the lineage', async () => {
    const original = await sign('s1.internal');
    ca.clock.advance(HOUR);
    const renewed = await renew(original);
    const superseded = await revoke({ serial: original.serial, reason: 'superseded', actor: 'test', requester: 't' });
    assert.deepEqual(superseded.also, []);
    assert.equal(await revocation(renewed.serial), null);
    const next = await renew(renewed);
    const unspecified = await revoke({ serial: renewed.serial, reason: 'unspecified', actor: 'test', requester: 't' });
    assert.deepEqual(unspecified.also, [], 'revoking an old certificate after renewing keeps the current one');
    const ceased = await revoke({
      serial: renewed.serial,
      reason: 'cessationOfOperation',
      actor: 'test',
      requester: 't',
    });
    assert.equal(ceased.alreadyRevoked, true, 'only keyCompromise replaces a reason');
    const stop = await revoke({ serial: next.serial, reason: 'cessationOfOperation', actor: 'test', requester: 't' });
    assert.deepEqual(stop.also, [], 'the earlier ones are revoked already');
    const other = await sign('s2.internal');
    ca.clock.advance(HOUR);
    const otherNext = await renew(other, makeCsr([]));
    assert.deepEqual(
      (await revoke({ serial: other.serial, reason: 'privilegeWithdrawn', actor: 'test', requester: 't' })).also,
      [otherNext.serial],
    );
    assert.equal(
      await ca.store.getBlockedKey((await row(other.serial)).spkiSha256!),
      null,
      'only keyCompromise blocks a key',
    );
  });

  it('keyCompromise replaces an earlier reason, keeps the first time, and OCSP and the CRL then say keyCompromise', async () => {
    const cert = await sign('u1.internal');
    ca.clock.advance(HOUR);
    const child = await renew(cert, makeCsr([]));
    const first = await revoke({ serial: cert.serial, reason: 'unspecified', actor: 'test', requester: 't' });
    const request = ocspRequest(issuerHashes(ca.issuer.certificate, 'sha1'), cert.serial);
    const before = await ocsp.respond(request);
    assert.equal(before.outcome, 'revoked');
    const crls = createCrlPublisher({
      store: ca.store,
      issuer: ca.issuer,
      clock: ca.clock,
      logger: ca.logger,
      distributionPoint: 'http://status.test/crl',
      validityMs: DAY,
      refreshAfterMs: 8 * HOUR,
      rebuildDelayMs: 20,
    });
    await crls.start();
    assert.equal(parseCrl(crls.current()!.der).entries.find((e) => e.serial === cert.serial)?.reason, 'unspecified');

    ca.clock.advance(HOUR);
    notified = [];
    const upgraded = await revoke({
      serial: cert.serial,
      reason: 'keyCompromise',
      actor: 'test',
      requester: 't',
      keyProven: true,
    });
    assert.equal(upgraded.alreadyRevoked, false);
    assert.equal(upgraded.previousReason, 'unspecified');
    assert.equal(upgraded.reason, 'keyCompromise');
    assert.equal(
      upgraded.revokedAt.toISOString(),
      first.revokedAt.toISOString(),
      'the time of the first revocation stands',
    );
    assert.deepEqual(upgraded.also, [child.serial], 'and it reaches the lineage as keyCompromise does');
    assert.ok(notified.includes(cert.serial), 'the responder and the publisher hear of the new reason');
    const afterAnswer = await ocsp.respond(request);
    assert.equal(afterAnswer.hit, true);
    assert.ok(!Buffer.from(afterAnswer.body).equals(before.body), 'the pre-signed answer was replaced');
    // RevokedInfo's revocationReason [0] EXPLICIT CRLReason keyCompromise (1), RFC 6960 §4.2.1.
    assert.ok(Buffer.from(afterAnswer.body).includes(Buffer.from('a0030a0101', 'hex')));
    const entry = parseCrl((await crls.rebuild()).der).entries.find((e) => e.serial === cert.serial);
    assert.equal(entry?.reason, 'keyCompromise');
    assert.equal(entry?.revokedAt.toISOString(), first.revokedAt.toISOString());
    // A server watching for other processes' revocations sees the change as a new row.
    const since = await ca.store.revocations.changes(null);
    assert.equal(
      since.at(-1)?.serial !== undefined && [cert.serial, child.serial].includes(since.at(-1)!.serial),
      true,
    );
    assert.equal(
      (await revoke({ serial: cert.serial, reason: 'keyCompromise', actor: 'test', requester: 't' })).alreadyRevoked,
      true,
    );
    crls.stop();
  });

  it('a lineage renews until maxLineageAge after its credential, then the holder authenticates again', async () => {
    const short = await addProvisioner(ca.store, 'short', { maxLifetime: '1d', maxLineageAge: '2d' });
    let cert = await sign('a1.internal', makeCsr(['a1.internal']), short);
    for (const hours of [20, 20]) {
      ca.clock.advance(hours * HOUR);
      cert = await renew(cert);
    }
    ca.clock.set(at(T0, 2 * DAY + 1000));
    await unchanged(ca, () => rejectsWith(renew(cert), 'lineageExpired', 'maxLineageAge'));
    // A fresh token starts a new lineage.
    const fresh = await sign('a1.internal', makeCsr(['a1.internal']), short);
    assert.equal((await row(fresh.serial)).lineageStartedAt.toISOString(), ca.clock.now().toISOString());
    await renew(fresh);
  });

  it('defaults maxLineageAge to 30 days', async () => {
    let cert = await sign('a2.internal');
    for (let day = 1; day <= 30; day++) {
      ca.clock.set(at(T0, day * DAY - HOUR));
      cert = await renew(cert);
    }
    ca.clock.set(at(T0, 30 * DAY + 1000));
    await rejectsWith(renew(cert), 'lineageExpired', '30 d');
  });

  it('an ACME certificate does not renew over mutual TLS unless its provisioner allows it', async () => {
    const key = makeCsr(['acme.internal']);
    const cert = await byOrder('acme.internal', key);
    await unchanged(ca, () => rejectsWith(renew(cert), 'renewalNotAllowed', 'over ACME'));
    const allowed = await byOrder('acme.internal', makeCsr(['acme.internal']), 'acme-mtls');
    await renew(allowed);
    const jwkNoMtls = await addProvisioner(ca.store, 'no-mtls', { mtlsRenewal: false });
    await rejectsWith(
      renew(await sign('x.internal', makeCsr(['x.internal']), jwkNoMtls)),
      'renewalNotAllowed',
      'mutual TLS',
    );
  });
});

describe('lineage policy keys', () => {
  it('maxLineageAge defaults to 30 days, never below maxLifetime unless set; mtlsRenewal is a boolean whose default the provisioner type decides', async () => {
    const { mtlsRenewalAllowed, parsePolicy } = await import('./policy.js');
    assert.equal(parsePolicy({}).maxLineageAgeMs, 30 * DAY);
    assert.equal(
      parsePolicy({ maxLifetime: '90d', defaultLifetime: '24h' }).maxLineageAgeMs,
      90 * DAY,
      'a long maxLifetime raises the default',
    );
    assert.equal(parsePolicy({ maxLifetime: '1d', maxLineageAge: '2d' }).maxLineageAgeMs, 2 * DAY);
    assert.throws(
      () => parsePolicy({ maxLifetime: '7d', maxLineageAge: '2d' }),
      (e: Error & { code?: string }) => e.code === 'badPolicy' && /maxLineageAge/.test(e.message),
    );
    assert.throws(
      () => parsePolicy({ mtlsRenewal: 'yes' }),
      (e: Error & { code?: string }) => e.code === 'badPolicy' && /mtlsRenewal/.test(e.message),
    );
    assert.equal(mtlsRenewalAllowed(parsePolicy({}), 'jwk'), true);
    assert.equal(mtlsRenewalAllowed(parsePolicy({}), 'acme'), false);
    assert.equal(mtlsRenewalAllowed(parsePolicy({ mtlsRenewal: true }), 'acme'), true);
    assert.equal(mtlsRenewalAllowed(parsePolicy({ mtlsRenewal: false }), 'jwk'), false);
  });
});
