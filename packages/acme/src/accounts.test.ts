import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { FlattenedSign } from 'jose';
import { eabSealContext } from './eab.js';
import {
  BASE,
  assertAcmeHeaders,
  createAcmeHarness,
  expectProblem,
  newKey,
  read,
  type AccountBody,
  type AcmeClient,
  type AcmeHarness,
  type OrderBody,
} from './test-fixtures.js';

describe('ACME accounts', () => {
  let h: AcmeHarness;
  before(async () => {
    h = await createAcmeHarness();
    await h.addProvisioner('eab', { requireEab: true });
    await h.addProvisioner('tos', { termsOfService: 'https://ca.test/terms' });
  });
  after(() => h.close());

  const account = (provisioner?: string): Promise<AcmeClient> => h.account(provisioner);

  /** An EAB key as `shortleaf acme eab add` makes one: a random HMAC key, sealed at rest. */
  async function eabKey(provisioner: string): Promise<{ kid: string; secret: Uint8Array }> {
    const kid = `kid-${randomBytes(6).toString('hex')}`;
    const secret = new Uint8Array(randomBytes(32));
    await h.ca.store.acme.createEabKey({
      kid,
      provisioner,
      sealedKey: await h.ca.sealer.seal(secret, eabSealContext(provisioner, kid)),
      createdAt: h.ca.clock.now(),
    });
    return { kid, secret };
  }

  describe('External Account Binding (RFC 8555 §7.3.4)', () => {
    it('says so in the directory', async () => {
      const res = await h.app.request(`${BASE}/acme/eab/directory`);
      assertAcmeHeaders(res, 'eab');
      assert.deepEqual((await read<{ meta: unknown }>(res)).body.meta, { externalAccountRequired: true });
    });

    it('refuses an account without a binding with externalAccountRequired', async () => {
      const client = await h.client('eab');
      expectProblem(await client.newAccount(), 400, 'externalAccountRequired', 'requires an external account binding');
    });

    it('refuses a binding MACed with the wrong key, then accepts the right one once', async () => {
      const { kid, secret } = await eabKey('eab');
      const client = await h.client('eab');
      const wrong = await client.eabBinding(kid, new Uint8Array(randomBytes(32)));
      expectProblem(
        await client.newAccount({ externalAccountBinding: wrong }),
        403,
        'unauthorized',
        'MAC does not verify',
      );

      const created = await client.newAccount({ externalAccountBinding: await client.eabBinding(kid, secret) });
      assert.equal(created.status, 201, created.text);
      assert.equal((await h.ca.store.acme.getEabKey(kid))?.accountId, client.kid?.split('/').at(-1));

      // The same key again is the same account, binding or not.
      assert.equal(
        (await client.newAccount({ externalAccountBinding: await client.eabBinding(kid, secret) })).status,
        200,
      );
      // Another account key cannot reuse the binding key.
      const second = await h.client('eab');
      expectProblem(
        await second.newAccount({ externalAccountBinding: await second.eabBinding(kid, secret) }),
        403,
        'unauthorized',
        'already bound to an account',
      );
    });

    it('refuses a binding over another key than the one signing the request', async () => {
      const { kid, secret } = await eabKey('eab');
      const client = await h.client('eab');
      const binding = await client.eabBinding(kid, secret, await newKey());
      expectProblem(
        await client.newAccount({ externalAccountBinding: binding }),
        403,
        'unauthorized',
        'binds a different key',
      );
    });

    it("refuses another provisioner's EAB key, and an unknown one", async () => {
      await h.addProvisioner('eab2', { requireEab: true });
      const { kid, secret } = await eabKey('eab2');
      const client = await h.client('eab');
      expectProblem(
        await client.newAccount({ externalAccountBinding: await client.eabBinding(kid, secret) }),
        403,
        'unauthorized',
        'not known to this provisioner',
      );
      expectProblem(
        await client.newAccount({ externalAccountBinding: await client.eabBinding('kid-nobody', secret) }),
        403,
        'unauthorized',
        'not known to this provisioner',
      );
    });
  });

  it('asks for agreement to the terms of service where a provisioner has them', async () => {
    const client = await h.client('tos');
    const refused = await client.newAccount({ contact: [] });
    expectProblem(refused, 403, 'userActionRequired', 'https://ca.test/terms');
    assert.ok(refused.headers.get('link')?.includes('<https://ca.test/terms>;rel="terms-of-service"'));
    assert.equal((await client.newAccount({ termsOfServiceAgreed: true })).status, 201);
  });

  describe('account updates (RFC 8555 §7.3.2)', () => {
    it('reads the account with POST-as-GET and replaces its contacts', async () => {
      const client = await account();
      const current = await client.get<AccountBody>(client.kid!);
      assert.equal(current.status, 200);
      assert.deepEqual(current.body.contact, ['mailto:ops@example.com']);
      assert.equal(current.body.orders, `${client.kid}/orders`);
      const updated = await client.post<AccountBody>(client.kid!, {
        contact: ['mailto:a@example.com', 'mailto:b@example.com'],
      });
      assert.equal(updated.status, 200);
      assert.deepEqual(updated.body.contact, ['mailto:a@example.com', 'mailto:b@example.com']);
      assert.deepEqual((await client.get<AccountBody>(client.kid!)).body.contact, [
        'mailto:a@example.com',
        'mailto:b@example.com',
      ]);
    });

    for (const [contact, type, fragment] of [
      ['mailto:a@example.com,b@example.com', 'invalidContact', 'not a single plain email address'],
      ['mailto:a@example.com?subject=hi', 'invalidContact', 'not a single plain email address'],
      ['tel:+15555550100', 'unsupportedContact', 'only mailto: contacts'],
    ] as const) {
      it(`refuses the contact ${contact} with ${type}, on update and on creation`, async () => {
        const client = await account();
        expectProblem(await client.post(client.kid!, { contact: [contact] }), 400, type, fragment);
        assert.deepEqual((await client.get<AccountBody>(client.kid!)).body.contact, ['mailto:ops@example.com']);
        expectProblem(await (await h.client()).newAccount({ contact: [contact] }), 400, type, fragment);
      });
    }

    it('refuses reading or changing another account, and its orders list', async () => {
      const client = await account();
      const other = await account();
      expectProblem(await client.post(other.kid!, { contact: [] }), 403, 'unauthorized', 'only read or change itself');
      expectProblem(await client.get(`${other.kid}/orders`), 403, 'unauthorized', 'its own orders');
    });

    it('deactivates: the kid is refused from then on, and so is the key on newAccount', async () => {
      const client = await account();
      const reply = await client.post<AccountBody>(client.kid!, { status: 'deactivated' });
      assert.equal(reply.status, 200);
      assert.equal(reply.body.status, 'deactivated');
      // RFC 8555 §7.3.6: 401, not the 403 other `unauthorized` refusals carry.
      expectProblem(await client.newOrder(['svc1.test']), 401, 'unauthorized', 'is deactivated');
      expectProblem(await client.get(client.kid!), 401, 'unauthorized', 'is deactivated');
      expectProblem(await client.newAccount(), 401, 'unauthorized', 'the account of this key is deactivated');
    });

    it('refuses any other status', async () => {
      const client = await account();
      expectProblem(
        await client.post(client.kid!, { status: 'revoked' }),
        400,
        'malformed',
        'only status a client may set',
      );
    });
  });

  describe('keyChange (RFC 8555 §7.3.5)', () => {
    it('rolls the key over: the new key signs for the account, the old one no longer does', async () => {
      const client = await account();
      const kid = client.kid!;
      const order = await client.newOrder(['svc1.test']);
      const oldKey = client.key;
      const changed = await client.keyChange(await newKey('EdDSA'));
      assert.equal(changed.status, 200, changed.text);
      assert.equal(changed.headers.get('location'), kid);

      // The new key works under the same kid, finds the same account and orders, and its
      // thumbprint is what http-01 key authorizations are checked against from now on.
      assert.deepEqual(
        (await client.validate(order.body)).map((a) => a.status),
        ['valid'],
      );
      assert.equal((await client.get<OrderBody>(order.location)).body.status, 'ready');
      const again = await client.newAccount({ onlyReturnExisting: true });
      assert.equal(again.status, 200);
      assert.equal(again.headers.get('location'), kid);

      // The old key, under the kid, is refused as a signature that does not verify with the
      // account's key (now Ed25519): `malformed`, not `badPublicKey`, which would blame a key the
      // client never sent. As a jwk the old key names no account (RFC 8555 §7.3.5).
      expectProblem(
        await client.post(order.location, '', { key: oldKey }),
        400,
        'malformed',
        'does not verify with the key of account',
      );
      const old = await h.client();
      old.key = oldKey;
      expectProblem(
        await old.newAccount({ onlyReturnExisting: true }),
        400,
        'accountDoesNotExist',
        'no account exists for this key',
      );
    });

    it('refuses the old key after a rollover to a key of the same type: the signature does not verify', async () => {
      const client = await account();
      const oldKey = client.key;
      assert.equal((await client.keyChange(await newKey())).status, 200);
      expectProblem(await client.post(client.kid!, '', { key: oldKey }), 400, 'malformed', 'does not verify');
      assert.equal((await client.get(client.kid!)).status, 200);
    });

    it('refuses a new RSA key with an exponent other than 65537 before verifying the inner JWS (hole 10)', async () => {
      const client = await account();
      const url = client.url('key-change');
      const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64url');
      const odd = (bytes: number) => {
        const b = randomBytes(bytes);
        b[0]! |= 0x80;
        b[bytes - 1]! |= 1;
        return b;
      };
      const jwk = { kty: 'RSA', n: b64(odd(384)), e: b64(odd(383)) };
      // The inner signature is garbage: badPublicKey, not malformed, shows the key was refused first.
      const enc = (v: unknown) => b64(Buffer.from(JSON.stringify(v)));
      const inner = {
        protected: enc({ alg: 'RS256', jwk, url }),
        payload: enc({ account: client.kid, oldKey: client.key.publicJwk }),
        signature: b64(randomBytes(384)),
      };
      expectProblem(await client.post(url, inner), 400, 'badPublicKey', 'exponent must be 65537');
      assert.equal((await client.get(client.kid!)).status, 200);
    });

    it("refuses a key another account holds with 409 conflict and that account's Location", async () => {
      const client = await account();
      const holder = await account();
      const reply = await client.keyChange(holder.key);
      expectProblem(reply, 409, 'conflict', 'already belongs to an account');
      assert.equal(reply.headers.get('location'), holder.kid);
      // Nothing changed.
      assert.equal((await client.get(client.kid!)).status, 200);
    });

    it('refuses an inner JWS that names another account or another old key', async () => {
      const client = await account();
      const other = await account();
      const url = client.url('key-change');
      const next = await newKey();
      const inner = (payload: unknown) =>
        new FlattenedSign(new TextEncoder().encode(JSON.stringify(payload)))
          .setProtectedHeader({ alg: 'ES256', jwk: next.publicJwk, url })
          .sign(next.privateKey);
      expectProblem(
        await client.post(url, await inner({ account: other.kid, oldKey: client.key.publicJwk })),
        400,
        'malformed',
        'names a different account',
      );
      expectProblem(
        await client.post(url, await inner({ account: client.kid, oldKey: other.key.publicJwk })),
        400,
        'malformed',
        '"oldKey" is not the key of this account',
      );
    });
  });
});
