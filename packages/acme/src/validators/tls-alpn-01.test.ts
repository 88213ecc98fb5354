import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createNetServer, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createSecureContext, createServer, type SecureContext } from 'node:tls';
import { parseIp } from '@shortleaf/pki';
import { createValidator } from './index.js';
import { reverseName } from './tls-alpn-01.js';
import {
  acmeIdentifierExtension,
  assertAcmeError,
  challengeFor,
  closeServer,
  freePort,
  listen,
  opensslCertificate,
  sha256Hex,
  testConfig,
} from './test-fixtures.js';

describe('tls-alpn-01', () => {
  const dns = challengeFor('tls-alpn-01', 'svc1.test');
  const ip = challengeFor('tls-alpn-01', '127.0.0.1', 'ip');
  const good = acmeIdentifierExtension(sha256Hex(dns.keyAuthorization));
  /** Which certificate the responder presents, by case; each is made by OpenSSL in before(). */
  const specs = {
    valid: ['subjectAltName=DNS:svc1.test', good],
    wrongDigest: ['subjectAltName=DNS:svc1.test', acmeIdentifierExtension(sha256Hex('another key authorization'))],
    notCritical: ['subjectAltName=DNS:svc1.test', acmeIdentifierExtension(sha256Hex(dns.keyAuthorization), false)],
    noExtension: ['subjectAltName=DNS:svc1.test'],
    twoNames: ['subjectAltName=DNS:svc1.test,DNS:other.test', good],
    otherName: ['subjectAltName=DNS:other.test', good],
    shortDigest: ['subjectAltName=DNS:svc1.test', '1.3.6.1.5.5.7.1.31=critical,DER:0410' + '00'.repeat(16)],
    ip: ['subjectAltName=IP:127.0.0.1', acmeIdentifierExtension(sha256Hex(ip.keyAuthorization))],
  } satisfies Record<string, string[]>;
  const contexts = new Map<keyof typeof specs, SecureContext>();
  let current: keyof typeof specs = 'valid';
  const servernames: string[] = [];
  let fallback: { cert: string; key: string };

  const responder = createServer({
    ALPNProtocols: ['acme-tls/1'],
    SNICallback: (name, done) => {
      servernames.push(name);
      done(null, contexts.get(current));
    },
  });
  let port = 0;

  before(async () => {
    for (const [name, extensions] of Object.entries(specs)) {
      contexts.set(name as keyof typeof specs, createSecureContext(opensslCertificate('acme challenge', extensions)));
    }
    fallback = opensslCertificate('fallback', ['subjectAltName=DNS:svc1.test', good]);
    responder.setSecureContext(fallback);
    port = await listen(responder);
  });
  after(async () => {
    await closeServer(responder);
  });

  const validator = (overrides: Parameters<typeof testConfig>[0] = {}) =>
    createValidator(testConfig({ tlsPort: port, hosts: { 'svc1.test': '127.0.0.1' }, ...overrides }));

  const presenting = async (spec: keyof typeof specs, work: () => Promise<unknown>) => {
    current = spec;
    try {
      await work();
    } finally {
      current = 'valid';
    }
  };

  test('a certificate for the name with the critical acmeIdentifier is valid; SNI is the name', async () => {
    servernames.length = 0;
    await validator()(dns);
    assert.deepEqual(servernames, ['svc1.test']);
  });

  test('the wrong digest is incorrectResponse, showing the expected one and never what was presented', async () => {
    await presenting('wrongDigest', async () => {
      const error = await assertAcmeError(validator()(dns), 'incorrectResponse', sha256Hex(dns.keyAuthorization));
      assert.ok(!error.message.includes(sha256Hex('another key authorization')), error.message);
    });
  });

  test('an acmeIdentifier not marked critical is incorrectResponse', async () => {
    await presenting('notCritical', () =>
      assertAcmeError(validator()(dns), 'incorrectResponse', 'not marked critical'),
    );
  });

  test('a missing or misshapen acmeIdentifier is incorrectResponse', async () => {
    await presenting('noExtension', () =>
      assertAcmeError(validator()(dns), 'incorrectResponse', 'exactly one acmeIdentifier extension'),
    );
    await presenting('shortDigest', () =>
      assertAcmeError(validator()(dns), 'incorrectResponse', 'OCTET STRING of 32 bytes'),
    );
  });

  test('the subjectAltName must be exactly the identifier', async () => {
    await presenting('twoNames', () =>
      assertAcmeError(validator()(dns), 'incorrectResponse', 'exactly one subjectAltName'),
    );
    await presenting('otherName', () =>
      assertAcmeError(validator()(dns), 'incorrectResponse', 'not the dNSName svc1.test'),
    );
    await presenting('valid', () =>
      assertAcmeError(validator()({ ...ip }), 'incorrectResponse', 'not the iPAddress 127.0.0.1'),
    );
  });

  test('an IP identifier is asked for with its reverse name as SNI and needs the iPAddress SAN (RFC 8738 §6)', async () => {
    servernames.length = 0;
    await presenting('ip', () => validator()(ip));
    assert.deepEqual(servernames, ['1.0.0.127.in-addr.arpa']);
  });

  test('reverse names for IPv4 and IPv6', () => {
    assert.equal(reverseName(parseIp('192.0.2.1')!), '1.2.0.192.in-addr.arpa');
    assert.equal(
      reverseName(parseIp('2001:db8::567:89ab')!),
      'b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa',
    );
  });

  test('a server that does not negotiate acme-tls/1 is tls', async () => {
    const { cert, key } = fallback;
    const plain = createServer({ cert, key });
    const h2 = createServer({ cert, key, ALPNProtocols: ['h2', 'http/1.1'] });
    const plainPort = await listen(plain);
    const h2Port = await listen(h2);
    try {
      await assertAcmeError(
        validator({ tlsPort: plainPort })(dns),
        'tls',
        'did not negotiate the ALPN protocol acme-tls/1',
        'SNI svc1.test',
      );
      await assertAcmeError(validator({ tlsPort: h2Port })(dns), 'tls', 'refused the ALPN protocol acme-tls/1');
    } finally {
      await closeServer(plain);
      await closeServer(h2);
    }
  });

  test('a server that does not speak TLS is tls', async () => {
    const http = createHttpServer((_req, res) => res.end('hello'));
    const httpPort = await listen(http);
    try {
      await assertAcmeError(
        validator({ tlsPort: httpPort })(dns),
        'tls',
        `127.0.0.1:${httpPort}`,
        'does not speak TLS',
      );
    } finally {
      await closeServer(http);
    }
  });

  test('a refused connection is connection', async () => {
    const closed = await freePort();
    await assertAcmeError(validator({ tlsPort: closed })(dns), 'connection', `127.0.0.1:${closed}`, 'refused');
  });

  test('a server that never answers the ClientHello is connection once timeoutMs has passed', async () => {
    const sockets: Socket[] = [];
    const silent = createNetServer((socket) => sockets.push(socket));
    const silentPort = await listen(silent);
    try {
      const started = Date.now();
      await assertAcmeError(validator({ tlsPort: silentPort, timeoutMs: 400 })(dns), 'connection', 'within 400 ms');
      const elapsed = Date.now() - started;
      assert.ok(elapsed < 1_500, `took ${elapsed} ms`);
    } finally {
      for (const socket of sockets) socket.destroy();
      await closeServer(silent);
    }
  });

  test('a name that does not resolve is dns', async () => {
    await assertAcmeError(
      validator()(challengeFor('tls-alpn-01', 'no-such-name.invalid')),
      'dns',
      'no-such-name.invalid',
    );
  });
});
