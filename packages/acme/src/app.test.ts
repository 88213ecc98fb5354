import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { FlattenedSign } from 'jose';
import { nameToString, readCertificates } from '@shortleaf/pki';
import {
  BASE,
  MAX_BODY_BYTES,
  assertAcmeHeaders,
  b64url,
  createAcmeHarness,
  expectProblem,
  makeCsr,
  newKey,
  rawJws,
  read,
  signRaw,
  type AcmeClient,
  type AcmeHarness,
  type AuthorizationBody,
  type ChallengeBody,
  type OrderBody,
} from './test-fixtures.js';

/** A positive integer of exactly `bits` bits, odd: an RSA modulus or exponent no key generator makes. */
function oddOfBits(bits: number): Uint8Array {
  const bytes = randomBytes(Math.ceil(bits / 8));
  const top = (bits - 1) % 8;
  bytes[0] = (bytes[0]! & ((1 << (top + 1)) - 1)) | (1 << top);
  bytes[bytes.length - 1]! |= 1;
  return new Uint8Array(bytes);
}

describe('ACME server', () => {
  let h: AcmeHarness;
  before(async () => {
    h = await createAcmeHarness();
  });
  after(() => h.close());

  describe('directory and nonces', () => {
    it('lists every resource, renewalInfo included, and says EAB is not required', async () => {
      const res = await h.app.request(`${BASE}/acme/acme/directory`);
      assertAcmeHeaders(res, 'acme');
      const { status, body } = await read<Record<string, unknown>>(res);
      assert.equal(status, 200);
      const root = `${BASE}/acme/acme`;
      assert.deepEqual(body, {
        newNonce: `${root}/new-nonce`,
        newAccount: `${root}/new-account`,
        newOrder: `${root}/new-order`,
        revokeCert: `${root}/revoke-cert`,
        keyChange: `${root}/key-change`,
        renewalInfo: `${root}/renewal-info`,
        meta: { externalAccountRequired: false },
      });
    });

    it('answers new-nonce: HEAD 200, GET 204, each with a different nonce, not cached', async () => {
      const head = await h.app.request(`${BASE}/acme/acme/new-nonce`, { method: 'HEAD' });
      const get = await h.app.request(`${BASE}/acme/acme/new-nonce`);
      assert.equal(head.status, 200);
      assert.equal(get.status, 204);
      for (const res of [head, get]) {
        assertAcmeHeaders(res, 'acme');
        assert.equal(res.headers.get('cache-control'), 'no-store');
      }
      assert.notEqual(head.headers.get('replay-nonce'), get.headers.get('replay-nonce'));
    });

    it('refuses an unknown provisioner with 404 (and still a nonce)', async () => {
      const res = await h.app.request(`${BASE}/acme/nobody/directory`);
      const reply = await read(res);
      expectProblem(reply, 404, 'malformed', 'no ACME provisioner named "nobody"');
      assert.match(res.headers.get('replay-nonce') ?? '', /^[A-Za-z0-9_-]{22}$/);
    });
  });

  it('runs the whole flow: account, order, http-01, finalize, certificate, orders list', async () => {
    const client = await h.client();
    const created = await client.newAccount();
    assert.equal(created.status, 201, created.text);
    assert.match(client.kid ?? '', new RegExp(`^${BASE}/acme/acme/account/[A-Za-z0-9_-]{22}$`));
    assert.equal(created.body.status, 'valid');
    assert.deepEqual(created.body.contact, ['mailto:ops@example.com']);
    const kid = client.kid;

    const again = await client.newAccount();
    assert.equal(again.status, 200);
    assert.equal(again.headers.get('location'), kid);

    const stranger = await h.client();
    expectProblem(
      await stranger.newAccount({ onlyReturnExisting: true }),
      400,
      'accountDoesNotExist',
      'no account exists for this key',
    );

    const order = await client.newOrder(['svc1.test']);
    assert.equal(order.status, 201, order.text);
    assert.match(order.location, new RegExp(`^${BASE}/acme/acme/order/`));
    assert.equal(order.body.status, 'pending');
    assert.equal(order.headers.get('retry-after'), '1');
    assert.deepEqual(order.body.identifiers, [{ type: 'dns', value: 'svc1.test' }]);
    assert.equal(order.body.authorizations.length, 1);
    assert.equal(order.body.finalize, `${order.location}/finalize`);

    const authzUrl = order.body.authorizations[0]!;
    const authz = await client.get<AuthorizationBody>(authzUrl);
    assert.equal(authz.body.status, 'pending');
    assert.deepEqual(authz.body.identifier, { type: 'dns', value: 'svc1.test' });
    assert.deepEqual(authz.body.challenges.map((c) => c.type).sort(), ['dns-01', 'http-01', 'tls-alpn-01']);
    const http01 = authz.body.challenges.find((c) => c.type === 'http-01')!;
    h.responses.set(http01.token, await client.keyAuthorization(http01.token));
    const started = await client.post<ChallengeBody>(http01.url, {});
    assert.equal(started.status, 200);
    assert.equal(started.body.status, 'processing');
    assert.equal(started.headers.get('retry-after'), '1');
    assert.ok(started.headers.get('link')?.includes(`<${authzUrl}>;rel="up"`));
    const valid = await client.poll(authzUrl);
    assert.equal(valid.status, 'valid');
    // RFC 8555 §7.1.4: a valid authorization lists only the challenge that succeeded.
    assert.deepEqual(
      valid.challenges.map((c) => [c.type, c.status]),
      [['http-01', 'valid']],
    );
    assert.ok(valid.challenges[0]!.validated !== undefined);

    const ready = await client.get<OrderBody>(order.location);
    assert.equal(ready.body.status, 'ready');
    assert.equal(ready.headers.get('retry-after'), null);

    const finalized = await client.finalize(ready.body, makeCsr(['svc1.test']).der);
    assert.equal(finalized.status, 200, finalized.text);
    assert.equal(finalized.body.status, 'valid');
    assert.match(finalized.body.certificate ?? '', new RegExp(`^${BASE}/acme/acme/cert/[0-9a-f]+$`));

    const download = await client.get<null>(finalized.body.certificate!);
    assert.equal(download.status, 200);
    assert.equal(download.headers.get('content-type'), 'application/pem-certificate-chain');
    const chain = readCertificates(download.text);
    assert.equal(chain.length, 2);
    assert.deepEqual(chain[0]!.names.map(nameToString), ['dns:svc1.test']);
    assert.ok(Buffer.from(chain[1]!.der).equals(h.ca.intermediateDer));

    const list = await client.get<{ orders: string[] }>(`${kid}/orders`);
    assert.equal(list.status, 200);
    assert.deepEqual(list.body.orders, [order.location]);
  });

  describe('the request pipeline (RFC 8555 §6)', () => {
    let client: AcmeClient;
    before(async () => {
      client = await h.client();
      assert.equal((await client.newAccount()).status, 201);
    });
    const newOrderUrl = () => client.url('new-order');
    const order = { identifiers: [{ type: 'dns', value: 'svc1.test' }] };

    it('refuses a replayed nonce with badNonce and a fresh nonce', async () => {
      const body = await client.sign(newOrderUrl(), order);
      assert.equal((await client.send(newOrderUrl(), body)).status, 201);
      const replay = await client.send(newOrderUrl(), body);
      expectProblem(replay, 400, 'badNonce', 'already used');
      const used = JSON.parse(
        Buffer.from((JSON.parse(body) as { protected: string }).protected, 'base64url').toString(),
      ) as { nonce: string };
      assert.notEqual(replay.headers.get('replay-nonce'), used.nonce);
      // The nonce of the error works.
      assert.equal(
        (await client.post(newOrderUrl(), order, { nonce: replay.headers.get('replay-nonce') })).status,
        201,
      );
    });

    it('refuses a request without a nonce', async () => {
      expectProblem(await client.post(newOrderUrl(), order, { nonce: null }), 400, 'badNonce', 'must carry a "nonce"');
    });

    it('refuses a nonce it never issued', async () => {
      expectProblem(
        await client.post(newOrderUrl(), order, { nonce: 'AAAAAAAAAAAAAAAAAAAAAA' }),
        400,
        'badNonce',
        'not issued here',
      );
    });

    it('refuses a url that is not the request URL', async () => {
      expectProblem(
        await client.post(newOrderUrl(), order, { url: client.url('new-account') }),
        403,
        'unauthorized',
        'does not match the request URL',
      );
    });

    it('refuses a kid naming no account', async () => {
      const ghost = await h.client();
      ghost.kid = `${BASE}/acme/acme/account/nobody`;
      expectProblem(await ghost.post(ghost.url('new-order'), order), 400, 'accountDoesNotExist', 'account/nobody');
    });

    it('refuses an account of another provisioner', async () => {
      await h.addProvisioner('other');
      const other = await h.client('other');
      other.kid = client.kid;
      expectProblem(await other.post(other.url('new-order'), order), 400, 'accountDoesNotExist', 'at this provisioner');
    });

    it('refuses an embedded jwk where the account kid is required', async () => {
      expectProblem(await client.post(newOrderUrl(), order, { jwk: true }), 400, 'malformed', 'named with "kid"');
    });

    it('refuses a kid on newAccount', async () => {
      const reply = await client.send(
        client.url('new-account'),
        await client.sign(client.url('new-account'), { termsOfServiceAgreed: true }),
      );
      expectProblem(reply, 400, 'malformed', 'as "jwk", not "kid"');
    });

    for (const alg of ['HS256', 'PS256', 'none']) {
      it(`refuses alg ${alg} with badSignatureAlgorithm`, async () => {
        const body = rawJws({ alg, nonce: await client.nonce(), url: newOrderUrl(), kid: client.kid }, order);
        const problem = expectProblem(
          await client.send(newOrderUrl(), body),
          400,
          'badSignatureAlgorithm',
          `"${alg}" is not supported`,
        );
        // RFC 8555 §6.2: the problem MUST list the accepted algorithms in an "algorithms" array.
        assert.deepEqual((problem as { algorithms?: unknown }).algorithms, ['ES256', 'ES384', 'RS256', 'EdDSA']);
      });
    }

    it('refuses a signature that does not verify', async () => {
      const jws = JSON.parse(await client.sign(newOrderUrl(), order)) as { signature: string };
      const sig = Buffer.from(jws.signature, 'base64url');
      sig[5]! ^= 0x01;
      jws.signature = sig.toString('base64url');
      expectProblem(await client.send(newOrderUrl(), JSON.stringify(jws)), 400, 'malformed', 'does not verify');
    });

    it('refuses a request signed by another key under this kid', async () => {
      expectProblem(
        await client.post(newOrderUrl(), order, { key: await newKey() }),
        400,
        'malformed',
        'does not verify',
      );
    });

    it('accepts ES384, RS256 and EdDSA account keys', async () => {
      for (const alg of ['ES384', 'RS256', 'EdDSA'] as const) {
        const other = await h.client();
        other.key = await newKey(alg);
        assert.equal((await other.newAccount()).status, 201, alg);
        assert.equal((await other.newOrder(['svc3.test'])).status, 201, alg);
      }
    });

    it('refuses a key that does not fit its alg, and an RSA key under 2048 bits, with badPublicKey', async () => {
      const fresh = await h.client();
      const url = fresh.url('new-account');
      const p384 = await newKey('ES384');
      expectProblem(
        await fresh.send(url, rawJws({ alg: 'ES256', nonce: await fresh.nonce(), url, jwk: p384.publicJwk }, {})),
        400,
        'badPublicKey',
        'does not fit algorithm ES256',
      );
      const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
      const rsa1024 = publicKey.export({ format: 'jwk' });
      expectProblem(
        await fresh.send(url, rawJws({ alg: 'RS256', nonce: await fresh.nonce(), url, jwk: rsa1024 }, {})),
        400,
        'badPublicKey',
        'at least 2048 bits',
      );
    });

    // Hole 10: a huge public exponent makes each RSA verification cost milliseconds. The JWS
    // signatures below are garbage: badPublicKey (not a `malformed` signature failure) shows the
    // key was refused before any verification ran.
    it('refuses an RSA account key with an exponent other than 65537, or over 8192 bits, before verifying', async () => {
      const fresh = await h.client();
      const url = fresh.url('new-account');
      const hugeExponent = { kty: 'RSA', n: b64url(oddOfBits(3072)), e: b64url(oddOfBits(3064)) };
      expectProblem(
        await fresh.send(
          url,
          rawJws({ alg: 'RS256', nonce: await fresh.nonce(), url, jwk: hugeExponent }, {}, b64url(randomBytes(384))),
        ),
        400,
        'badPublicKey',
        'exponent must be 65537',
      );
      const three = { kty: 'RSA', n: b64url(oddOfBits(2048)), e: 'Aw' };
      expectProblem(
        await fresh.send(
          url,
          rawJws({ alg: 'RS256', nonce: await fresh.nonce(), url, jwk: three }, {}, b64url(randomBytes(256))),
        ),
        400,
        'badPublicKey',
        'exponent must be 65537',
      );
      const huge = { kty: 'RSA', n: b64url(oddOfBits(8200)), e: 'AQAB' };
      expectProblem(
        await fresh.send(
          url,
          rawJws({ alg: 'RS256', nonce: await fresh.nonce(), url, jwk: huge }, {}, b64url(randomBytes(1025))),
        ),
        400,
        'badPublicKey',
        'larger than 8192 bits',
      );
    });

    // RFC 7515 §4.1.11: a JWS whose `crit` lists an extension the recipient does not understand
    // is invalid, and this server understands no extension (jws.ts checkHeader).
    it('refuses a protected header with an unknown critical extension', async () => {
      const body = signRaw(
        {
          alg: 'ES256',
          nonce: await client.nonce(),
          url: newOrderUrl(),
          kid: client.kid,
          crit: ['shortleaf-test'],
          'shortleaf-test': true,
        },
        order,
        client.key,
      );
      expectProblem(await client.send(newOrderUrl(), body), 400, 'malformed', 'crit');
    });

    it('refuses a jwk carrying private key material', async () => {
      const key = await newKey();
      const fresh = await h.client();
      const url = fresh.url('new-account');
      const privateJwk = { ...key.publicJwk, d: 'AAAA' };
      const body = await new FlattenedSign(new TextEncoder().encode('{}'))
        .setProtectedHeader({ alg: 'ES256', nonce: await fresh.nonce(), url, jwk: privateJwk })
        .sign(key.privateKey);
      expectProblem(await fresh.send(url, JSON.stringify(body)), 400, 'badPublicKey', 'private key material');
    });

    it('refuses another content type with 415 malformed', async () => {
      const reply = await client.send(newOrderUrl(), await client.sign(newOrderUrl(), order), {
        'content-type': 'application/json',
      });
      expectProblem(reply, 415, 'malformed', 'application/jose+json');
    });

    it('refuses a body that is not JSON, or not a flattened JWS', async () => {
      expectProblem(await client.send(newOrderUrl(), '{"protected":'), 400, 'malformed', 'not valid JSON');
      const jws = JSON.parse(await client.sign(newOrderUrl(), order)) as Record<string, unknown>;
      expectProblem(
        await client.send(newOrderUrl(), JSON.stringify({ ...jws, header: { kid: 'x' } })),
        400,
        'malformed',
        'unprotected header',
      );
    });

    it('refuses an oversized body, with or without Content-Length', async () => {
      const big = await client.sign(newOrderUrl(), { ...order, padding: 'x'.repeat(MAX_BODY_BYTES) });
      expectProblem(
        await client.send(newOrderUrl(), big, { 'content-length': String(Buffer.byteLength(big)) }),
        400,
        'malformed',
        `larger than ${MAX_BODY_BYTES} bytes`,
      );
      const stream = new Blob([big]).stream();
      const reply = await client.request(newOrderUrl(), {
        method: 'POST',
        headers: { 'content-type': 'application/jose+json' },
        body: stream,
        duplex: 'half',
      } as RequestInit);
      expectProblem(reply, 400, 'malformed', `larger than ${MAX_BODY_BYTES} bytes`);
    });

    it('refuses a payload nested too deeply, and one that is not an object', async () => {
      let deep: unknown = 'x';
      for (let i = 0; i < 12; i++) deep = { d: deep };
      expectProblem(await client.post(newOrderUrl(), { identifiers: [], deep }), 400, 'malformed', 'nests deeper');
      expectProblem(await client.post(newOrderUrl(), [1, 2]), 400, 'malformed', 'must be a JSON object');
    });

    it('answers GET on an order with 405', async () => {
      const created = await client.newOrder(['svc2.test']);
      const reply = await client.request(created.location);
      expectProblem(reply, 405, 'malformed', 'POST-as-GET');
      assert.equal(reply.headers.get('allow'), 'POST');
    });

    it('answers an unknown path with 404', async () => {
      expectProblem(await client.post(client.url('no-such-thing'), ''), 404, 'malformed', 'no ACME resource');
    });
  });
});
