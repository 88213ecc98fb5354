import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createValidator } from './index.js';
import { DEFAULT_DENY_NETWORKS, createNetworkPolicy } from './network-policy.js';
import { assertAcmeError, challengeFor, closeServer, listen, startChallTestSrv, testConfig } from './test-fixtures.js';

/** A loopback site that answers every path with a redirect to `location`, counting requests. */
function redirectingSite(location: () => string): { server: Server; requests: () => number } {
  let count = 0;
  const server = createServer((_req, res) => {
    count++;
    res.writeHead(302, { location: location() }).end();
  });
  return { server, requests: () => count };
}

/** A TCP listener that counts connections and closes them: the proof that nothing was dialled. */
function countingListener(): { server: TcpServer; connections: () => number } {
  let count = 0;
  const server = createTcpServer((socket) => {
    count++;
    socket.destroy();
  });
  return { server, connections: () => count };
}

/** Everything allowed: no deny list, every address in the allow list. */
const OPEN = { denyNetworks: [], allowNetworks: ['0.0.0.0/0', '::/0'] };

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
    const validate = createValidator(
      testConfig({ httpPort: port, tlsPort: port, hosts: { 'meta.test': '169.254.169.254' }, timeoutMs: 5_000 }),
    );
    for (const type of ['http-01', 'tls-alpn-01'] as const) {
      const started = Date.now();
      await assertAcmeError(
        validate(challengeFor(type, 'meta.test')),
        'rejectedIdentifier',
        '169.254.169.254',
        'meta.test',
        'link-local',
        '169.254.0.0/16',
      );
      assert.ok(Date.now() - started < 500, `${type} refused in ${Date.now() - started} ms`);
    }
  });

  test('a denied address is never dialled: a denied loopback site sees no request', async () => {
    const validate = createValidator(
      testConfig({ httpPort: port, hosts: { 'site.test': '127.0.0.1' }, denyNetworks: ['127.0.0.0/8'] }),
    );
    const before = site.requests();
    await assertAcmeError(
      validate(challengeFor('http-01', 'site.test')),
      'rejectedIdentifier',
      '127.0.0.1',
      '127.0.0.0/8',
      'acme.validation.denyNetworks',
    );
    await assertAcmeError(validate(challengeFor('http-01', '127.0.0.1', 'ip')), 'rejectedIdentifier', '127.0.0.1');
    await assertAcmeError(
      validate(challengeFor('http-01', '::ffff:127.0.0.1', 'ip')),
      'rejectedIdentifier',
      '127.0.0.0/8',
    );
    assert.equal(site.requests(), before);
  });

  test('IP literals are checked too, including the IPv4-mapped IPv6 form of the metadata address', async () => {
    const validate = createValidator(testConfig({ httpPort: port, tlsPort: port }));
    await assertAcmeError(
      validate(challengeFor('http-01', '169.254.169.254', 'ip')),
      'rejectedIdentifier',
      '169.254.169.254',
    );
    await assertAcmeError(
      validate(challengeFor('http-01', '::ffff:169.254.169.254', 'ip')),
      'rejectedIdentifier',
      '169.254.0.0/16',
    );
    await assertAcmeError(validate(challengeFor('tls-alpn-01', 'fe80::1', 'ip')), 'rejectedIdentifier', 'fe80::/10');
  });

  test('a redirect from an allowed loopback site to http://169.254.169.254/ is refused, without naming where it led', async () => {
    target = 'http://169.254.169.254/latest/meta-data/';
    const validate = createValidator(testConfig({ httpPort: port, hosts: { 'site.test': '127.0.0.1' } }));
    const before = site.requests();
    const error = await assertAcmeError(
      validate(challengeFor('http-01', 'site.test')),
      'rejectedIdentifier',
      'redirect 1 from http://site.test',
      'does not connect to',
    );
    assert.ok(!error.message.includes('169.254'), error.message);
    assert.equal(site.requests(), before + 1, 'the first hop is fetched, the redirect is not followed');
  });

  test('a redirect to a name the hosts map points at a denied address is refused, naming neither', async () => {
    target = `http://internal.test:${port}/x`;
    const validate = createValidator(
      testConfig({ httpPort: port, hosts: { 'site.test': '127.0.0.1', 'internal.test': '169.254.10.20' } }),
    );
    const error = await assertAcmeError(
      validate(challengeFor('http-01', 'site.test')),
      'rejectedIdentifier',
      'redirect 1 from',
    );
    assert.ok(!/169\.254|internal\.test/.test(error.message), error.message);
  });

  test('every hop is checked: an allowed first redirect, then one to a denied address over http or https', async () => {
    let last = '';
    const fetched: string[] = [];
    const chain = createServer((req, res) => {
      fetched.push(req.url ?? '');
      res.writeHead(302, { location: req.url === '/2' ? last : `http://hop.test:${chainPort}/2` }).end();
    });
    const chainPort = await listen(chain);
    // The denied address listens on the same port, for http and https alike: reaching it would count.
    const denied = countingListener();
    await new Promise<void>((resolve, reject) =>
      denied.server.once('error', reject).listen(chainPort, '127.0.0.2', () => resolve()),
    );
    try {
      const hosts = { 'site.test': '127.0.0.1', 'hop.test': '127.0.0.1', 'denied.test': '127.0.0.2' };
      const validate = createValidator(
        testConfig({ httpPort: chainPort, tlsPort: chainPort, hosts, denyNetworks: ['127.0.0.2/32'] }),
      );
      for (const to of [
        'http://denied.test/x',
        'https://denied.test/x',
        `http://127.0.0.2:${chainPort}/x`,
        'http://[::ffff:127.0.0.2]/x',
      ]) {
        last = to;
        fetched.length = 0;
        await assertAcmeError(validate(challengeFor('http-01', 'site.test')), 'rejectedIdentifier', 'redirect 2 from');
        assert.equal(fetched.length, 2, `${to}: two hops fetched, the third refused`);
      }
      assert.equal(denied.connections(), 0);
    } finally {
      await closeServer(denied.server);
      await closeServer(chain);
    }
  });

  test('with allowNetworks 127.0.0.0/8, a name resolving to ::1 is refused', async () => {
    const validate = createValidator(
      testConfig({
        httpPort: port,
        tlsPort: port,
        hosts: { 'six.test': '::1', 'four.test': '127.0.0.1' },
        allowNetworks: ['127.0.0.0/8'],
      }),
    );
    for (const type of ['http-01', 'tls-alpn-01'] as const) {
      await assertAcmeError(
        validate(challengeFor(type, 'six.test')),
        'rejectedIdentifier',
        '::1',
        'outside acme.validation.allowNetworks (127.0.0.0/8)',
      );
    }
    // Inside the allow-list the site is dialled (and redirects, here to a refused address).
    target = 'http://169.254.169.254/';
    const before = site.requests();
    await assertAcmeError(validate(challengeFor('http-01', 'four.test')), 'rejectedIdentifier', 'redirect 1 from');
    assert.equal(site.requests(), before + 1);
  });

  test('a network that is not a CIDR fails at startup, naming the key', () => {
    assert.throws(
      () => createValidator(testConfig({ denyNetworks: ['10.0.0.0/33'] })),
      /acme\.validation\.denyNetworks: "10\.0\.0\.0\/33"/,
    );
    assert.throws(() => createValidator(testConfig({ allowNetworks: ['nope'] })), /acme\.validation\.allowNetworks/);
  });
});

// Linux dials 0.0.0.0 and :: as the local machine (the socket's peer reads 127.0.0.1 or ::1), so
// an identifier or DNS answer of an unspecified address reached loopback even with loopback
// denied. These tests keep every connection on loopback: listeners on 127.0.0.1 and ::1 that
// must see no connection, under a configuration that allows every address.
describe('addresses validation never dials, whatever the configuration', () => {
  let v4: ReturnType<typeof countingListener>;
  let v6: ReturnType<typeof countingListener>;
  let v4Port: number;
  let v6Port: number;

  before(async () => {
    v4 = countingListener();
    v4Port = await listen(v4.server, '127.0.0.1');
    v6 = countingListener();
    v6Port = await listen(v6.server, '::1');
  });
  after(async () => {
    await closeServer(v4.server);
    await closeServer(v6.server);
  });

  test('the configuration really lets loopback through: 127.0.0.1 and ::1 are dialled', async () => {
    const validate = createValidator(testConfig({ httpPort: v4Port, tlsPort: v4Port, ...OPEN }));
    await assertAcmeError(validate(challengeFor('http-01', '127.0.0.1', 'ip')), 'connection');
    assert.equal(v4.connections(), 1);
    await assertAcmeError(
      createValidator(testConfig({ httpPort: v6Port, ...OPEN }))(challengeFor('http-01', '::1', 'ip')),
      'connection',
    );
    assert.equal(v6.connections(), 1);
  });

  test('an identifier of 0.0.0.0, ::, ::ffff:0.0.0.0 or ::0.0.0.2 is refused before connecting, for http-01 and tls-alpn-01', async () => {
    const [before4, before6] = [v4.connections(), v6.connections()];
    for (const [address, listenerPort] of [
      ['0.0.0.0', v4Port],
      ['::ffff:0.0.0.0', v4Port],
      ['::', v6Port],
      ['::0.0.0.2', v6Port],
    ] as const) {
      const validate = createValidator(testConfig({ httpPort: listenerPort, tlsPort: listenerPort, ...OPEN }));
      for (const type of ['http-01', 'tls-alpn-01'] as const) {
        await assertAcmeError(
          validate(challengeFor(type, address, 'ip')),
          'rejectedIdentifier',
          'unspecified',
          'whatever acme.validation allows',
        );
      }
    }
    assert.deepEqual([v4.connections(), v6.connections()], [before4, before6]);
  });

  test('a name the hosts map or DNS answers with 0.0.0.0 or :: is refused before connecting', async () => {
    const dns = await startChallTestSrv();
    try {
      await dns.manage('/add-a', { host: 'zero.test.', addresses: ['0.0.0.0'] });
      const before4 = v4.connections();
      const hosts = { 'zero-hosts.test': '0.0.0.0', 'mapped-hosts.test': '::ffff:0.0.0.0' };
      const validate = createValidator(
        testConfig({ httpPort: v4Port, tlsPort: v4Port, hosts, dnsResolver: dns.resolver, ...OPEN }),
      );
      for (const name of ['zero.test', 'zero-hosts.test', 'mapped-hosts.test']) {
        await assertAcmeError(validate(challengeFor('http-01', name)), 'rejectedIdentifier', name, 'unspecified');
      }
      assert.equal(v4.connections(), before4);
      const before6 = v6.connections();
      await assertAcmeError(
        createValidator(testConfig({ httpPort: v6Port, hosts: { 'any6.test': '::' }, ...OPEN }))(
          challengeFor('http-01', 'any6.test'),
        ),
        'rejectedIdentifier',
        'unspecified',
      );
      assert.equal(v6.connections(), before6);
    } finally {
      await dns.stop();
    }
  });

  test('a redirect to http://0.0.0.0/ is refused before connecting', async () => {
    // The redirect points back at the site itself through 0.0.0.0, on the allowed port.
    const site = redirectingSite(() => `http://0.0.0.0:${sitePort}/again`);
    const sitePort = await listen(site.server);
    try {
      const validate = createValidator(
        testConfig({ httpPort: sitePort, hosts: { 'site.test': '127.0.0.1' }, ...OPEN }),
      );
      await assertAcmeError(validate(challengeFor('http-01', 'site.test')), 'rejectedIdentifier', 'redirect 1 from');
      assert.equal(site.requests(), 1, 'only the first hop reached the site');
    } finally {
      await closeServer(site.server);
    }
  });

  // Checked on the policy alone: dialling these for real would send traffic off loopback.
  test('multicast, broadcast and link-local addresses, in every spelling, are refused even when allowNetworks lists them', () => {
    const policy = createNetworkPolicy({
      denyNetworks: [],
      allowNetworks: [
        '0.0.0.0/0',
        '::/0',
        '224.0.0.0/4',
        '255.255.255.255/32',
        '169.254.0.0/16',
        'fe80::/10',
        'ff00::/8',
      ],
    });
    for (const [address, kind] of [
      ['224.0.0.1', 'multicast'],
      ['239.255.255.250', 'multicast'],
      ['ff02::1', 'multicast'],
      ['::ffff:224.0.0.251', 'multicast'],
      ['255.255.255.255', 'broadcast'],
      ['::ffff:255.255.255.255', 'broadcast'],
      ['169.254.169.254', 'link-local'],
      ['::ffff:169.254.169.254', 'link-local'],
      ['::169.254.169.254', 'link-local'],
      ['64:ff9b::169.254.169.254', 'link-local'],
      ['fe80::1', 'link-local'],
      ['0.0.0.0', 'unspecified'],
      ['::', 'unspecified'],
    ] as const) {
      assert.match(policy.refusal(address) ?? 'allowed', new RegExp(kind), address);
    }
    for (const address of ['127.0.0.1', '::1', '10.0.0.1', '::ffff:10.0.0.1', '2001:db8::1'])
      assert.equal(policy.refusal(address), null, address);
  });
});
