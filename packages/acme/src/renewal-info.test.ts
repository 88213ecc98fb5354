import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  b64url,
  certId,
  createAcmeHarness,
  expectProblem,
  type AcmeClient,
  type AcmeHarness,
  type OrderBody,
  type Reply,
  ORDER_LIFETIME_MS,
} from './test-fixtures.js';

interface RenewalInfo {
  suggestedWindow: { start: string; end: string };
}

describe('ACME Renewal Information (RFC 9773)', () => {
  let h: AcmeHarness;
  let owner: AcmeClient;
  before(async () => {
    h = await createAcmeHarness();
    owner = await h.client();
    assert.equal((await owner.newAccount()).status, 201);
  });
  after(() => h.close());

  const renewalInfo = (id: string): Promise<Reply<RenewalInfo>> =>
    owner.request<RenewalInfo>(owner.url(`renewal-info/${id}`));

  describe('renewalInfo', () => {
    it('suggests a window around two-thirds of the lifetime, cacheable, with Retry-After', async () => {
      const { certificate } = await owner.issue(['svc1.test']);
      const reply = await renewalInfo(certId(certificate));
      assert.equal(reply.status, 200, reply.text);
      const start = Date.parse(reply.body.suggestedWindow.start);
      const end = Date.parse(reply.body.suggestedWindow.end);
      const notBefore = certificate.notBefore.getTime();
      const lifetime = certificate.notAfter.getTime() - notBefore;
      const twoThirds = notBefore + (2 / 3) * lifetime;
      assert.ok(
        start < twoThirds && twoThirds < end,
        `${reply.body.suggestedWindow.start} … ${reply.body.suggestedWindow.end}`,
      );
      assert.ok(start > notBefore && end < certificate.notAfter.getTime());
      const retryAfter = Number(reply.headers.get('retry-after'));
      assert.ok(Number.isInteger(retryAfter) && retryAfter >= 60, `Retry-After ${reply.headers.get('retry-after')}`);
      assert.equal(reply.headers.get('cache-control'), `public, max-age=${retryAfter}`);
    });

    it('answers 404 for a serial this CA did not issue, and for our serial under another key id', async () => {
      const { certificate } = await owner.issue(['svc1.test']);
      const [aki, serial] = certId(certificate).split('.');
      expectProblem(
        await renewalInfo(`${aki}.${b64url(Uint8Array.of(0x7f, 1, 2, 3, 4, 5, 6, 7))}`),
        404,
        'malformed',
        'no certificate',
      );
      expectProblem(await renewalInfo(`${b64url(new Uint8Array(20))}.${serial}`), 404, 'malformed', 'no certificate');
    });

    for (const [id, fragment] of <Array<[string, string]>>[
      ['garbage', 'not a certificate identifier'],
      ['a.b.c', 'not a certificate identifier'],
      ['a+b.cd', 'not a certificate identifier'],
      [`AAAA.${b64url(new Uint8Array(21))}`, 'wrong length'],
    ]) {
      it(`refuses the identifier ${JSON.stringify(id.slice(0, 20))} with malformed`, async () => {
        expectProblem(await renewalInfo(id), 400, 'malformed', fragment);
      });
    }

    it('moves the window into the past once the certificate is revoked', async () => {
      const { certificate } = await owner.issue(['svc1.test']);
      const revoked = await owner.post(owner.url('revoke-cert'), { certificate: b64url(certificate.der) });
      assert.equal(revoked.status, 200, revoked.text);
      const reply = await renewalInfo(certId(certificate));
      assert.equal(reply.status, 200);
      const now = h.ca.clock.now().getTime();
      assert.ok(Date.parse(reply.body.suggestedWindow.start) < Date.parse(reply.body.suggestedWindow.end));
      assert.ok(
        Date.parse(reply.body.suggestedWindow.end) < now,
        `${reply.body.suggestedWindow.end} should be before ${new Date(now).toISOString()}`,
      );
    });
  });

  describe('newOrder replaces', () => {
    it('records replaces for the same account and a shared name, and refuses a second replacement with alreadyReplaced', async () => {
      const { certificate } = await owner.issue(['svc1.test', 'svc2.test']);
      const id = certId(certificate);
      const renewal = await owner.newOrder(['svc2.test', 'svc3.test'], { replaces: id });
      assert.equal(renewal.status, 201, renewal.text);
      assert.equal(renewal.body.replaces, id);
      const second = await owner.newOrder(['svc1.test'], { replaces: id });
      expectProblem(second, 409, 'alreadyReplaced', 'has already been replaced');
    });

    it("refuses replacing another account's certificate with unauthorized", async () => {
      const { certificate } = await owner.issue(['svc1.test']);
      const other = await h.client();
      assert.equal((await other.newAccount()).status, 201);
      expectProblem(
        await other.newOrder(['svc1.test'], { replaces: certId(certificate) }),
        403,
        'unauthorized',
        'was not issued to this account',
      );
    });

    it('refuses a replacement sharing no identifier, or naming no certificate of ours', async () => {
      const { certificate } = await owner.issue(['svc1.test']);
      expectProblem(
        await owner.newOrder(['svc4.test'], { replaces: certId(certificate) }),
        400,
        'malformed',
        'shares no identifier',
      );
      const [aki] = certId(certificate).split('.');
      expectProblem(
        await owner.newOrder(['svc1.test'], { replaces: `${aki}.${b64url(Uint8Array.of(0x7f, 9, 9, 9))}` }),
        400,
        'malformed',
        'which this CA did not issue',
      );
      expectProblem(
        await owner.newOrder(['svc1.test'], { replaces: 'garbage' }),
        400,
        'malformed',
        'not a certificate identifier',
      );
    });

    // RFC 9773 §5: only an order that is not "invalid" blocks another replacement. An order that
    // expired (or whose authorization failed) reads `invalid` to the client but stays `pending` in
    // the store, whose one-replacement check and unique index acme_orders_replaces look at that.
    it('allows a new replacement once the previous replacing order is invalid', async () => {
      const { certificate } = await owner.issue(['svc5.test']);
      const id = certId(certificate);
      const abandoned = await owner.newOrder(['svc5.test'], { replaces: id });
      assert.equal(abandoned.status, 201, abandoned.text);
      h.ca.clock.advance(ORDER_LIFETIME_MS + 1000);
      assert.equal((await owner.get<OrderBody>(abandoned.location)).body.status, 'invalid');
      const retry = await owner.newOrder(['svc5.test'], { replaces: id });
      assert.equal(retry.status, 201, retry.text);
    });
  });
});
