import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { after, before, describe, test } from 'node:test';
import { createValidator } from './index.js';
import { MAX_BODY_BYTES, MAX_REDIRECTS } from './http-01.js';
import {
  assertAcmeError,
  challengeFor,
  closeServer,
  freePort,
  listen,
  opensslCertificate,
  startChallTestSrv,
  testConfig,
  type ChallTestSrv,
} from './test-fixtures.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** A loopback HTTP server whose answer per token each test sets, recording what it was asked. */
class ChallengeServer {
  readonly handlers = new Map<string, Handler>();
  readonly seen: Array<{ path: string; host: string | undefined }> = [];
  readonly server = createServer((req, res) => this.#route(req, res));
  port = 0;

  async start(host = '127.0.0.1'): Promise<this> {
    this.port = await listen(this.server, host);
    return this;
  }

  /** Serves `handler` for every path that starts with `/.well-known/acme-challenge/TOKEN` or `/TOKEN/`. */
  on(token: string, handler: Handler): void {
    this.handlers.set(token, handler);
  }

  requestsFor(token: string): number {
    return this.seen.filter((s) => s.path.includes(token)).length;
  }

  #route(req: IncomingMessage, res: ServerResponse): void {
    const path = req.url ?? '';
    this.seen.push({ path, host: req.headers.host });
    const token = path.replace(/^\/\.well-known\/acme-challenge\//, '/').split('/')[1] ?? '';
    const handler = this.handlers.get(token);
    if (handler === undefined) {
      res.writeHead(404).end('no such token\n');
      return;
    }
    handler(req, res);
  }
}

const redirect =
  (location: string): Handler =>
  (_req, res) =>
    res.writeHead(302, { location }).end();
const body =
  (text: string): Handler =>
  (_req, res) =>
    res.writeHead(200, { 'content-type': 'text/plain' }).end(text);

describe('http-01', () => {
  let site: ChallengeServer;
  let site6: ChallengeServer;

  before(async () => {
    site = await new ChallengeServer().start();
    site6 = await new ChallengeServer().start('::1');
  });
  after(async () => {
    await closeServer(site.server);
    await closeServer(site6.server);
  });

  const validator = (overrides: Parameters<typeof testConfig>[0] = {}) =>
    createValidator(
      testConfig({ httpPort: site.port, hosts: { 'svc1.test': '127.0.0.1', 'svc2.test': '127.0.0.1' }, ...overrides }),
    );

  test('the key authorization, surrounded by whitespace, is valid; Host is the name from the hosts map', async () => {
    const challenge = challengeFor('http-01', 'svc1.test');
    site.on(challenge.token, body(`\n ${challenge.keyAuthorization}\r\n`));
    await validator()(challenge);
    const request = site.seen.find((s) => s.path === `/.well-known/acme-challenge/${challenge.token}`);
    assert.equal(request?.host, 'svc1.test');
  });

  test('a wrong body is incorrectResponse naming the URL, and what the body holds is never in the error', async () => {
    const challenge = challengeFor('http-01', 'svc1.test');
    site.on(challenge.token, body('hello from the default site'));
    const error = await assertAcmeError(
      validator()(challenge),
      'incorrectResponse',
      `http://svc1.test:${site.port}/.well-known/acme-challenge/${challenge.token}`,
      'not the key authorization',
    );
    assert.ok(!error.message.includes('hello'), error.message);
  });

  // Validation reaches networks the ACME client cannot: whatever a server behind a redirect
  // sends (body, headers, where it redirects next, what its name resolves to) must not come back
  // to the client in the challenge's error, or any client could read internal services.
  test('a redirect into another service: its body, headers, URL and address stay out of the error', async () => {
    const challenge = challengeFor('http-01', 'svc1.test');
    const t = challenge.token;
    site.on(t, (req, res) => {
      if ((req.url ?? '').endsWith('/internal')) {
        res
          .writeHead(200, { 'x-internal-secret': 'header-secret-value' })
          .end('body-secret-value: {"password":"hunter2"}');
        return;
      }
      redirect(`http://internal.test:${site.port}/${t}/internal`)(req, res);
    });
    const error = await assertAcmeError(
      validator({ hosts: { 'svc1.test': '127.0.0.1', 'internal.test': '127.0.0.1' } })(challenge),
      'incorrectResponse',
      `redirect 1 from http://svc1.test:${site.port}/.well-known/acme-challenge/${t}`,
    );
    assert.equal(site.seen.at(-1)?.path, `/${t}/internal`, 'the redirect was followed');
    for (const leaked of ['secret', 'hunter2', 'internal', '127.0.0.1'])
      assert.ok(!error.message.includes(leaked), `${leaked} in: ${error.message}`);
    assert.deepEqual(Object.keys(error.toProblem()).sort(), ['detail', 'status', 'type']);
  });

  test('after a redirect, a non-200 answer gives only its status; a refused redirect gives only the rule', async () => {
    const status = challengeFor('http-01', 'svc1.test');
    site.on(status.token, (req, res) => {
      if ((req.url ?? '').endsWith('/admin'))
        return void res.writeHead(403, { 'x-internal-secret': 'header-secret-value' }).end('body-secret-value');
      redirect(`http://internal.test:${site.port}/${status.token}/admin`)(req, res);
    });
    const hosts = { 'svc1.test': '127.0.0.1', 'internal.test': '127.0.0.1' };
    const denied = await assertAcmeError(
      validator({ hosts })(status),
      'incorrectResponse',
      'redirect 1 from',
      'HTTP 403',
    );
    assert.ok(!/secret|internal|admin/.test(denied.message), denied.message);

    const scheme = challengeFor('http-01', 'svc1.test');
    site.on(scheme.token, redirect('gopher://internal-secret-host/secret-path?session=secret-session'));
    const refused = await assertAcmeError(
      validator({ hosts })(scheme),
      'connection',
      'redirect 1 from',
      'only http and https',
    );
    assert.ok(!refused.message.includes('secret'), refused.message);
  });

  test('the host of a redirect that does not resolve is dns, without its name', async () => {
    const challenge = challengeFor('http-01', 'svc1.test');
    site.on(challenge.token, redirect(`http://no-such-internal-name.invalid:${site.port}/x`));
    const error = await assertAcmeError(
      validator({ timeoutMs: 2_000 })(challenge),
      'dns',
      'redirect 1 from',
      'could not be resolved',
    );
    assert.ok(!error.message.includes('no-such-internal-name'), error.message);
  });

  test('a 404 is incorrectResponse naming the status', async () => {
    const challenge = challengeFor('http-01', 'svc1.test');
    await assertAcmeError(validator()(challenge), 'incorrectResponse', 'HTTP 404', challenge.token);
  });

  test(`a body over ${MAX_BODY_BYTES} bytes is incorrectResponse, streamed or declared`, async () => {
    const streamed = challengeFor('http-01', 'svc1.test');
    site.on(streamed.token, (_req, res) => {
      res.writeHead(200);
      res.write('a'.repeat(MAX_BODY_BYTES));
      res.end('a'.repeat(100));
    });
    await assertAcmeError(validator()(streamed), 'incorrectResponse', `larger than ${MAX_BODY_BYTES} bytes`);
    const declared = challengeFor('http-01', 'svc1.test');
    site.on(declared.token, body('b'.repeat(MAX_BODY_BYTES + 1)));
    await assertAcmeError(validator()(declared), 'incorrectResponse', `larger than ${MAX_BODY_BYTES} bytes`);
  });

  test(`a chain of ${MAX_REDIRECTS} redirects, relative and to another name on the allowed port, is followed`, async () => {
    const challenge = challengeFor('http-01', 'svc1.test');
    const t = challenge.token;
    site.on(t, (req, res) => {
      const url = req.url ?? '';
      if (url.endsWith('/final')) return body(challenge.keyAuthorization)(req, res);
      const hop = Number(/\/hop\/(\d+)$/.exec(url)?.[1] ?? 0);
      if (hop < MAX_REDIRECTS - 1) return redirect(`/${t}/hop/${hop + 1}`)(req, res);
      return redirect(`http://svc2.test:${site.port}/${t}/final`)(req, res);
    });
    await validator()(challenge);
    assert.equal(site.requestsFor(t), 1 + MAX_REDIRECTS);
    assert.equal(site.seen.at(-1)?.host, `svc2.test:${site.port}`);
  });

  test(`a redirect loop is refused after ${MAX_REDIRECTS} redirects`, async () => {
    const challenge = challengeFor('http-01', 'svc1.test');
    let n = 0;
    site.on(challenge.token, (req, res) => redirect(`/${challenge.token}/loop/${++n}`)(req, res));
    await assertAcmeError(validator()(challenge), 'connection', `redirected more than ${MAX_REDIRECTS} times`);
    assert.equal(site.requestsFor(challenge.token), 1 + MAX_REDIRECTS);
  });

  test('redirects to other schemes or ports are refused', async () => {
    const ftp = challengeFor('http-01', 'svc1.test');
    site.on(ftp.token, redirect('ftp://svc1.test/file'));
    await assertAcmeError(validator()(ftp), 'connection', 'only http and https');
    const port = challengeFor('http-01', 'svc1.test');
    site.on(port.token, redirect('http://svc1.test:8081/x'));
    await assertAcmeError(validator()(port), 'connection', 'only ports 80 and');
    const none = challengeFor('http-01', 'svc1.test');
    site.on(none.token, (_req, res) => res.writeHead(301).end());
    await assertAcmeError(validator()(none), 'connection', 'no Location header');
  });

  test('an https redirect is followed to the TLS port without verifying the certificate', async () => {
    const { cert, key } = opensslCertificate('svc2.test', ['subjectAltName=DNS:svc2.test']);
    const challenge = challengeFor('http-01', 'svc1.test');
    const hosts: string[] = [];
    const secure = createHttpsServer({ cert, key }, (req, res) => {
      hosts.push(req.headers.host ?? '');
      res.end(challenge.keyAuthorization);
    });
    const tlsPort = await listen(secure);
    try {
      site.on(challenge.token, redirect(`https://svc2.test/.well-known/acme-challenge/${challenge.token}`));
      await validator({ tlsPort })(challenge);
      assert.deepEqual(hosts, ['svc2.test']);
    } finally {
      await closeServer(secure);
    }
  });

  test('a refused connection is connection, naming the URL', async () => {
    const challenge = challengeFor('http-01', 'svc1.test');
    const closed = await freePort();
    await assertAcmeError(
      validator({ httpPort: closed })(challenge),
      'connection',
      'refused',
      `http://svc1.test:${closed}/`,
    );
  });

  test('a server that never answers is connection once timeoutMs has passed', async () => {
    const challenge = challengeFor('http-01', 'svc1.test');
    site.on(challenge.token, () => {});
    const started = Date.now();
    await assertAcmeError(validator({ timeoutMs: 400 })(challenge), 'connection', 'within 400 ms');
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 390 && elapsed < 2_000, `took ${elapsed} ms`);
  });

  test('a server that stops mid-body is connection once timeoutMs has passed', async () => {
    const challenge = challengeFor('http-01', 'svc1.test');
    site.on(challenge.token, (_req, res) => {
      res.writeHead(200, { 'content-length': '200' });
      res.write(challenge.keyAuthorization.slice(0, 10));
    });
    await assertAcmeError(validator({ timeoutMs: 400 })(challenge), 'connection', 'within 400 ms');
  });

  test('a name that does not resolve is dns', async () => {
    const challenge = challengeFor('http-01', 'no-such-name.invalid');
    await assertAcmeError(validator({ timeoutMs: 2_000 })(challenge), 'dns', 'no-such-name.invalid');
  });

  test('IP identifiers are fetched from the address itself, with the address as Host (RFC 8738 §7)', async () => {
    const v4 = challengeFor('http-01', '127.0.0.1', 'ip');
    site.on(v4.token, body(v4.keyAuthorization));
    await validator()(v4);
    assert.equal(site.seen.at(-1)?.host, '127.0.0.1');

    const v6 = challengeFor('http-01', '::1', 'ip');
    site6.on(v6.token, body(v6.keyAuthorization));
    await validator({ httpPort: site6.port })(v6);
    assert.equal(site6.seen.at(-1)?.host, '[::1]');
  });

  test('a malformed token or identifier is malformed and sends nothing', async () => {
    const before = site.seen.length;
    const challenge = challengeFor('http-01', 'svc1.test');
    await assertAcmeError(validator()({ ...challenge, token: '../../admin' }), 'malformed', 'token');
    await assertAcmeError(
      validator()({ ...challenge, identifier: { type: 'dns', value: 'svc1.test/x' } }),
      'malformed',
      'svc1.test/x',
    );
    await assertAcmeError(
      validator()({ ...challenge, identifier: { type: 'ip', value: 'svc1.test' } }),
      'malformed',
      'not an IP address',
    );
    assert.equal(site.seen.length, before);
  });

  describe('through a configured DNS resolver', () => {
    let dnsServer: ChallTestSrv;
    before(async () => {
      dnsServer = await startChallTestSrv();
    });
    after(async () => {
      await dnsServer.stop();
    });

    test('the A record the resolver gives is dialled, with the name as Host', async () => {
      await dnsServer.manage('/add-a', { host: 'svc3.test.', addresses: ['127.0.0.1'] });
      const challenge = challengeFor('http-01', 'svc3.test');
      site.on(challenge.token, body(challenge.keyAuthorization));
      await validator({ dnsResolver: dnsServer.resolver })(challenge);
      assert.equal(site.seen.at(-1)?.host, 'svc3.test');
    });

    test('SERVFAIL for the name is dns', async () => {
      await dnsServer.manage('/set-servfail', { host: 'broken.test.' });
      const challenge = challengeFor('http-01', 'broken.test');
      await assertAcmeError(
        validator({ dnsResolver: dnsServer.resolver })(challenge),
        'dns',
        'broken.test',
        'SERVFAIL',
        dnsServer.resolver,
      );
    });
  });
});
