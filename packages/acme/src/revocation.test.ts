import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { foreignLeaf, makeRoot } from '../../authority/src/test-fixtures.js';
import {
  b64url,
  createAcmeHarness,
  csrKey,
  expectProblem,
  makeCsr,
  newKey,
  type AcmeClient,
  type AcmeHarness,
} from './test-fixtures.js';

describe('ACME revokeCert (RFC 8555 §7.6)', () => {
  let h: AcmeHarness;
  let owner: AcmeClient;
  let other: AcmeClient;
  before(async () => {
    h = await createAcmeHarness();
    owner = await h.client();
    other = await h.client();
    assert.equal((await owner.newAccount()).status, 201);
    assert.equal((await other.newAccount()).status, 201);
  });
  after(() => h.close());

  const revokeUrl = () => owner.url('revoke-cert');
  const revocationOf = (serial: string) => h.ca.store.revocations.get(serial);

  it('revokes for the ordering account, tells the revoker once, and refuses a second time with alreadyRevoked', async () => {
    const { certificate } = await owner.issue(['svc1.test']);
    const reply = await owner.post(revokeUrl(), { certificate: b64url(certificate.der), reason: 4 });
    assert.equal(reply.status, 200, reply.text);
    assert.equal(reply.text, '');
    assert.deepEqual(h.revoked, [certificate.serial]);
    const row = await revocationOf(certificate.serial);
    assert.equal(row?.reason, 'superseded');

    expectProblem(
      await owner.post(revokeUrl(), { certificate: b64url(certificate.der) }),
      400,
      'alreadyRevoked',
      'already revoked (superseded)',
    );
    assert.deepEqual(h.revoked, [certificate.serial], 'a repeat must not reach the OCSP and CRL hooks');
  });

  it('lets keyCompromise replace an earlier reason, blocks the key, and a finalize with that key gets badPublicKey', async () => {
    const { certificate, csr } = await owner.issue(['svc3.test']);
    assert.equal((await owner.post(revokeUrl(), { certificate: b64url(certificate.der), reason: 0 })).status, 200);
    const holder = await h.client();
    const reply = await holder.post(
      revokeUrl(),
      { certificate: b64url(certificate.der), reason: 1 },
      { key: csrKey(csr), jwk: true },
    );
    assert.equal(reply.status, 200, reply.text);
    assert.equal((await revocationOf(certificate.serial))?.reason, 'keyCompromise');
    expectProblem(
      await owner.post(revokeUrl(), { certificate: b64url(certificate.der), reason: 4 }),
      400,
      'alreadyRevoked',
      'only keyCompromise',
    );
    const { order } = await owner.readyOrder(['svc3.test']);
    expectProblem(await owner.finalize(order, csr.der), 400, 'badPublicKey', 'keyCompromise');
    assert.equal(
      (await owner.finalize(order, makeCsr(['svc3.test']).der)).status,
      200,
      'the order stays ready for another key',
    );
  });

  it('refuses another account with unauthorized and revokes nothing', async () => {
    const { certificate } = await owner.issue(['svc1.test']);
    expectProblem(
      await other.post(revokeUrl(), { certificate: b64url(certificate.der) }),
      403,
      'unauthorized',
      'did not order that certificate',
    );
    assert.equal(await revocationOf(certificate.serial), null);
  });

  it("revokes when signed with the certificate's own key (jwk), whoever holds it", async () => {
    const { certificate, csr } = await owner.issue(['svc2.test']);
    const holder = await h.client();
    const reply = await holder.post(
      revokeUrl(),
      { certificate: b64url(certificate.der), reason: 1 },
      { key: csrKey(csr), jwk: true },
    );
    assert.equal(reply.status, 200, reply.text);
    assert.equal((await revocationOf(certificate.serial))?.reason, 'keyCompromise');
    assert.ok(h.revoked.includes(certificate.serial));
  });

  it("refuses a jwk that is not the certificate's key", async () => {
    const { certificate } = await owner.issue(['svc2.test']);
    const stranger = await h.client();
    const reply = await stranger.post(
      revokeUrl(),
      { certificate: b64url(certificate.der) },
      { key: await newKey(), jwk: true },
    );
    expectProblem(reply, 403, 'unauthorized', "not the certificate's");
    // Nor the ordering account's key sent as a jwk: that proves the account, not the certificate key.
    expectProblem(
      await owner.post(revokeUrl(), { certificate: b64url(certificate.der) }, { jwk: true }),
      403,
      'unauthorized',
      "not the certificate's",
    );
    assert.equal(await revocationOf(certificate.serial), null);
  });

  for (const [reason, fragment] of [
    [8, 'removeFromCRL'],
    [7, '7 is not a CRLReason code'],
    [11, '11 is not a CRLReason code'],
    ['keyCompromise', 'must be a CRLReason code'],
  ] as const) {
    it(`refuses reason ${JSON.stringify(reason)} with badRevocationReason`, async () => {
      const { certificate } = await owner.issue(['svc3.test']);
      expectProblem(
        await owner.post(revokeUrl(), { certificate: b64url(certificate.der), reason }),
        400,
        'badRevocationReason',
        fragment,
      );
      assert.equal(await revocationOf(certificate.serial), null);
    });
  }

  it('refuses a certificate this CA did not issue with 404', async () => {
    const root = makeRoot();
    const der = foreignLeaf(root, { names: ['svc1.test'], publicKey: makeCsr(['svc1.test']).publicKey });
    expectProblem(
      await owner.post(revokeUrl(), { certificate: b64url(der) }),
      404,
      'malformed',
      'was not issued by this CA',
    );
  });

  it('refuses a missing or unparsable certificate with malformed', async () => {
    expectProblem(await owner.post(revokeUrl(), {}), 400, 'malformed', 'revokeCert needs "certificate"');
    expectProblem(
      await owner.post(revokeUrl(), { certificate: b64url(new TextEncoder().encode('not a certificate')) }),
      400,
      'malformed',
      'cannot be parsed',
    );
  });
});
