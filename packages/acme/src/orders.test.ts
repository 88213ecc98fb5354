import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { readCertificates } from '@shortleaf/pki';
import {
  AUTHORIZATION_LIFETIME_MS,
  HOUR,
  ORDER_LIFETIME_MS,
  createAcmeHarness,
  expectProblem,
  makeCsr,
  type AcmeClient,
  type AcmeHarness,
  type AuthorizationBody,
  type ChallengeBody,
  type OrderBody,
} from './test-fixtures.js';

describe('ACME orders', () => {
  let h: AcmeHarness;
  before(async () => {
    h = await createAcmeHarness();
    await h.addProvisioner('allowed', {}, { names: { dns: ['*.allowed.test'] } });
    await h.addProvisioner('limited', { ordersPerHour: 2 });
    await h.addProvisioner('strict', { failedValidationsPerHour: 1 });
  });
  after(() => h.close());

  const account = (provisioner?: string): Promise<AcmeClient> => h.account(provisioner);

  describe('finalize (RFC 8555 §7.4)', () => {
    it('refuses an order whose authorizations are not valid yet with orderNotReady', async () => {
      const client = await account();
      const created = await client.newOrder(['svc1.test']);
      expectProblem(
        await client.finalize(created.body, makeCsr(['svc1.test']).der),
        403,
        'orderNotReady',
        'the order is pending',
      );
    });

    it('refuses a CSR with an extra name and leaves the order ready for a good one', async () => {
      const client = await account();
      const { url, order } = await client.readyOrder(['svc1.test']);
      expectProblem(
        await client.finalize(order, makeCsr(['svc1.test', 'extra.test']).der),
        400,
        'badCSR',
        'extra.test, which the order does not have',
      );
      assert.equal((await client.get<OrderBody>(url)).body.status, 'ready');
      const done = await client.finalize(order, makeCsr(['svc1.test']).der);
      assert.equal(done.status, 200, done.text);
      assert.equal(done.body.status, 'valid');
    });

    it('refuses a CSR missing a name of the order', async () => {
      const client = await account();
      const { order } = await client.readyOrder(['svc1.test', 'svc2.test']);
      expectProblem(
        await client.finalize(order, makeCsr(['svc1.test']).der),
        400,
        'badCSR',
        'does not ask for dns:svc2.test',
      );
    });

    it('refuses a CSR whose common name is not an identifier', async () => {
      const client = await account();
      const { order } = await client.readyOrder(['svc1.test']);
      expectProblem(
        await client.finalize(order, makeCsr(['svc1.test'], { commonName: 'other.test' }).der),
        400,
        'badCSR',
        'common name other.test',
      );
    });

    it('refuses garbage as a CSR, and a csr that is not base64url', async () => {
      const client = await account();
      const { url, order } = await client.readyOrder(['svc1.test']);
      expectProblem(
        await client.finalize(order, new TextEncoder().encode('garbage, not a CSR')),
        400,
        'badCSR',
        'not valid DER',
      );
      expectProblem(await client.post(order.finalize, { csr: 'not base64!' }), 400, 'malformed', 'base64url DER');
      assert.equal((await client.get<OrderBody>(url)).body.status, 'ready');
    });

    it('issues until the notAfter the order asked for', async () => {
      const client = await account();
      const notAfter = new Date(h.ca.clock.now().getTime() + 2 * HOUR);
      const created = await client.newOrder(['svc2.test'], { notAfter: notAfter.toISOString() });
      assert.equal(created.status, 201, created.text);
      assert.equal(created.body.notAfter, notAfter.toISOString());
      await client.validate(created.body);
      const done = await client.finalize(created.body, makeCsr(['svc2.test']).der);
      assert.equal(done.status, 200, done.text);
      const pem = await client.get<null>(done.body.certificate!);
      assert.equal(readCertificates(pem.text)[0]!.notAfter.getTime(), notAfter.getTime());
    });

    it('refuses a second finalize of a valid order', async () => {
      const client = await account();
      const { order } = await client.issue(['svc1.test']);
      expectProblem(
        await client.finalize(order, makeCsr(['svc1.test']).der),
        403,
        'orderNotReady',
        'the order is valid',
      );
    });

    it("answers 404 for another account's order, authorization and certificate", async () => {
      const owner = await account();
      const issued = await owner.issue(['svc1.test']);
      const other = await account();
      expectProblem(await other.get(issued.url), 404, 'malformed', 'no order');
      expectProblem(await other.get(issued.order.authorizations[0]!), 404, 'malformed', 'no authorization');
      expectProblem(await other.get(issued.order.certificate!), 404, 'malformed', 'no certificate');
      expectProblem(await other.finalize(issued.order, issued.csr.der), 404, 'malformed', 'no order');
    });
  });

  describe('identifiers (RFC 8555 §7.4, RFC 8738)', () => {
    it('refuses an email identifier with unsupportedIdentifier', async () => {
      const client = await account();
      const problem = expectProblem(
        await client.newOrder([{ type: 'email', value: 'a@b.test' }]),
        400,
        'unsupportedIdentifier',
        'identifier type "email"',
      );
      assert.equal(problem.subproblems?.[0]?.type, 'urn:ietf:params:acme:error:unsupportedIdentifier');
    });

    it('refuses names outside the provisioner policy with one subproblem per name', async () => {
      const client = await account('allowed');
      const one = expectProblem(
        await client.newOrder(['a.allowed.test', 'evil.test']),
        400,
        'rejectedIdentifier',
        'evil.test is not allowed',
      );
      assert.deepEqual(
        one.subproblems?.map((s) => [s.type, s.identifier]),
        [['urn:ietf:params:acme:error:rejectedIdentifier', { type: 'dns', value: 'evil.test' }]],
      );
      const two = expectProblem(
        await client.newOrder(['evil.test', 'a.allowed.test', 'bad.test']),
        400,
        'rejectedIdentifier',
        '2 of these identifiers',
      );
      assert.deepEqual(
        two.subproblems?.map((s) => s.identifier.value),
        ['evil.test', 'bad.test'],
      );
      assert.equal((await client.newOrder(['a.allowed.test'])).status, 201);
    });

    it('offers a wildcard only dns-01, at the base name', async () => {
      const client = await account();
      const created = await client.newOrder(['*.svc1.test']);
      assert.equal(created.status, 201, created.text);
      const authz = (await client.get<AuthorizationBody>(created.body.authorizations[0]!)).body;
      assert.deepEqual(authz.identifier, { type: 'dns', value: 'svc1.test' });
      assert.equal(authz.wildcard, true);
      assert.deepEqual(
        authz.challenges.map((c) => c.type),
        ['dns-01'],
      );
    });

    it('offers an IP identifier http-01 and tls-alpn-01 only, and validates it', async () => {
      const client = await account();
      const created = await client.newOrder(['127.0.0.1']);
      assert.equal(created.status, 201, created.text);
      const authz = (await client.get<AuthorizationBody>(created.body.authorizations[0]!)).body;
      assert.deepEqual(authz.identifier, { type: 'ip', value: '127.0.0.1' });
      assert.deepEqual(authz.challenges.map((c) => c.type).sort(), ['http-01', 'tls-alpn-01']);
      assert.deepEqual(
        (await client.validate(created.body)).map((a) => a.status),
        ['valid'],
      );
    });

    it('refuses malformed newOrder payloads', async () => {
      const client = await account();
      expectProblem(
        await client.post(client.url('new-order'), { identifiers: [] }),
        400,
        'malformed',
        'non-empty array',
      );
      expectProblem(
        await client.newOrder(['svc1.test'], { notBefore: '2031-03-01T12:00:00Z' }),
        400,
        'malformed',
        '"notBefore" is not supported',
      );
      expectProblem(
        await client.newOrder(['svc1.test'], { colour: 'blue' }),
        400,
        'malformed',
        'unknown newOrder field "colour"',
      );
      expectProblem(
        await client.newOrder([{ type: 'ip', value: 'svc1.test' }]),
        400,
        'malformed',
        'not a valid IP address',
      );
    });

    it('refuses at newOrder a notAfter the policy would refuse at finalize', async () => {
      const client = await account();
      const tooLate = new Date(h.ca.clock.now().getTime() + 30 * 24 * HOUR).toISOString();
      expectProblem(
        await client.newOrder(['svc1.test'], { notAfter: tooLate }),
        400,
        'malformed',
        'exceeds this provisioner',
      );
      expectProblem(await client.newOrder(['svc1.test'], { notAfter: 'tomorrow' }), 400, 'malformed', 'RFC 3339');
    });
  });

  describe('authorization reuse and expiry (clock moved)', () => {
    it('reuses a valid authorization for the same account, then makes a fresh one once it expired', async () => {
      const client = await account();
      const first = await client.readyOrder(['svc3.test']);
      const reused = await client.newOrder(['svc3.test']);
      assert.equal(reused.status, 201);
      assert.deepEqual(reused.body.authorizations, first.order.authorizations);
      assert.equal(reused.body.status, 'ready');
      assert.equal(reused.headers.get('retry-after'), null);

      // Another account never gets it.
      const other = await account();
      const theirs = await other.newOrder(['svc3.test']);
      assert.notDeepEqual(theirs.body.authorizations, first.order.authorizations);
      assert.equal(theirs.body.status, 'pending');

      h.ca.clock.advance(AUTHORIZATION_LIFETIME_MS + 1000);
      assert.equal((await client.get<AuthorizationBody>(first.order.authorizations[0]!)).body.status, 'expired');
      const fresh = await client.newOrder(['svc3.test']);
      assert.equal(fresh.status, 201);
      assert.notDeepEqual(fresh.body.authorizations, first.order.authorizations);
      assert.equal(fresh.body.status, 'pending');
      assert.equal((await client.get<AuthorizationBody>(fresh.body.authorizations[0]!)).body.status, 'pending');
    });

    it('reads an order past its expiry as invalid, and will not finalize it', async () => {
      const client = await account();
      const { url, order } = await client.readyOrder(['svc4.test']);
      h.ca.clock.advance(ORDER_LIFETIME_MS + 1000);
      const read = await client.get<OrderBody>(url);
      assert.equal(read.body.status, 'invalid');
      assert.ok(read.body.error?.detail.includes('the order expired'), JSON.stringify(read.body.error));
      expectProblem(
        await client.finalize(order, makeCsr(['svc4.test']).der),
        403,
        'orderNotReady',
        'the order is invalid',
      );
    });

    it('lets a client deactivate an authorization, which invalidates its order', async () => {
      const client = await account();
      const created = await client.newOrder(['svc5.test']);
      const authzUrl = created.body.authorizations[0]!;
      const reply = await client.post<AuthorizationBody>(authzUrl, { status: 'deactivated' });
      assert.equal(reply.status, 200);
      assert.equal(reply.body.status, 'deactivated');
      assert.equal((await client.get<OrderBody>(created.location)).body.status, 'invalid');
      expectProblem(
        await client.post(authzUrl, { status: 'deactivated' }),
        400,
        'malformed',
        'deactivated cannot be deactivated',
      );
    });
  });

  describe('rate limits', () => {
    it('refuses the third order in an hour with rateLimited and Retry-After, and allows it an hour later', async () => {
      const client = await account('limited');
      assert.equal((await client.newOrder(['svc1.test'])).status, 201);
      assert.equal((await client.newOrder(['svc2.test'])).status, 201);
      const third = await client.newOrder(['svc3.test']);
      expectProblem(third, 429, 'rateLimited', 'the limit is 2');
      assert.equal(third.headers.get('retry-after'), '3600');
      // The limit is per account.
      assert.equal((await (await account('limited')).newOrder(['svc3.test'])).status, 201);
      h.ca.clock.advance(HOUR + 1000);
      assert.equal((await client.newOrder(['svc3.test'])).status, 201);
    });

    it('records a failed validation on challenge, authorization and order, then refuses more validations', async () => {
      const client = await account('strict');
      const created = await client.newOrder(['svc1.test']);
      const [authz] = await client.validate(created.body, (keyAuthorization) => `${keyAuthorization}-wrong`);
      assert.equal(authz?.status, 'invalid');
      const challenge = authz.challenges.find((c) => c.type === 'http-01')!;
      assert.equal(challenge.status, 'invalid');
      assert.equal(challenge.error?.type, 'urn:ietf:params:acme:error:incorrectResponse');
      assert.ok(challenge.error.detail.includes('is not the key authorization'), challenge.error.detail);
      const order = (await client.get<OrderBody>(created.location)).body;
      assert.equal(order.status, 'invalid');
      assert.equal(order.error?.type, 'urn:ietf:params:acme:error:incorrectResponse');

      const next = await client.newOrder(['svc2.test']);
      const pending = (await client.get<AuthorizationBody>(next.body.authorizations[0]!)).body;
      const http01 = pending.challenges.find((c) => c.type === 'http-01')!;
      h.responses.set(http01.token, await client.keyAuthorization(http01.token));
      const refused = await client.post<ChallengeBody>(http01.url, {});
      expectProblem(refused, 429, 'rateLimited', 'failed 1 validations in the last hour');
      assert.equal(refused.headers.get('retry-after'), '3600');
      assert.equal((await client.get<ChallengeBody>(http01.url)).body.status, 'pending');
    });

    it('resumes a validation a restart left processing when the authorization is read', async () => {
      const client = await account();
      const created = await client.newOrder(['svc4.test']);
      const authzUrl = created.body.authorizations[0]!;
      const http01 = (await client.get<AuthorizationBody>(authzUrl)).body.challenges.find((c) => c.type === 'http-01')!;
      h.responses.set(http01.token, await client.keyAuthorization(http01.token));
      // What a crash between "processing" and the outcome leaves: no validation in this process.
      assert.equal(await h.ca.store.acme.startChallenge(http01.url.split('/').at(-1)!), true);
      assert.equal((await client.poll(authzUrl)).status, 'valid');
    });

    it('does not validate a challenge twice, nor one of a failed authorization', async () => {
      const client = await account();
      const created = await client.newOrder(['svc2.test']);
      const [authz] = await client.validate(created.body, () => 'wrong');
      const challenge = authz!.challenges.find((c) => c.type === 'http-01')!;
      const again = await client.post<ChallengeBody>(challenge.url, {});
      assert.equal(again.status, 200);
      assert.equal(again.body.status, 'invalid');
      const dns01 = authz!.challenges.find((c) => c.type === 'dns-01')!;
      expectProblem(await client.post(dns01.url, {}), 400, 'malformed', 'the authorization is invalid');
    });
  });
});
