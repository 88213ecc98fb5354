// `shortleaf serve --config FILE`: mistakes stop start-up with a message naming the key, and the
// settings that matter to relying parties (statusUrl, limits, the server's own certificate) work.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type PeerCertificate } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { shortleafOk, tempDir } from './helpers/cli.js';
import { assertProblem, request } from './helpers/http.js';
import { extension, x509TextOfFile } from './helpers/openssl.js';
import { pollUntil, serveExpectingFailure, startServer, type RunningServer } from './helpers/server.js';

const dir = tempDir();
const f = (name: string) => dir.file(name);
after(() => dir.remove());

function config(name: string, value: unknown): string {
  writeFileSync(f(name), typeof value === 'string' ? value : JSON.stringify(value));
  return f(name);
}

describe('configuration mistakes stop serve with a message naming the key', () => {
  for (const [what, value, expected] of [
    ['an unknown key', { listne: '127.0.0.1:9443' }, /"listne"/],
    ['a value of the wrong type', { limits: { maxBodyBytes: 'big' } }, /"limits\.maxBodyBytes" has the wrong type/],
    ['a file that is not JSON', '{ "listen": ', /not valid JSON/],
    ['a statusUrl that is not plain http', { statusUrl: 'https://status.example' }, /statusUrl must be plain http/],
  ] as const) {
    it(`${what}: exits non-zero, naming it, before touching the data folder`, async () => {
      const data = f(`data-${what.replace(/\W+/g, '-')}`);
      const r = await serveExpectingFailure({
        data,
        args: ['--config', config(`${what}.json`, value)],
        timeoutMs: 20_000,
      });
      assert.equal(r.listened, false, r.stderr);
      assert.equal(r.timedOut, false, `serve must exit on its own:\n${r.stderr}`);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, expected);
      assert.match(r.stderr, /^shortleaf serve: configuration: /m);
      assert.equal(existsSync(data), false, 'a bad config creates no data folder');
    });
  }
});

describe('statusUrl and limits from the config file', () => {
  const data = f('data-status');
  let server: RunningServer | undefined;
  const srv = () => {
    assert.ok(server, 'the server did not start');
    return server;
  };
  before(async () => {
    await shortleafOk(['init', '--data', data]);
    server = await startServer({
      data,
      args: [
        '--config',
        config('status.json', { statusUrl: 'http://status.example:8080', limits: { maxBodyBytes: 4096 } }),
      ],
    });
  });
  after(async () => {
    await server?.stop();
  });

  it('leaves embed the configured status URL for OCSP, caIssuers and the CRL', async () => {
    assert.equal(srv().statusUrl, 'http://status.example:8080');
    const root = join(data, 'offline-root', 'root.crt');
    const t = (
      await shortleafOk([
        'token',
        'cfg.internal',
        '--provisioner',
        'admin',
        '--key',
        join(data, 'provisioners', 'admin.jwk'),
        '--ca',
        srv().publicUrl,
      ])
    ).stdout.trim();
    await shortleafOk([
      'certificate',
      'cfg.internal',
      '--ca',
      srv().publicUrl,
      '--root',
      root,
      '--token',
      t,
      '--cert',
      f('cfg.pem'),
      '--key',
      f('cfg.key'),
    ]);
    const text = await x509TextOfFile(f('cfg.pem'));
    const aia = extension(text, 'Authority Information Access') ?? '';
    assert.ok(aia.includes('OCSP - URI:http://status.example:8080/ocsp'), aia);
    assert.ok(aia.includes('CA Issuers - URI:http://status.example:8080/intermediate/primary.crt'), aia);
    assert.match(
      extension(text, 'X509v3 CRL Distribution Points') ?? '',
      /URI:http:\/\/status\.example:8080\/crl\/primary$/,
    );
  });

  it('limits.maxBodyBytes bounds request bodies', async () => {
    const res = await request(`${srv().api}/api/v1/sign`, {
      method: 'POST',
      ca: readFileSync(join(data, 'offline-root', 'root.crt'), 'utf8'),
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ csr: 'A'.repeat(8 * 1024), token: 'x' }),
    });
    const p = assertProblem(res, 413, 'bodyTooLarge');
    assert.match(p.detail, /4096 bytes/);
  });
});

describe('serverCertificateLifetime', () => {
  const data = f('data-renewal');
  let server: RunningServer | undefined;
  let rootPem = '';
  before(async () => {
    await shortleafOk(['init', '--data', data]);
    rootPem = readFileSync(join(data, 'offline-root', 'root.crt'), 'utf8');
    server = await startServer({
      data,
      args: ['--config', config('renew.json', { serverCertificateLifetime: '30s' })],
    });
  });
  after(async () => {
    await server?.stop();
  });

  /** Handshakes with the HTTPS listener trusting only the root; returns the leaf it sent and whether it verified. */
  const handshake = (port: number): Promise<{ peer: PeerCertificate; authorized: boolean; error: string | null }> =>
    new Promise((resolve, reject) => {
      const socket = connect(
        { host: '127.0.0.1', port, servername: 'localhost', ca: rootPem, rejectUnauthorized: false },
        () => {
          const peer = socket.getPeerCertificate(true);
          const error = socket.authorizationError ? String(socket.authorizationError) : null;
          resolve({ peer, authorized: socket.authorized, error });
          socket.end();
        },
      );
      socket.setTimeout(10_000, () => socket.destroy(new Error('TLS handshake timed out')));
      socket.once('error', reject);
    });

  it(
    'renews its own certificate before it expires, and clients trusting only the root still connect',
    { timeout: 90_000 },
    async () => {
      assert.ok(server);
      const first = await handshake(server.apiPort);
      assert.equal(first.authorized, true, first.error ?? '');
      const life = Date.parse(first.peer.valid_to) - Date.parse(first.peer.valid_from);
      assert.ok(
        life <= 30_000 + 60_000 + 1_000,
        `a 30 s certificate (plus backdating), got ${first.peer.valid_from} .. ${first.peer.valid_to}`,
      );
      const next = await pollUntil(
        'a renewed server certificate',
        async () => {
          const h = await handshake(server!.apiPort);
          return h.peer.serialNumber !== first.peer.serialNumber ? h : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 1_000 },
      );
      assert.equal(next.authorized, true, `the renewed certificate verifies against roots.pem alone: ${next.error}`);
      assert.ok(Date.parse(next.peer.valid_to) > Date.parse(first.peer.valid_to));
      const x = new X509Certificate(next.peer.raw);
      assert.ok(x.checkHost('localhost') && x.checkIP('127.0.0.1'));
      assert.ok(server.logs().some((l) => l.event === 'server_certificate_renewed'));
      const health = await request(`${server.publicUrl}/health`, { ca: rootPem });
      assert.equal(health.status, 200);
    },
  );
});
