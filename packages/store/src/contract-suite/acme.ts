import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type {
  AcmeAccountRecord,
  AcmeAuthorizationRecord,
  AcmeChallengeRecord,
  AcmeOrderRecord,
  AcmeProblemRecord,
} from '../contracts/acme.js';
import type { Store } from '../contracts/store.js';
import { bytes, minutes, storeError, t0 } from '../test-fixtures.js';
import type { StoreOpener } from './opener.js';

// ACME accounts, EAB keys, orders, authorizations and challenges, as every engine must behave.

const problem = (detail: string): AcmeProblemRecord => ({
  type: 'urn:ietf:params:acme:error:incorrectResponse',
  detail,
  status: 403,
  subproblems: [
    { type: 'urn:ietf:params:acme:error:dns', detail: 'NXDOMAIN', identifier: { type: 'dns', value: 'a.internal' } },
  ],
});

function account(id: string, overrides: Partial<AcmeAccountRecord> = {}): AcmeAccountRecord {
  return {
    id,
    provisioner: 'acme',
    thumbprint: `tp-${id}`,
    jwk: `{"kty":"EC","x":"${id}"}`,
    status: 'valid',
    contact: [`mailto:${id}@example.com`],
    eabKid: null,
    createdAt: t0,
    ...overrides,
  };
}

function challenge(
  id: string,
  authorizationId: string,
  overrides: Partial<AcmeChallengeRecord> = {},
): AcmeChallengeRecord {
  return {
    id,
    authorizationId,
    type: 'http-01',
    token: `token-${id}`,
    status: 'pending',
    validated: null,
    error: null,
    ...overrides,
  };
}

function authorization(
  id: string,
  value: string,
  overrides: Partial<AcmeAuthorizationRecord> = {},
): AcmeAuthorizationRecord {
  return {
    id,
    accountId: 'acct-1',
    identifier: { type: 'dns', value },
    wildcard: false,
    status: 'pending',
    expires: minutes(7 * 24 * 60),
    challenges: [challenge(`${id}-http`, id), challenge(`${id}-dns`, id, { type: 'dns-01' })],
    createdAt: t0,
    ...overrides,
  };
}

function order(id: string, authorizationIds: string[], overrides: Partial<AcmeOrderRecord> = {}): AcmeOrderRecord {
  return {
    id,
    accountId: 'acct-1',
    status: 'pending',
    identifiers: authorizationIds.map((a) => ({ type: 'dns', value: `${a}.internal` })),
    authorizationIds,
    notBefore: null,
    notAfter: null,
    expires: minutes(7 * 24 * 60),
    error: null,
    certificateSerial: null,
    replaces: null,
    replacesSerial: null,
    createdAt: t0,
    ...overrides,
  };
}

/** A store with an ACME provisioner and one account, `acct-1`. */
async function acmeStore(open: StoreOpener, t: TestContext): Promise<Store> {
  const store = await open(t);
  await store.addProvisioner({
    name: 'acme',
    type: 'acme',
    publicJwk: null,
    policy: '{}',
    options: '{"requireEab":false}',
    createdAt: t0,
  });
  await store.acme.createAccount(account('acct-1'));
  return store;
}

const acmeCounts = async (store: Store): Promise<Record<string, number>> =>
  Object.fromEntries(Object.entries(await store.counts()).filter(([table]) => table.startsWith('acme_')));

export function acmeContract(engine: string, open: StoreOpener): void {
  describe(`${engine} store: ACME accounts`, () => {
    it('creates an account and finds it by id and by thumbprint; missing ones are null', async (t) => {
      const store = await acmeStore(open, t);
      assert.deepEqual(await store.acme.getAccount('acct-1'), account('acct-1'));
      assert.deepEqual(await store.acme.getAccountByThumbprint('acme', 'tp-acct-1'), account('acct-1'));
      assert.equal(await store.acme.getAccount('nope'), null);
      assert.equal(await store.acme.getAccountByThumbprint('other', 'tp-acct-1'), null);
    });

    it('refuses a second account with the same key for the provisioner (conflict), and writes nothing', async (t) => {
      const store = await acmeStore(open, t);
      const before = await acmeCounts(store);
      await assert.rejects(
        store.acme.createAccount(account('acct-2', { thumbprint: 'tp-acct-1' })),
        storeError('conflict', 'already exists'),
      );
      assert.deepEqual(await acmeCounts(store), before);
    });

    it('refuses an account of an unknown provisioner (notFound)', async (t) => {
      const store = await acmeStore(open, t);
      await assert.rejects(
        store.acme.createAccount(account('acct-2', { provisioner: 'nobody' })),
        storeError('notFound', 'nobody'),
      );
    });

    it('updateAccount changes only the given fields', async (t) => {
      const store = await acmeStore(open, t);
      await store.acme.updateAccount('acct-1', { contact: ['mailto:new@example.com'] });
      assert.deepEqual(
        await store.acme.getAccount('acct-1'),
        account('acct-1', { contact: ['mailto:new@example.com'] }),
      );
      await store.acme.updateAccount('acct-1', { status: 'deactivated' });
      assert.deepEqual(
        await store.acme.getAccount('acct-1'),
        account('acct-1', { contact: ['mailto:new@example.com'], status: 'deactivated' }),
      );
      await store.acme.updateAccount('acct-1', { contact: [] });
      assert.deepEqual((await store.acme.getAccount('acct-1'))?.contact, []);
      await store.acme.updateAccount('acct-1', {});
      assert.equal((await store.acme.getAccount('acct-1'))?.status, 'deactivated');
      await assert.rejects(store.acme.updateAccount('nope', { status: 'deactivated' }), storeError('notFound', 'nope'));
    });

    it('changeAccountKey replaces the key; a key another account holds is conflict', async (t) => {
      const store = await acmeStore(open, t);
      await store.acme.createAccount(account('acct-2'));
      await store.acme.changeAccountKey('acct-1', '{"kty":"OKP"}', 'tp-new');
      assert.equal(await store.acme.getAccountByThumbprint('acme', 'tp-acct-1'), null);
      assert.deepEqual(
        await store.acme.getAccountByThumbprint('acme', 'tp-new'),
        account('acct-1', { jwk: '{"kty":"OKP"}', thumbprint: 'tp-new' }),
      );
      await store.acme.changeAccountKey('acct-1', '{"kty":"OKP"}', 'tp-new'); // its own key again is fine
      await assert.rejects(
        store.acme.changeAccountKey('acct-1', '{"kty":"EC"}', 'tp-acct-2'),
        storeError('conflict', 'another account'),
      );
      assert.equal((await store.acme.getAccount('acct-1'))?.thumbprint, 'tp-new');
      await assert.rejects(store.acme.changeAccountKey('nope', '{}', 'tp-x'), storeError('notFound', 'nope'));
    });

    it('the same key may hold an account at each of two provisioners', async (t) => {
      const store = await acmeStore(open, t);
      await store.addProvisioner({ name: 'acme-2', type: 'acme', publicJwk: null, policy: '{}', createdAt: t0 });
      await store.acme.createAccount(account('acct-2', { provisioner: 'acme-2', thumbprint: 'tp-acct-1' }));
      assert.equal((await store.acme.getAccountByThumbprint('acme-2', 'tp-acct-1'))?.id, 'acct-2');
    });
  });

  describe(`${engine} store: ACME external account binding`, () => {
    it('stores keys, lists them by provisioner, and binds one to the account created with it', async (t) => {
      const store = await acmeStore(open, t);
      await store.acme.createEabKey({
        kid: 'kid-2',
        provisioner: 'acme',
        sealedKey: bytes('sealed-2'),
        createdAt: minutes(2),
      });
      await store.acme.createEabKey({
        kid: 'kid-1',
        provisioner: 'acme',
        sealedKey: bytes('sealed-1'),
        createdAt: minutes(1),
      });
      assert.deepEqual(await store.acme.getEabKey('kid-1'), {
        kid: 'kid-1',
        provisioner: 'acme',
        sealedKey: Buffer.from(bytes('sealed-1')),
        accountId: null,
        createdAt: minutes(1),
        boundAt: null,
      });
      assert.equal(await store.acme.getEabKey('nope'), null);
      assert.deepEqual(
        (await store.acme.listEabKeys('acme')).map((k) => k.kid),
        ['kid-1', 'kid-2'],
      );
      assert.deepEqual(await store.acme.listEabKeys('other'), []);

      await store.acme.createAccount(account('acct-2', { eabKid: 'kid-1' }), { kid: 'kid-1', at: minutes(3) });
      assert.equal((await store.acme.getAccount('acct-2'))?.eabKid, 'kid-1');
      const bound = await store.acme.getEabKey('kid-1');
      assert.equal(bound?.accountId, 'acct-2');
      assert.deepEqual(bound?.boundAt, minutes(3));
    });

    it('an EAB key binds one account only: a second use is eabKeyUsed and writes nothing', async (t) => {
      const store = await acmeStore(open, t);
      await store.acme.createEabKey({ kid: 'kid-1', provisioner: 'acme', sealedKey: bytes('k'), createdAt: t0 });
      await store.acme.createAccount(account('acct-2', { eabKid: 'kid-1' }), { kid: 'kid-1', at: minutes(1) });
      const before = await acmeCounts(store);
      await assert.rejects(
        store.acme.createAccount(account('acct-3', { eabKid: 'kid-1' }), { kid: 'kid-1', at: minutes(2) }),
        storeError('eabKeyUsed', 'kid-1'),
      );
      assert.deepEqual(await acmeCounts(store), before);
      assert.equal(await store.acme.getAccount('acct-3'), null);
      assert.equal((await store.acme.getEabKey('kid-1'))?.accountId, 'acct-2');
    });

    it('an unknown key, or one of another provisioner, is notFound and creates no account', async (t) => {
      const store = await acmeStore(open, t);
      await store.addProvisioner({ name: 'acme-2', type: 'acme', publicJwk: null, policy: '{}', createdAt: t0 });
      await store.acme.createEabKey({ kid: 'kid-2', provisioner: 'acme-2', sealedKey: bytes('k'), createdAt: t0 });
      const before = await acmeCounts(store);
      await assert.rejects(
        store.acme.createAccount(account('acct-2', { eabKid: 'nope' }), { kid: 'nope', at: t0 }),
        storeError('notFound', 'nope'),
      );
      await assert.rejects(
        store.acme.createAccount(account('acct-2', { eabKid: 'kid-2' }), { kid: 'kid-2', at: t0 }),
        storeError('notFound', 'kid-2'),
      );
      assert.deepEqual(await acmeCounts(store), before);
    });

    it('a duplicate account key with a fresh EAB key leaves the key unbound', async (t) => {
      const store = await acmeStore(open, t);
      await store.acme.createEabKey({ kid: 'kid-1', provisioner: 'acme', sealedKey: bytes('k'), createdAt: t0 });
      await assert.rejects(
        store.acme.createAccount(account('acct-2', { thumbprint: 'tp-acct-1', eabKid: 'kid-1' }), {
          kid: 'kid-1',
          at: t0,
        }),
        storeError('conflict', 'already exists'),
      );
      assert.equal((await store.acme.getEabKey('kid-1'))?.accountId, null);
    });

    it('refuses a duplicate kid (conflict) and an eabKid that does not match the key being bound', async (t) => {
      const store = await acmeStore(open, t);
      await store.acme.createEabKey({ kid: 'kid-1', provisioner: 'acme', sealedKey: bytes('k'), createdAt: t0 });
      await assert.rejects(
        store.acme.createEabKey({ kid: 'kid-1', provisioner: 'acme', sealedKey: bytes('k2'), createdAt: t0 }),
        storeError('conflict', 'kid-1'),
      );
      await assert.rejects(
        store.acme.createEabKey({ kid: 'kid-9', provisioner: 'nobody', sealedKey: bytes('k'), createdAt: t0 }),
        storeError('notFound', 'nobody'),
      );
      await assert.rejects(store.acme.createAccount(account('acct-2'), { kid: 'kid-1', at: t0 }), RangeError);
      await assert.rejects(store.acme.createAccount(account('acct-2', { eabKid: 'kid-1' })), RangeError);
      assert.equal((await store.acme.getEabKey('kid-1'))?.accountId, null);
    });
  });

  describe(`${engine} store: ACME orders and authorizations`, () => {
    it('creates an order with new authorizations and challenges, and reads them back', async (t) => {
      const store = await acmeStore(open, t);
      const authzs = [
        authorization('az-a', 'a.internal'),
        authorization('az-b', 'b.internal', {
          wildcard: true,
          challenges: [challenge('az-b-dns', 'az-b', { type: 'dns-01' })],
        }),
      ];
      const o = order('ord-1', ['az-a', 'az-b'], {
        notBefore: t0,
        notAfter: minutes(60),
        replaces: 'aki.serial',
        replacesSerial: 'abcd',
      });
      await store.acme.createOrder(o, authzs);
      assert.deepEqual(await store.acme.getOrder('ord-1'), o);
      assert.deepEqual(await store.acme.getAuthorization('az-a'), authzs[0]);
      assert.deepEqual(await store.acme.getAuthorization('az-b'), authzs[1]);
      assert.deepEqual(await store.acme.getChallenge('az-a-dns'), challenge('az-a-dns', 'az-a', { type: 'dns-01' }));
      assert.equal(await store.acme.getOrder('nope'), null);
      assert.equal(await store.acme.getAuthorization('nope'), null);
      assert.equal(await store.acme.getChallenge('nope'), null);
    });

    it('links reused and new authorizations in the order of authorizationIds', async (t) => {
      const store = await acmeStore(open, t);
      await store.acme.createOrder(order('ord-1', ['az-a', 'az-b']), [
        authorization('az-a', 'a.internal'),
        authorization('az-b', 'b.internal'),
      ]);
      // The second order reuses az-b (listed first) and adds az-c; az-b stays shared by both.
      await store.acme.createOrder(order('ord-2', ['az-b', 'az-c', 'az-a'], { createdAt: minutes(1) }), [
        authorization('az-c', 'c.internal'),
      ]);
      assert.deepEqual((await store.acme.getOrder('ord-2'))?.authorizationIds, ['az-b', 'az-c', 'az-a']);
      assert.deepEqual((await store.acme.getOrder('ord-1'))?.authorizationIds, ['az-a', 'az-b']);
      assert.equal((await acmeCounts(store)).acme_authorizations, 3);
    });

    it('refuses to link an authorization that does not exist or belongs to another account, and writes nothing', async (t) => {
      const store = await acmeStore(open, t);
      await store.acme.createAccount(account('acct-2'));
      await store.acme.createOrder(order('ord-x', ['az-x'], { accountId: 'acct-2' }), [
        authorization('az-x', 'x.internal', { accountId: 'acct-2' }),
      ]);
      const before = await acmeCounts(store);
      await assert.rejects(
        store.acme.createOrder(order('ord-1', ['az-a', 'az-x']), [authorization('az-a', 'a.internal')]),
        storeError('notFound', 'az-x'),
      );
      await assert.rejects(
        store.acme.createOrder(order('ord-1', ['az-a', 'az-none']), [authorization('az-a', 'a.internal')]),
        storeError('notFound', 'az-none'),
      );
      assert.deepEqual(await acmeCounts(store), before);
    });

    it('refuses an order for an unknown account, or a duplicate id, and writes nothing', async (t) => {
      const store = await acmeStore(open, t);
      await store.acme.createOrder(order('ord-1', ['az-a']), [authorization('az-a', 'a.internal')]);
      const before = await acmeCounts(store);
      await assert.rejects(
        store.acme.createOrder(order('ord-2', ['az-b'], { accountId: 'ghost' }), [
          authorization('az-b', 'b.internal', { accountId: 'ghost' }),
        ]),
        storeError('notFound', 'ghost'),
      );
      await assert.rejects(
        store.acme.createOrder(order('ord-1', ['az-b']), [authorization('az-b', 'b.internal')]),
        storeError('conflict', 'ord-1'),
      );
      await assert.rejects(
        store.acme.createOrder(order('ord-3', ['az-a']), [authorization('az-a', 'a.internal')]),
        storeError('conflict', 'az-a'),
      );
      assert.deepEqual(await acmeCounts(store), before);
    });

    it('RFC 9773: a certificate is replaced by one order unless that order became invalid', async (t) => {
      const store = await acmeStore(open, t);
      await store.acme.createOrder(order('ord-1', ['az-a'], { replaces: 'aki.abcd', replacesSerial: 'abcd' }), [
        authorization('az-a', 'a.internal'),
      ]);
      const before = await acmeCounts(store);
      await assert.rejects(
        store.acme.createOrder(order('ord-2', ['az-b'], { replaces: 'aki.abcd', replacesSerial: 'abcd' }), [
          authorization('az-b', 'b.internal'),
        ]),
        storeError('conflict', 'already replaced'),
      );
      assert.deepEqual(await acmeCounts(store), before);
      assert.equal(await store.acme.getOrder('ord-2'), null);
      assert.equal(await store.acme.getAuthorization('az-b'), null);

      // Once the first order failed, the certificate may be replaced again.
      assert.equal(
        await store.acme.transitionOrder('ord-1', 'pending', {
          status: 'invalid',
          error: problem('authorization failed'),
        }),
        true,
      );
      await store.acme.createOrder(order('ord-2', ['az-b'], { replaces: 'aki.abcd', replacesSerial: 'abcd' }), [
        authorization('az-b', 'b.internal'),
      ]);
      assert.equal((await store.acme.getOrder('ord-2'))?.replacesSerial, 'abcd');
      // Orders that replace nothing never clash.
      await store.acme.createOrder(order('ord-3', ['az-b']), []);
      await store.acme.createOrder(order('ord-4', ['az-b']), []);
    });

    it('transitionOrder is a compare-and-set that sets error and certificate serial only when given', async (t) => {
      const store = await acmeStore(open, t);
      await store.acme.createOrder(order('ord-1', ['az-a']), [authorization('az-a', 'a.internal')]);
      assert.equal(
        await store.acme.transitionOrder('ord-1', 'processing', { status: 'valid', certificateSerial: '01' }),
        false,
      );
      assert.equal((await store.acme.getOrder('ord-1'))?.status, 'pending');
      assert.equal(await store.acme.transitionOrder('ord-1', 'pending', { status: 'processing' }), true);
      assert.equal(
        await store.acme.transitionOrder('ord-1', 'pending', { status: 'processing' }),
        false,
        'a repeat loses',
      );
      assert.equal(
        await store.acme.transitionOrder('ord-1', 'processing', { status: 'valid', certificateSerial: '01' }),
        true,
      );
      const valid = await store.acme.getOrder('ord-1');
      assert.equal(valid?.status, 'valid');
      assert.equal(valid?.certificateSerial, '01');
      assert.equal(valid?.error, null);
      assert.equal(await store.acme.transitionOrder('nope', 'pending', { status: 'invalid' }), false);

      await store.acme.createOrder(order('ord-2', ['az-a']), []);
      assert.equal(
        await store.acme.transitionOrder('ord-2', 'pending', { status: 'invalid', error: problem('bad CSR') }),
        true,
      );
      assert.deepEqual((await store.acme.getOrder('ord-2'))?.error, problem('bad CSR'));
    });

    it('a certificate belongs to one order: finding it by serial, and refusing a second (conflict)', async (t) => {
      const store = await acmeStore(open, t);
      await store.acme.createOrder(order('ord-1', ['az-a']), [authorization('az-a', 'a.internal')]);
      await store.acme.createOrder(order('ord-2', ['az-a']), []);
      await store.acme.transitionOrder('ord-1', 'pending', { status: 'valid', certificateSerial: '0a' });
      assert.equal((await store.acme.getOrderByCertificate('0a'))?.id, 'ord-1');
      assert.deepEqual((await store.acme.getOrderByCertificate('0a'))?.authorizationIds, ['az-a']);
      assert.equal(await store.acme.getOrderByCertificate('0b'), null);
      await assert.rejects(
        store.acme.transitionOrder('ord-2', 'pending', { status: 'valid', certificateSerial: '0a' }),
        storeError('conflict', '0a'),
      );
      assert.equal((await store.acme.getOrder('ord-2'))?.status, 'pending');
    });

    it('lists an account’s orders newest first, limited, and counts those created since a time', async (t) => {
      const store = await acmeStore(open, t);
      await store.acme.createAccount(account('acct-2'));
      await store.acme.createOrder(order('ord-1', ['az-a'], { createdAt: minutes(1) }), [
        authorization('az-a', 'a.internal'),
      ]);
      await store.acme.createOrder(order('ord-3', ['az-a'], { createdAt: minutes(3) }), []);
      await store.acme.createOrder(order('ord-2', ['az-a'], { createdAt: minutes(2) }), []);
      await store.acme.createOrder(order('ord-x', ['az-x'], { accountId: 'acct-2', createdAt: minutes(4) }), [
        authorization('az-x', 'x.internal', { accountId: 'acct-2' }),
      ]);
      assert.deepEqual(
        (await store.acme.listOrders('acct-1', 10)).map((o) => o.id),
        ['ord-3', 'ord-2', 'ord-1'],
      );
      assert.deepEqual(
        (await store.acme.listOrders('acct-1', 2)).map((o) => o.id),
        ['ord-3', 'ord-2'],
      );
      assert.deepEqual((await store.acme.listOrders('acct-1', 1))[0]?.authorizationIds, ['az-a']);
      assert.deepEqual(await store.acme.listOrders('nobody', 10), []);
      await assert.rejects(store.acme.listOrders('acct-1', -1), RangeError);
      assert.equal(await store.acme.countOrdersSince('acct-1', t0), 3);
      assert.equal(await store.acme.countOrdersSince('acct-1', minutes(1)), 2);
      assert.equal(await store.acme.countOrdersSince('acct-1', minutes(3)), 0);
      assert.equal(await store.acme.countOrdersSince('acct-2', t0), 1);
    });

    it('findValidAuthorization: only valid, unexpired, same account, identifier and wildcard; longest-lived first', async (t) => {
      const store = await acmeStore(open, t);
      await store.acme.createAccount(account('acct-2'));
      const valid = (
        id: string,
        expires: Date,
        overrides: Partial<AcmeAuthorizationRecord> = {},
      ): AcmeAuthorizationRecord =>
        authorization(id, 'a.internal', {
          status: 'valid',
          expires,
          challenges: [challenge(`${id}-c`, id, { status: 'valid', validated: t0 })],
          ...overrides,
        });
      await store.acme.createOrder(
        order('ord-1', ['az-old', 'az-new', 'az-expired', 'az-pending', 'az-wild', 'az-ip']),
        [
          valid('az-old', minutes(60)),
          valid('az-new', minutes(120)),
          valid('az-expired', minutes(5)),
          authorization('az-pending', 'a.internal', { expires: minutes(600) }),
          valid('az-wild', minutes(600), { wildcard: true }),
          valid('az-ip', minutes(600), { identifier: { type: 'ip', value: 'a.internal' } }),
        ],
      );
      await store.acme.createOrder(order('ord-2', ['az-other'], { accountId: 'acct-2' }), [
        valid('az-other', minutes(900), { accountId: 'acct-2' }),
      ]);

      const dns = { type: 'dns', value: 'a.internal' } as const;
      const found = await store.acme.findValidAuthorization('acct-1', dns, false, minutes(10));
      assert.deepEqual(found, valid('az-new', minutes(120)));
      assert.equal((await store.acme.findValidAuthorization('acct-1', dns, true, minutes(10)))?.id, 'az-wild');
      assert.equal(
        (await store.acme.findValidAuthorization('acct-1', { type: 'ip', value: 'a.internal' }, false, minutes(10)))
          ?.id,
        'az-ip',
      );
      assert.equal((await store.acme.findValidAuthorization('acct-1', dns, false, minutes(1)))?.id, 'az-new');
      assert.equal(
        await store.acme.findValidAuthorization('acct-1', dns, false, minutes(120)),
        null,
        'expires must be after now',
      );
      assert.equal(
        await store.acme.findValidAuthorization('acct-1', { type: 'dns', value: 'b.internal' }, false, t0),
        null,
      );
      await store.acme.setAuthorizationStatus('az-new', 'deactivated');
      assert.equal((await store.acme.findValidAuthorization('acct-1', dns, false, minutes(10)))?.id, 'az-old');
      await assert.rejects(store.acme.setAuthorizationStatus('nope', 'revoked'), storeError('notFound', 'nope'));
    });
  });

  describe(`${engine} store: ACME challenges`, () => {
    it('startChallenge moves pending to processing once', async (t) => {
      const store = await acmeStore(open, t);
      await store.acme.createOrder(order('ord-1', ['az-a']), [authorization('az-a', 'a.internal')]);
      assert.equal(await store.acme.startChallenge('az-a-http'), true);
      assert.equal((await store.acme.getChallenge('az-a-http'))?.status, 'processing');
      assert.equal(await store.acme.startChallenge('az-a-http'), false);
      assert.equal(await store.acme.startChallenge('nope'), false);
    });

    it('a successful validation makes the challenge and its authorization valid, with the new expiry', async (t) => {
      const store = await acmeStore(open, t);
      await store.acme.createOrder(order('ord-1', ['az-a']), [
        authorization('az-a', 'a.internal', { expires: minutes(60) }),
      ]);
      await store.acme.startChallenge('az-a-http');
      await store.acme.finishChallenge('az-a-http', {
        valid: true,
        at: minutes(2),
        authorizationExpires: minutes(30 * 24 * 60),
      });
      const authz = await store.acme.getAuthorization('az-a');
      assert.equal(authz?.status, 'valid');
      assert.deepEqual(authz?.expires, minutes(30 * 24 * 60));
      assert.deepEqual(authz?.challenges, [
        challenge('az-a-http', 'az-a', { status: 'valid', validated: minutes(2) }),
        challenge('az-a-dns', 'az-a', { type: 'dns-01' }),
      ]);
      await assert.rejects(
        store.acme.finishChallenge('az-a-http', { valid: false, at: minutes(3), error: problem('late') }),
        storeError('conflict', 'already valid'),
      );
      await assert.rejects(
        store.acme.finishChallenge('nope', { valid: false, at: minutes(3), error: problem('x') }),
        storeError('notFound', 'nope'),
      );
    });

    it('a failed validation makes the challenge invalid with its problem, and its authorization invalid', async (t) => {
      const store = await acmeStore(open, t);
      await store.acme.createOrder(order('ord-1', ['az-a']), [
        authorization('az-a', 'a.internal', { expires: minutes(60) }),
      ]);
      await store.acme.startChallenge('az-a-dns');
      await store.acme.finishChallenge('az-a-dns', { valid: false, at: minutes(2), error: problem('no TXT record') });
      assert.deepEqual(
        await store.acme.getChallenge('az-a-dns'),
        challenge('az-a-dns', 'az-a', {
          type: 'dns-01',
          status: 'invalid',
          validated: minutes(2),
          error: problem('no TXT record'),
        }),
      );
      const authz = await store.acme.getAuthorization('az-a');
      assert.equal(authz?.status, 'invalid');
      assert.deepEqual(authz?.expires, minutes(60));
    });

    it('an authorization deactivated during validation stays deactivated', async (t) => {
      const store = await acmeStore(open, t);
      await store.acme.createOrder(order('ord-1', ['az-a']), [authorization('az-a', 'a.internal')]);
      await store.acme.startChallenge('az-a-http');
      await store.acme.setAuthorizationStatus('az-a', 'deactivated');
      await store.acme.finishChallenge('az-a-http', {
        valid: true,
        at: minutes(2),
        authorizationExpires: minutes(600),
      });
      assert.equal((await store.acme.getAuthorization('az-a'))?.status, 'deactivated');
      assert.equal(
        await store.acme.findValidAuthorization('acct-1', { type: 'dns', value: 'a.internal' }, false, t0),
        null,
      );
    });

    it('counts an account’s failed validations after a time', async (t) => {
      const store = await acmeStore(open, t);
      await store.acme.createAccount(account('acct-2'));
      await store.acme.createOrder(order('ord-1', ['az-a', 'az-b', 'az-c']), [
        authorization('az-a', 'a.internal'),
        authorization('az-b', 'b.internal'),
        authorization('az-c', 'c.internal'),
      ]);
      await store.acme.createOrder(order('ord-x', ['az-x'], { accountId: 'acct-2' }), [
        authorization('az-x', 'x.internal', { accountId: 'acct-2' }),
      ]);
      await store.acme.finishChallenge('az-a-http', { valid: false, at: minutes(1), error: problem('1') });
      await store.acme.finishChallenge('az-b-http', { valid: false, at: minutes(5), error: problem('2') });
      await store.acme.finishChallenge('az-c-http', {
        valid: true,
        at: minutes(6),
        authorizationExpires: minutes(600),
      });
      await store.acme.finishChallenge('az-x-http', { valid: false, at: minutes(6), error: problem('3') });
      assert.equal(await store.acme.countFailedValidationsSince('acct-1', t0), 2);
      assert.equal(await store.acme.countFailedValidationsSince('acct-1', minutes(1)), 1);
      assert.equal(await store.acme.countFailedValidationsSince('acct-1', minutes(5)), 0);
      assert.equal(await store.acme.countFailedValidationsSince('acct-2', t0), 1);
    });
  });
}
