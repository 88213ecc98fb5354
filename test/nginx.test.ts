// nginx as the mTLS-terminating proxy, as the README tells users to run it: once checking clients
// against Shortleaf's CRLs (ssl_crl), once asking its OCSP responder (ssl_ocsp). Good clients reach
// the upstream with identity headers nginx sets; missing and revoked certificates are refused.
// The test also measures how long after a revocation nginx starts refusing the certificate.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { tempDir } from './helpers/cli.js';
import { startDevCa, type DevCa, type IssuedLeaf } from './helpers/dev-ca.js';
import { curl, request } from './helpers/http.js';
import { startEchoUpstream, startNginx, type EchoUpstream, type RunningNginx } from './helpers/nginx.js';
import { openssl } from './helpers/openssl.js';
import { crlInfo } from './helpers/revocation.js';
import { freePort, pollUntil } from './helpers/server.js';

const POLL_MS = 50;
const DEADLINE_MS = 20_000;

describe('nginx in front of an upstream, checking client certificates against Shortleaf', () => {
  const dir = tempDir();
  const f = (name: string) => dir.file(name);
  let devCa: DevCa | undefined;
  let upstream: EchoUpstream | undefined;
  const nginxes: RunningNginx[] = [];
  const L: Record<'server' | 'good' | 'crlVictim' | 'ocspVictim', IssuedLeaf> = {} as never;
  const figures: { ocsp?: number; crl?: number } = {};
  const ca = () => {
    assert.ok(devCa, 'the CA did not start');
    return devCa;
  };

  before(async () => {
    devCa = await startDevCa(dir.path);
    L.server = await devCa.issue('localhost', 'nginx-server', { sans: ['127.0.0.1'] });
    L.good = await devCa.issue('svc1.internal', 'svc1');
    L.crlVictim = await devCa.issue('svc-crl.internal', 'svc-crl');
    L.ocspVictim = await devCa.issue('svc-ocsp.internal', 'svc-ocsp');
    writeFileSync(f('client-ca.pem'), readFileSync(devCa.roots, 'utf8') + readFileSync(devCa.intermediates, 'utf8'));
    upstream = await startEchoUpstream();
  });

  after(async () => {
    try {
      for (const n of nginxes) await n.stop();
      await upstream?.close();
      if (devCa)
        assert.deepEqual(
          devCa.server.logs().filter((l) => l.level === 'error'),
          [],
          'no internal error logged',
        );
      await devCa?.server.stop();
    } finally {
      dir.remove();
    }
  });

  /** The intermediate's CRL (/crl.pem) followed by the root's (/root.crl as PEM): what ssl_crl needs for the whole chain. */
  async function fetchCrls(): Promise<{ pem: string; serials: Set<string> }> {
    const crl = await curl([`${ca().server.statusUrl}/crl.pem`]);
    const root = await curl([`${ca().server.statusUrl}/root.crl`]);
    assert.equal(crl.status, 200, crl.text);
    assert.equal(root.status, 200, root.text);
    const rootPem = await openssl(['crl', '-inform', 'DER', '-outform', 'PEM'], root.body);
    return { pem: crl.text + rootPem, serials: new Set((await crlInfo(crl.text)).entries.keys()) };
  }

  /** GET through nginx with curl, as a client would; `leaf` is the client certificate, if any. */
  const viaCurl = (port: number, leaf?: IssuedLeaf, headers: string[] = []) =>
    curl([
      '--resolve',
      `localhost:${port}:127.0.0.1`,
      '--cacert',
      ca().roots,
      ...(leaf ? ['--cert', leaf.cert, '--key', leaf.key] : []),
      ...headers.flatMap((h) => ['-H', h]),
      `https://localhost:${port}/whoami`,
    ]);
  /** GET through nginx on a brand-new TLS connection (no keep-alive, no session resumption). */
  const viaFreshTls = (port: number, leaf: IssuedLeaf) =>
    request(`https://127.0.0.1:${port}/whoami`, {
      ca: readFileSync(ca().roots, 'utf8'),
      cert: readFileSync(leaf.cert, 'utf8'),
      key: readFileSync(leaf.key, 'utf8'),
      servername: 'localhost',
      freshConnection: true,
      timeoutMs: 5_000,
    });
  /** Revokes over mutual TLS with the certificate itself; resolves when the API has answered. */
  async function revokeSelf(leaf: IssuedLeaf): Promise<void> {
    const res = await curl([
      '--cacert',
      ca().roots,
      '--cert',
      leaf.cert,
      '--key',
      leaf.key,
      '-H',
      'content-type: application/json',
      '--data-binary',
      JSON.stringify({ serial: leaf.serial, reason: 'keyCompromise' }),
      `${ca().server.publicUrl}/api/v1/revoke`,
    ]);
    assert.equal(res.status, 200, res.text);
  }
  /** Polls with fresh connections until nginx answers 400 for `leaf`; returns ms since `since`. */
  async function untilRefused(port: number, leaf: IssuedLeaf, since: number): Promise<number> {
    await pollUntil(
      `nginx to refuse ${leaf.serial}`,
      async () => ((await viaFreshTls(port, leaf)).status === 400 ? true : undefined),
      { timeoutMs: DEADLINE_MS, intervalMs: POLL_MS },
    );
    return Date.now() - since;
  }

  for (const mode of ['crl', 'ocsp'] as const) {
    describe(
      mode === 'crl'
        ? 'CRL mode (ssl_crl with the intermediate and root CRLs)'
        : 'OCSP mode (ssl_ocsp on, whole chain, no shared cache)',
      () => {
        let nginx: RunningNginx | undefined;
        const victim = () => (mode === 'crl' ? L.crlVictim : L.ocspVictim);
        const port = () => {
          assert.ok(nginx, 'nginx did not start');
          return nginx.site.port;
        };

        before(async () => {
          const prefix = f(`nginx-${mode}`);
          if (mode === 'crl') writeFileSync(f('crls.pem'), (await fetchCrls()).pem);
          nginx = await startNginx({
            dir: prefix,
            port: await freePort(),
            serverCert: L.server.cert,
            serverKey: L.server.key,
            clientCa: f('client-ca.pem'),
            upstreamPort: upstream!.port,
            revocation:
              mode === 'crl'
                ? { crlFile: f('crls.pem') }
                : { ocspResponder: `http://127.0.0.1:${ca().server.statusPort}/ocsp` },
          });
          nginxes.push(nginx);
        });

        it('a good client certificate: 200, and the upstream sees SUCCESS and its DN and serial', async () => {
          const res = await viaCurl(port(), L.good);
          assert.equal(res.status, 200, `${res.text}\n${nginx?.errorLog()}`);
          const seen = res.json<Record<string, string>>();
          assert.equal(seen['x-client-verify'], 'SUCCESS');
          assert.match(seen['x-client-dn'] ?? '', /(^|,)CN=svc1\.internal(,|$)/);
          assert.equal(seen['x-client-serial']?.toLowerCase().replace(/^0+/, ''), L.good.serial);
          assert.equal(
            upstream!.received.at(-1)?.['x-client-dn'],
            seen['x-client-dn'],
            'the upstream received what it echoed',
          );
        });

        it('identity headers sent by the client never reach the upstream: nginx overwrites them', async () => {
          const res = await viaCurl(port(), L.good, [
            'X-Client-DN: CN=admin',
            'X-Client-Verify: SUCCESS',
            'X-Client-Serial: 01',
          ]);
          assert.equal(res.status, 200, res.text);
          const seen = res.json<Record<string, string>>();
          assert.doesNotMatch(seen['x-client-dn'] ?? '', /admin/);
          assert.match(seen['x-client-dn'] ?? '', /CN=svc1\.internal/);
          assert.notEqual(seen['x-client-serial'], '01');
        });

        it('no client certificate: 400 "No required SSL certificate was sent", and nothing reaches the upstream', async () => {
          const before = upstream!.received.length;
          const res = await viaCurl(port());
          assert.equal(res.status, 400);
          assert.match(res.text, /No required SSL certificate was sent/);
          assert.equal(upstream!.received.length, before);
        });

        it('a certificate revoked while nginx runs is refused (400), and how soon is measured', async (t) => {
          const leaf = victim();
          assert.equal((await viaFreshTls(port(), leaf)).status, 200, 'accepted before it is revoked');
          await revokeSelf(leaf);
          const t0 = Date.now();
          let ms: number;
          if (mode === 'ocsp') {
            ms = await untilRefused(port(), leaf, t0);
          } else {
            // What an operator's cron job does: fetch until the CRL lists it, install, reload nginx.
            const crls = await pollUntil(
              '/crl.pem to list the serial',
              async () => {
                const c = await fetchCrls();
                return c.serials.has(leaf.serial) ? c : undefined;
              },
              { timeoutMs: DEADLINE_MS, intervalMs: POLL_MS },
            );
            t.diagnostic(`the CRL listed it after ${Date.now() - t0} ms`);
            writeFileSync(f('crls.pem'), crls.pem);
            await nginx!.reload();
            ms = await untilRefused(port(), leaf, t0);
          }
          figures[mode] = ms;
          t.diagnostic(`${mode}: nginx refused the revoked certificate ${ms} ms after the revoke call returned`);
          const res = await viaCurl(port(), leaf);
          assert.equal(res.status, 400);
          assert.match(res.text, /The SSL certificate error/);
          assert.match(nginx!.errorLog(), /client SSL certificate verify error: (\(23:)?certificate revoked/);
          assert.equal((await viaCurl(port(), L.good)).status, 200, 'the good client is still let in');
        });

        it('nginx is still running', () => {
          assert.equal(nginx?.exited(), false, nginx?.errorLog());
        });
      },
    );
  }

  it('reports how soon nginx refuses a revoked client', (t) => {
    assert.ok(figures.ocsp !== undefined && figures.crl !== undefined, 'both modes measured');
    const line = `nginx refuses a revoked client: via OCSP after ${figures.ocsp} ms, via re-fetched CRL after ${figures.crl} ms`;
    t.diagnostic(line);
    console.log(line);
  });
});
