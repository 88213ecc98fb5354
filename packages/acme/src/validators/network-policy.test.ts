import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { createValidator } from './index.js';
import { DEFAULT_DENY_NETWORKS } from './network-policy.js';
import { assertAcmeError, challengeFor, closeServer, listen, testConfig } from './test-fixtures.js';

/** A loopback site that answers every path with a redirect to `location`, counting requests. */
function redirectingSite(location: () => string): { server: Server; requests: () => number } {
  let count = 0;
  const server = createServer((_req, res) => {
    count++;
    res.writeHead(302, { location: location() }).end();
  });
  return { server, requests: () => count };
}

describe('validation network policy', () => {
  let site: ReturnType<typeof redirectingSite>;
  let port: number;
  let target = 'http://169.254.169.254/latest/meta-data/';

  before(async () => {
    site = redirectingSite(() => target);
    port = await listen(site.server);
  });
  after(() => closeServer(site.server));

  test('by default refuses link-local, the metadata address and their IPv4-mapped forms', () => {
    assert.deepEqual(DEFAULT_DENY_NETWORKS, ['169.254.0.0/16', 'fe80::/10']);
  });

  test('a hosts entry mapping a name to 169.254.169.254 is refused without any connection attempt', async () => {
    // A connection attempt to an unroutable address would take the whole timeout and fail as `connection`.
    const validate = createValidator(testConfig({ httpPort: port, tlsPort: port, hosts: { 'meta.test': '169.254.169.254' }, timeoutMs: 5_000 }));
    for (const type of ['http-01', 'tls-alpn-01'] as const) {
      const started = Date.now();
      await assertAcmeError(validate(challengeFor(type, 'meta.test')), 'rejectedIdentifier', '169.254.169.254', 'meta.test', '169.254.0.0/16', 'acme.validation.denyNetworks');
      assert.ok(Date.now() - started < 500, `${type} refused in ${Date.now() - started} ms`);
    }
  });

  test('a denied address is never dialled: a denied loopback site sees no request', async () => {
    const validate = createValidator(testConfig({ httpPort: port, hosts: { 'site.test': '127.0.0.1' }, denyNetworks: ['127.0.0.0/8'] }));
    const before = site.requests();
    await assertAcmeError(validate(challengeFor('http-01', 'site.test')), 'rejectedIdentifier', '127.0.0.1', '127.0.0.0/8');
    await assertAcmeError(validate(challengeFor('http-01', '127.0.0.1', 'ip')), 'rejectedIdentifier', '127.0.0.1');
    assert.equal(site.requests(), before);
  });

  test('IP literals are checked too, including the IPv4-mapped IPv6 form of the metadata address', async () => {
    const validate = createValidator(testConfig({ httpPort: port, tlsPort: port }));
    await assertAcmeError(validate(challengeFor('http-01', '169.254.169.254', 'ip')), 'rejectedIdentifier', '169.254.169.254');
    await assertAcmeError(validate(challengeFor('http-01', '::ffff:169.254.169.254', 'ip')), 'rejectedIdentifier', '169.254.0.0/16');
    await assertAcmeError(validate(challengeFor('tls-alpn-01', 'fe80::1', 'ip')), 'rejectedIdentifier', 'fe80::/10');
  });

  test('a redirect from an allowed loopback site to http://169.254.169.254/ is refused', async () => {
    target = 'http://169.254.169.254/latest/meta-data/';
    const validate = createValidator(testConfig({ httpPort: port, hosts: { 'site.test': '127.0.0.1' } }));
    const before = site.requests();
    await assertAcmeError(validate(challengeFor('http-01', 'site.test')), 'rejectedIdentifier', '169.254.169.254', 'denyNetworks');
    assert.equal(site.requests(), before + 1, 'the first hop is fetched, the redirect is not followed');
  });

  test('a redirect to a name the hosts map points at a denied address is refused', async () => {
    target = `http://internal.test:${port}/x`;
    const validate = createValidator(testConfig({ httpPort: port, hosts: { 'site.test': '127.0.0.1', 'internal.test': '169.254.10.20' } }));
    await assertAcmeError(validate(challengeFor('http-01', 'site.test')), 'rejectedIdentifier', '169.254.10.20', 'internal.test');
  });

  test('with allowNetworks 127.0.0.0/8, a name resolving to ::1 is refused', async () => {
    const validate = createValidator(testConfig({ httpPort: port, tlsPort: port, hosts: { 'six.test': '::1', 'four.test': '127.0.0.1' }, allowNetworks: ['127.0.0.0/8'] }));
    for (const type of ['http-01', 'tls-alpn-01'] as const) {
      await assertAcmeError(validate(challengeFor(type, 'six.test')), 'rejectedIdentifier', '::1', 'outside acme.validation.allowNetworks (127.0.0.0/8)');
    }
    // Inside the allow-list the site is dialled (and redirects, here to a refused address).
    target = 'http://169.254.169.254/';
    const before = site.requests();
    await assertAcmeError(validate(challengeFor('http-01', 'four.test')), 'rejectedIdentifier', '169.254.169.254');
    assert.equal(site.requests(), before + 1);
  });

  test('a network that is not a CIDR fails at startup, naming the key', () => {
    assert.throws(() => createValidator(testConfig({ denyNetworks: ['10.0.0.0/33'] })), /acme\.validation\.denyNetworks: "10\.0\.0\.0\/33"/);
    assert.throws(() => createValidator(testConfig({ allowNetworks: ['nope'] })), /acme\.validation\.allowNetworks/);
  });
});
