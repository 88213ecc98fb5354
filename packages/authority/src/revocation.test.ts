import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, beforeEach, describe, it } from 'node:test';
import {
  buildCrl,
  createSigner,
  encodePem,
  generateKeyPair,
  isCrlSignedBy,
  issuerHashes,
  parseCrl,
  type OcspHash,
} from '@shortleaf/pki';
import { createCrlPublisher } from './crl-publisher.js';
import { createOcspResponder, type OcspResponderService } from './ocsp-responder.js';
import { createOcspSignerManager } from './ocsp-signers.js';
import { createRevoker, type Revoke } from './revoke.js';
import { importRootCrl, rootCrlWarnings } from './root-crl.js';
import {
  AUD,
  DAY,
  HOUR,
  T0,
  addProvisioner,
  at,
  createTestCa,
  makeCsr,
  makeRoot,
  mint,
  ocspRequest,
  rejectsWith,
  type TestCa,
  type TestProvisioner,
} from './test-fixtures.js';

describe('revocation in the authority', () => {
  let ca: TestCa;
  let ops: TestProvisioner;
  let revoke: Revoke;
  let revoked: string[];
  let ocsp: OcspResponderService;
  let stopSigners: () => void;

  const issue = async (name: string, notAfter = '24h') =>
    ca.authority.sign({
      csr: makeCsr([name]).pem,
      token: await mint(ops, { subject: name, now: ca.clock.now() }),
      notAfter,
      audiences: [AUD],
      requester: 't',
    });
  const publisher = (rebuildDelayMs = 20) =>
    createCrlPublisher({
      store: ca.store,
      issuer: ca.issuer,
      clock: ca.clock,
      logger: ca.logger,
      distributionPoint: 'http://status.test/crl',
      validityMs: DAY,
      refreshAfterMs: 8 * HOUR,
      rebuildDelayMs,
    });
  const leafRequest = (serial: string, hash: OcspHash = 'sha1', nonce?: Buffer) =>
    ocspRequest(issuerHashes(ca.issuer.certificate, hash), serial, hash, nonce);

  before(async () => {
    ca = await createTestCa();
    ops = await addProvisioner(ca.store, 'ops', {});
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
      maxCacheEntries: 3,
    });
    revoked = [];
    revoke = createRevoker({
      store: ca.store,
      clock: ca.clock,
      logger: ca.logger,
      onRevoked: async (serial) => {
        revoked.push(serial);
        await ocsp.resign(serial);
      },
    });
  });
  after(async () => {
    stopSigners();
    await ca.close();
  });
  beforeEach(() => ca.clock.set(T0));

  describe('revoke', () => {
    it('records the first revocation and keeps its time and reason when revoked again', async () => {
      const cert = await issue('r1.internal');
      const first = await revoke({ serial: cert.serial, reason: 'keyCompromise', actor: 'test', requester: 't' });
      assert.equal(first.alreadyRevoked, false);
      assert.equal(first.reason, 'keyCompromise');
      ca.clock.set(at(T0, HOUR));
      const second = await revoke({
        serial: cert.serial.toUpperCase(),
        reason: 'superseded',
        actor: 'test',
        requester: 't',
      });
      assert.equal(second.alreadyRevoked, true);
      assert.equal(second.reason, 'keyCompromise');
      assert.equal(second.revokedAt.toISOString(), first.revokedAt.toISOString());
      assert.deepEqual(
        revoked.filter((s) => s === cert.serial),
        [cert.serial],
        'listeners hear of a revocation once',
      );
      assert.equal(
        (await ca.store.listAudit()).filter((e) => e.action === 'revoke' && e.serial === cert.serial).length,
        1,
      );
    });

    it('refuses an unknown serial, a bad serial and removeFromCRL, writing nothing', async () => {
      const before = await ca.store.counts();
      await rejectsWith(
        revoke({ serial: 'abcdef0123', reason: 'keyCompromise', actor: 't', requester: 't' }),
        'certificateNotFound',
        'abcdef0123',
      );
      await rejectsWith(
        revoke({ serial: 'not hex', reason: 'keyCompromise', actor: 't', requester: 't' }),
        'certificateNotFound',
        'hexadecimal',
      );
      const cert = await issue('r2.internal');
      const afterIssue = await ca.store.counts();
      await rejectsWith(
        revoke({ serial: cert.serial, reason: 'removeFromCRL', actor: 't', requester: 't' }),
        'badRevocationReason',
        'removeFromCRL',
      );
      await rejectsWith(
        revoke({ serial: cert.serial, reason: 42, actor: 't', requester: 't' }),
        'badRevocationReason',
        'string',
      );
      assert.deepEqual(await ca.store.counts(), afterIssue);
      assert.equal(before.revocations, afterIssue.revocations);
    });

    it('makes a revoked certificate unable to renew', async () => {
      const cert = await issue('r3.internal');
      await revoke({ serial: cert.serial, reason: 'cessationOfOperation', actor: 't', requester: 't' });
      await rejectsWith(
        ca.authority.renew({ clientCertificate: cert.der, requester: 't' }),
        'certificateRevoked',
        'cessationOfOperation',
      );
    });
  });

  describe('who may revoke', () => {
    it('allows the certificate itself, or a token from its provisioner naming its serial', async () => {
      const cert = await issue('w1.internal');
      const other = await issue('w2.internal');
      assert.equal(
        (
          await ca.authority.authorizeRevocation({
            serial: cert.serial,
            token: undefined,
            clientCertificate: cert.der,
            audiences: [AUD],
          })
        ).actor,
        `certificate:${cert.serial}`,
      );
      await rejectsWith(
        ca.authority.authorizeRevocation({
          serial: cert.serial,
          token: undefined,
          clientCertificate: other.der,
          audiences: [AUD],
        }),
        'notAuthorized',
        'only itself',
      );
      await rejectsWith(
        ca.authority.authorizeRevocation({
          serial: cert.serial,
          token: undefined,
          clientCertificate: null,
          audiences: [AUD],
        }),
        'clientCertificateRequired',
        'token',
      );
      const ok = await ca.authority.authorizeRevocation({
        serial: cert.serial,
        token: await mint(ops, { subject: cert.serial }),
        clientCertificate: null,
        audiences: [AUD],
      });
      assert.equal(ok.actor, 'provisioner:ops');
      assert.equal(ok.tokenUse?.provisioner, 'ops');
      await rejectsWith(
        ca.authority.authorizeRevocation({
          serial: cert.serial,
          token: await mint(ops, { subject: other.serial }),
          clientCertificate: null,
          audiences: [AUD],
        }),
        'tokenMalformed',
        'serial',
      );
      const stranger = await addProvisioner(ca.store, 'stranger', {});
      await rejectsWith(
        ca.authority.authorizeRevocation({
          serial: cert.serial,
          token: await mint(stranger, { subject: cert.serial }),
          clientCertificate: null,
          audiences: [AUD],
        }),
        'notAuthorized',
        'did not issue',
      );
    });

    it('spends a revoke token once', async () => {
      const cert = await issue('w3.internal');
      const token = await mint(ops, { subject: cert.serial });
      const auth = await ca.authority.authorizeRevocation({
        serial: cert.serial,
        token,
        clientCertificate: null,
        audiences: [AUD],
      });
      await revoke({
        serial: cert.serial,
        reason: 'keyCompromise',
        actor: auth.actor,
        requester: 't',
        tokenUse: auth.tokenUse!,
      });
      await rejectsWith(
        revoke({
          serial: cert.serial,
          reason: 'keyCompromise',
          actor: auth.actor,
          requester: 't',
          tokenUse: auth.tokenUse!,
        }),
        'tokenReplayed',
        'already been used',
      );
    });
  });

  describe('CRL publisher', () => {
    it('publishes signed CRLs whose numbers only grow, listing revocations with their reason', async () => {
      const crls = publisher();
      await crls.start();
      const first = crls.current()!;
      const cert = await issue('c1.internal');
      await revoke({ serial: cert.serial, reason: 'affiliationChanged', actor: 't', requester: 't' });
      const second = await crls.rebuild();
      assert.ok(second.number > first.number);
      const parsed = parseCrl(second.der);
      assert.ok(isCrlSignedBy(parsed, ca.issuer.certificate));
      assert.equal(parsed.number, second.number);
      assert.equal(parsed.nextUpdate?.getTime(), at(T0, DAY).getTime());
      assert.deepEqual(parsed.entries.find((e) => e.serial === cert.serial)?.reason, 'affiliationChanged');
      // A second publisher on the same database (a restart) continues the numbering.
      const restarted = publisher();
      await restarted.start();
      const third = await restarted.rebuild();
      assert.ok(third.number > second.number);
      crls.stop();
      restarted.stop();
    });

    it('keeps an entry until one CRL issued after the certificate expired has carried it', async () => {
      const crls = publisher();
      await crls.start();
      const cert = await issue('c2.internal', '1h');
      await revoke({ serial: cert.serial, reason: 'keyCompromise', actor: 't', requester: 't' });
      const listed = async () => parseCrl((await crls.rebuild()).der).entries.some((e) => e.serial === cert.serial);
      assert.ok(await listed(), 'listed while valid');
      ca.clock.set(at(T0, 2 * HOUR)); // expired now
      assert.ok(await listed(), 'still listed on the first CRL issued after expiry');
      ca.clock.set(at(T0, 3 * HOUR));
      assert.ok(!(await listed()), 'gone from the next one');
      crls.stop();
    });

    it('coalesces a burst of revocations into one rebuild, soon after', async () => {
      const crls = publisher(50);
      await crls.start();
      const before = ca.logger.lines.filter((l) => l.event === 'crl_published').length;
      const start = crls.current()!.number;
      for (let i = 0; i < 5; i++) crls.requestRebuild();
      const deadline = Date.now() + 5_000;
      while (crls.current()!.number === start && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(crls.current()!.number, start + 1n, 'one rebuild for the burst');
      assert.equal(ca.logger.lines.filter((l) => l.event === 'crl_published').length, before + 1);
      crls.stop();
    });
  });

  describe('OCSP responder', () => {
    it('signs once, serves the same bytes from the cache, and re-signs at once on revocation', async () => {
      const cert = await issue('o1.internal');
      const first = await ocsp.respond(leafRequest(cert.serial));
      assert.equal(first.outcome, 'good');
      assert.equal(first.hit, false);
      const second = await ocsp.respond(leafRequest(cert.serial));
      assert.equal(second.hit, true);
      assert.ok(Buffer.from(second.body).equals(first.body));
      await revoke({ serial: cert.serial, reason: 'keyCompromise', actor: 't', requester: 't' });
      const third = await ocsp.respond(leafRequest(cert.serial));
      assert.equal(third.outcome, 'revoked');
      assert.equal(third.hit, true, 'the revocation re-signed the cached response, so the request is a lookup');
    });

    it('answers SHA-1 and SHA-256 CertIDs separately, unknown for a serial never issued, unauthorized for another issuer', async () => {
      const cert = await issue('o2.internal');
      assert.equal((await ocsp.respond(leafRequest(cert.serial, 'sha256'))).outcome, 'good');
      const unknown = await ocsp.respond(leafRequest('1234abcd'));
      assert.equal(unknown.outcome, 'unknown');
      assert.equal((await ocsp.respond(leafRequest('1234abcd'))).hit, false, 'unknown serials are not cached');
      const stranger = makeRoot({ commonName: 'Stranger' });
      assert.equal(
        (await ocsp.respond(ocspRequest(issuerHashes(stranger.certificate, 'sha1'), cert.serial))).outcome,
        'unauthorized',
      );
      assert.equal((await ocsp.respond(new Uint8Array([0x30, 0x03, 0x02, 0x01]))).outcome, 'malformedRequest');
    });

    it('never caches a response with a nonce, and re-signs once half the validity has passed', async () => {
      ocsp.clear();
      const cert = await issue('o3.internal');
      const withNonce = await ocsp.respond(leafRequest(cert.serial, 'sha1', randomBytes(16)));
      assert.equal(withNonce.cache, null);
      const plain = await ocsp.respond(leafRequest(cert.serial));
      assert.equal(plain.hit, false, 'the nonce response was not cached');
      ca.clock.set(at(T0, 5 * HOUR));
      assert.equal((await ocsp.respond(leafRequest(cert.serial))).hit, true);
      assert.equal(await ocsp.refresh(), 1, 'refresh re-signs what has used 40% of its validity');
      assert.equal(
        (await ocsp.respond(leafRequest(cert.serial))).cache?.thisUpdate.getTime(),
        at(T0, 5 * HOUR).getTime(),
      );
      ca.clock.set(at(T0, 12 * HOUR));
      assert.equal(
        (await ocsp.respond(leafRequest(cert.serial))).hit,
        false,
        'past half its validity a response is re-signed',
      );
    });

    it('answers repeated requests by their bytes alone, never with a response a revocation replaced', async () => {
      ocsp.clear();
      const cert = await issue('o5.internal');
      const request = leafRequest(cert.serial);
      assert.equal(ocsp.lookup(request), null, 'a request never seen needs the full path');
      const first = await ocsp.respond(request);
      assert.ok(Buffer.from(ocsp.lookup(request)!.body).equals(first.body));
      await revoke({ serial: cert.serial, reason: 'superseded', actor: 't', requester: 't' });
      assert.equal(
        ocsp.lookup(request)?.outcome,
        'revoked',
        'the re-signed response, found through the same request bytes',
      );
      ocsp.invalidate(cert.serial);
      assert.equal(ocsp.lookup(request), null);
      const withNonce = leafRequest(cert.serial, 'sha1', randomBytes(16));
      await ocsp.respond(withNonce);
      assert.equal(ocsp.lookup(withNonce), null, 'a nonce request is never answered from the cache');
      assert.equal(ocsp.lookup(leafRequest('1234abcd')), null);
    });

    it('never caches an answer whose status was read before the serial was invalidated', async () => {
      ocsp.clear();
      const cert = await issue('o6.internal');
      const request = leafRequest(cert.serial);
      const pending = ocsp.respond(request); // reads the status from the database asynchronously
      ocsp.invalidate(cert.serial); // what a revocation does meanwhile
      assert.equal((await pending).outcome, 'good', 'the request itself still gets the status it read');
      assert.equal(ocsp.lookup(request), null, 'but that answer must not be cached over the revocation');
      await ocsp.respond(request);
      assert.ok(ocsp.lookup(request) !== null, 'the next answer is cached again');
    });

    it('keeps at most maxCacheEntries responses', async () => {
      ocsp.clear();
      for (const name of ['e1', 'e2', 'e3', 'e4'])
        await ocsp.respond(leafRequest((await issue(`${name}.internal`)).serial));
      assert.equal(ocsp.stats().entries, 3);
    });
  });

  describe('root CRL', () => {
    const rootCrl = (
      signer: ReturnType<typeof createSigner>,
      subjectDer: Uint8Array,
      ski: Uint8Array,
      number: bigint,
      nextUpdate = at(T0, 90 * DAY),
    ) =>
      buildCrl({
        issuer: { subjectDer, subjectKeyIdentifier: ski, signer },
        number,
        thisUpdate: T0,
        nextUpdate,
        distributionPoint: null,
        entries: [],
      });

    it('imports only newer CRLs signed by one of our roots', async () => {
      const root = ca.root;
      const crl = (n: bigint) =>
        rootCrl(root.signer, root.certificate.subjectDer, root.certificate.subjectKeyIdentifier!, n);
      const { row } = await importRootCrl(ca.store, ca.clock, crl(5n));
      assert.equal(row.number, 5n);
      assert.equal(row.rootFingerprint, createHash('sha256').update(root.certificate.der).digest('hex'));
      await rejectsWith(importRootCrl(ca.store, ca.clock, crl(5n)), 'badCrl', 'not newer');
      await rejectsWith(importRootCrl(ca.store, ca.clock, encodePem('X509 CRL', crl(4n))), 'badCrl', 'not newer');
      const stranger = makeRoot({ commonName: 'Stranger' });
      await rejectsWith(
        importRootCrl(
          ca.store,
          ca.clock,
          rootCrl(stranger.signer, stranger.certificate.subjectDer, stranger.certificate.subjectKeyIdentifier!, 9n),
        ),
        'badCrl',
        'not signed by any root',
      );
      const forged = createSigner(generateKeyPair('EC-P384').privateKey);
      await rejectsWith(
        importRootCrl(
          ca.store,
          ca.clock,
          rootCrl(forged, root.certificate.subjectDer, root.certificate.subjectKeyIdentifier!, 10n),
        ),
        'badCrl',
        'not signed by any root',
      );
      await rejectsWith(importRootCrl(ca.store, ca.clock, new Uint8Array([1, 2, 3])), 'badCrl', 'not a CRL');
    });

    it('warns before the root CRL lapses, and when there is none', () => {
      const row = {
        rootFingerprint: 'x',
        number: 1n,
        thisUpdate: T0,
        nextUpdate: at(T0, 10 * DAY),
        der: new Uint8Array(),
        importedAt: T0,
      };
      assert.deepEqual(rootCrlWarnings(row, T0, 7 * DAY), []);
      assert.match(rootCrlWarnings(row, at(T0, 4 * DAY), 7 * DAY)[0]!, /expires at .* \(in 144 h\)/);
      assert.match(rootCrlWarnings(row, at(T0, 11 * DAY), 7 * DAY)[0]!, /expired at/);
      assert.match(rootCrlWarnings(null, T0, 7 * DAY)[0]!, /no root CRL/);
    });
  });
});

describe('intermediate warnings', () => {
  it('warns when the root CRL revokes the active intermediate, and before it expires', async () => {
    const { issuerWarnings } = await import('./root-crl.js');
    const root = makeRoot({ commonName: 'Warn Root' });
    const intermediate = { serial: 'abc123', notAfter: at(T0, 100 * DAY) };
    const crl = (entries: Array<{ serial: string; revokedAt: Date; reason: 'cACompromise' }>) =>
      parseCrl(
        buildCrl({
          issuer: {
            subjectDer: root.certificate.subjectDer,
            subjectKeyIdentifier: root.certificate.subjectKeyIdentifier!,
            signer: root.signer,
          },
          number: 1n,
          thisUpdate: T0,
          nextUpdate: at(T0, 90 * DAY),
          distributionPoint: null,
          entries,
        }),
      );
    assert.deepEqual(issuerWarnings(intermediate, crl([]), T0, 30 * DAY), []);
    assert.deepEqual(issuerWarnings(intermediate, null, T0, 30 * DAY), []);
    const revoked = issuerWarnings(
      intermediate,
      crl([{ serial: 'abc123', revokedAt: T0, reason: 'cACompromise' }]),
      T0,
      30 * DAY,
    );
    assert.equal(revoked.length, 1);
    assert.match(revoked[0]!, /root revoked the active intermediate \(cACompromise\)/);
    assert.match(
      issuerWarnings(intermediate, null, at(T0, 80 * DAY), 30 * DAY)[0]!,
      /expires at .*import a new intermediate/,
    );
  });
});
