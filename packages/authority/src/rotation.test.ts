// Intermediate rotation inside the authority: several intermediates in one database, their
// states, activation and its refusals, and an authority that switches issuer while it runs.
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { encodePem, issuerHashes, parseCertificate, parseCsr, readCertificate } from '@shortleaf/pki';
import { createOcspResponder } from './ocsp-responder.js';
import { createOcspRouter } from './ocsp-router.js';
import { createOcspSignerManager } from './ocsp-signers.js';
import { createRevoker } from './revoke.js';
import { createAuthority } from './authority.js';
import {
  activateIntermediate,
  createIntermediateKey,
  importIntermediate,
  issuerStatuses,
  loadIssuer,
  type LoadedIssuer,
} from './issuer.js';
import {
  AUD,
  DAY,
  HOUR,
  URLS,
  addProvisioner,
  at,
  createTestCa,
  makeCsr,
  makeRoot,
  mint,
  ocspRequest,
  rejectsWith,
  signIntermediate,
  type TestCa,
  type TestProvisioner,
} from './test-fixtures.js';

/** Makes, signs and imports another intermediate under `root` (the test CA's unless given). */
async function addIntermediate(
  ca: TestCa,
  name: string,
  opts: { validityMs?: number; root?: ReturnType<typeof makeRoot> } = {},
): Promise<Uint8Array> {
  const csr = await createIntermediateKey(ca.store, ca.sealer, ca.clock, {
    id: `int-${name}`,
    name,
    commonName: `Test Intermediate ${name}`,
  });
  const root = opts.root ?? ca.root;
  const der = signIntermediate(root, parseCsr(csr).publicKey, {
    now: ca.clock.now(),
    commonName: `Test Intermediate ${name}`,
    ...(opts.validityMs === undefined ? {} : { validityMs: opts.validityMs }),
  });
  const imported = await importIntermediate(ca.store, ca.clock, {
    name,
    certificatePem: encodePem('CERTIFICATE', der),
    rootPem: root.pem,
  });
  assert.equal(imported.activated, false, 'an import never replaces the active intermediate');
  return der;
}

const statesOf = async (ca: TestCa) =>
  Object.fromEntries((await issuerStatuses(ca.store, ca.clock.now())).map((s) => [s.row.name, s.state]));

describe('intermediate rotation', () => {
  let ca: TestCa;
  let p: TestProvisioner;
  before(async () => {
    ca = await createTestCa();
    p = await addProvisioner(ca.store, 'services', {});
  });
  after(() => ca.close());

  const sign = async (subject: string) => {
    const csr = makeCsr([subject]);
    return {
      csr,
      issued: await ca.authority.sign({
        csr: csr.pem,
        token: await mint(p, { subject, now: ca.clock.now() }),
        audiences: [AUD],
        requester: 'unit-test',
      }),
    };
  };

  it('states: an imported intermediate is staged, one without a certificate pending, and activation retires the old one', async () => {
    await sign('before.internal');
    await addIntermediate(ca, 'next');
    await createIntermediateKey(ca.store, ca.sealer, ca.clock, {
      id: 'int-third',
      name: 'third',
      commonName: 'Test Intermediate third',
    });
    assert.deepEqual(await statesOf(ca), { primary: 'active', next: 'staged', third: 'pending' });

    const result = await activateIntermediate(ca.store, ca.clock, 'next');
    assert.equal(result.previous, 'primary');
    assert.deepEqual(await statesOf(ca), { primary: 'retired', next: 'active', third: 'pending' });
  });

  it('a retired intermediate leaves service when the last certificate it issued expires, not before', async () => {
    const primary = (await issuerStatuses(ca.store, ca.clock.now())).find((s) => s.row.name === 'primary')!;
    assert.ok(primary.lastExpiry !== null);
    const justBefore = new Date(primary.lastExpiry.getTime() - 1000);
    assert.equal((await issuerStatuses(ca.store, justBefore)).find((s) => s.row.name === 'primary')!.state, 'retired');
    assert.equal(
      (await issuerStatuses(ca.store, primary.lastExpiry)).find((s) => s.row.name === 'primary')!.state,
      'ended',
    );
  });

  it('refuses to activate an unknown intermediate, one without a certificate, and an expired one', async () => {
    await rejectsWith(activateIntermediate(ca.store, ca.clock, 'nope'), 'issuerMismatch', 'no intermediate named nope');
    await rejectsWith(activateIntermediate(ca.store, ca.clock, 'third'), 'issuerUnavailable', 'no certificate yet');
    await addIntermediate(ca, 'brief', { validityMs: HOUR });
    const later = { now: () => at(ca.clock.now(), 2 * HOUR) };
    await rejectsWith(activateIntermediate(ca.store, later, 'brief'), 'issuerUnavailable', 'expired');
    assert.equal((await ca.store.getActiveIssuer())?.name, 'next', 'a refused activation changes nothing');
  });

  it('refuses to import an intermediate that does not chain to the given root', async () => {
    const stranger = makeRoot({ commonName: 'Stranger Root' });
    const csr = await createIntermediateKey(ca.store, ca.sealer, ca.clock, {
      id: 'int-odd',
      name: 'odd',
      commonName: 'Odd',
    });
    const der = signIntermediate(stranger, parseCsr(csr).publicKey, { now: ca.clock.now() });
    // The --root given at import is what it must chain to; a certificate from another root is refused.
    await rejectsWith(
      importIntermediate(ca.store, ca.clock, {
        name: 'odd',
        certificatePem: encodePem('CERTIFICATE', der),
        rootPem: ca.root.pem,
      }),
      'issuerMismatch',
      'does not chain',
    );
  });

  it('the authority switches issuer while it runs: new leaves, renewals and their chains come from the new one', async () => {
    const urls = (i: LoadedIssuer) => ({
      ...URLS,
      crl: `http://status.test/crl/${i.name}`,
      caIssuers: `http://status.test/intermediate/${i.name}.crt`,
    });
    const authority = createAuthority({
      store: ca.store,
      issuer: ca.issuer,
      clock: ca.clock,
      random: (n) => new Uint8Array(randomBytes(n)),
      urls,
      logger: ca.logger,
    });
    const csr = makeCsr(['switch.internal']);
    const old = await authority.sign({
      csr: csr.pem,
      token: await mint(p, { subject: 'switch.internal', now: ca.clock.now() }),
      audiences: [AUD],
      requester: 'unit-test',
    });
    assert.ok(
      Buffer.from(parseCertificate(old.der).issuerDer).equals(
        readCertificate(encodePem('CERTIFICATE', ca.intermediateDer)).subjectDer,
      ),
      'issued by primary before the switch',
    );
    assert.ok(Buffer.from(old.der).includes('http://status.test/crl/primary'), "the leaf names its own issuer's CRL");

    const next = await loadIssuer(ca.store, ca.sealer, (await ca.store.getIssuerByName('next'))!);
    authority.activate(next);
    assert.equal(authority.issuer.name, 'next');
    assert.deepEqual(authority.chain, [next.certificate.der]);

    const fresh = await authority.sign({
      csr: makeCsr(['after.internal']).pem,
      token: await mint(p, { subject: 'after.internal', now: ca.clock.now() }),
      audiences: [AUD],
      requester: 'unit-test',
    });
    assert.ok(
      Buffer.from(parseCertificate(fresh.der).issuerDer).equals(next.certificate.subjectDer),
      'issued by next after the switch',
    );
    assert.deepEqual(fresh.chain, [next.certificate.der], 'the chain returned is the issuing intermediate');
    assert.ok(Buffer.from(fresh.der).includes('http://status.test/crl/next'));
    assert.ok(Buffer.from(fresh.der).includes('http://status.test/intermediate/next.crt'));

    // A certificate from the retired intermediate renews into one from the active intermediate.
    const renewed = await authority.renew({ clientCertificate: old.der, requester: 'unit-test' });
    assert.ok(Buffer.from(parseCertificate(renewed.der).issuerDer).equals(next.certificate.subjectDer));
    assert.deepEqual(renewed.chain, [next.certificate.der]);

    // The chain of a recorded certificate follows its issuer, whichever is active now.
    const oldRow = (await ca.store.getCertificate(old.serial))!;
    assert.deepEqual(
      (await authority.chainFor(oldRow.issuerId)).map((d) => Buffer.from(d).toString('hex')),
      [Buffer.from(ca.intermediateDer).toString('hex')],
    );
    await rejectsWith(authority.chainFor('no-such-issuer'), 'internal', 'missing');

    // A retired intermediate still signs its own OCSP responder certificates.
    const ocsp = await authority.issueOcspSignerCertificate({
      publicKey: makeCsr([]).publicKey,
      lifetimeMs: DAY,
      issuer: ca.issuer,
    });
    assert.ok(Buffer.from(parseCertificate(ocsp.der).issuerDer).equals(ca.issuer.certificate.subjectDer));
  });

  it('one OCSP endpoint answers for both intermediates, picked by the CertID; a revocation under the retired one shows', async () => {
    const primary = ca.issuer;
    const next = await loadIssuer(ca.store, ca.sealer, (await ca.store.getIssuerByName('next'))!);
    const stops: Array<() => void> = [];
    const responderFor = async (issuer: LoadedIssuer) => {
      const signers = createOcspSignerManager({
        authority: ca.authority,
        issuer,
        lifetimeMs: 3 * DAY,
        logger: ca.logger,
        onRotate: () => undefined,
      });
      await signers.start();
      stops.push(() => signers.stop());
      return createOcspResponder({
        store: ca.store,
        issuer,
        intermediateResponder: () => signers.current(),
        rootResponder: null,
        clock: ca.clock,
        logger: ca.logger,
        validityMs: 12 * HOUR,
        maxCacheEntries: 100,
      });
    };
    try {
      const [forNext, forPrimary] = [await responderFor(next), await responderFor(primary)];
      const router = createOcspRouter(() => [forNext, forPrimary]);
      const oldLeaf = (await sign('old-leaf.internal')).issued; // ca.authority still signs with primary
      ca.authority.activate(next);
      const newLeaf = (await sign('new-leaf.internal')).issued;
      ca.authority.activate(primary);
      const ask = (issuer: { certificate: LoadedIssuer['certificate'] }, serial: string) =>
        router.respond(ocspRequest(issuerHashes(issuer.certificate, 'sha1'), serial));

      assert.equal((await ask(primary, oldLeaf.serial)).outcome, 'good');
      assert.equal((await ask(next, newLeaf.serial)).outcome, 'good');
      // Asked under the wrong issuer, a serial is unknown there: the CertID, not the serial, routes.
      assert.equal((await ask(next, oldLeaf.serial)).outcome, 'unknown');
      assert.equal((await ask(makeRoot({ commonName: 'Elsewhere' }), oldLeaf.serial)).outcome, 'unauthorized');

      const revoke = createRevoker({
        store: ca.store,
        clock: ca.clock,
        logger: ca.logger,
        onRevoked: async (serial) => forPrimary.resign(serial),
      });
      await revoke({ serial: oldLeaf.serial, reason: 'keyCompromise', actor: 'test', requester: 'unit-test' });
      const answer = await ask(primary, oldLeaf.serial);
      assert.equal(answer.outcome, 'revoked');
      assert.equal(answer.hit, true, "the re-signed answer is served from the retired responder's cache");
      assert.equal((await ask(next, newLeaf.serial)).outcome, 'good');
    } finally {
      for (const stop of stops) stop();
    }
  });
});
