// Faults: SIGKILL under load loses nothing a client received and issues no serial twice; one
// server per data directory.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { Agent } from 'node:https';
import { after, before, describe, it } from 'node:test';
import { Client, axios as acmeAxios, crypto as acmeCrypto, setLogger } from 'acme-client';
import { shortleaf, shortleafOk, tempDir } from './helpers/cli.js';
import { databasePath, withStore } from './helpers/data.js';
import { request } from './helpers/http.js';
import { crlInfo, ocsp } from './helpers/revocation.js';
import { freePort, serveExpectingFailure, startServer, type RunningServer } from './helpers/server.js';
import { Database, mintToken } from './helpers/workspace.js';

const IN_FLIGHT = 64;
const ACME_WORKERS = 8;
const KILLS = 4;

interface Received {
  serial: string;
  der: Buffer;
  via: 'rest' | 'acme';
}

const serialOfDer = (der: Buffer): string =>
  new X509Certificate(der).serialNumber.toLowerCase().replace(/^0+(?=.)/, '');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The http-01 responder (RFC 8555 §8.3) the server validates against. */
async function startResponder(): Promise<{ port: number; tokens: Map<string, string>; server: Server }> {
  const tokens = new Map<string, string>();
  const prefix = '/.well-known/acme-challenge/';
  const server = createServer((req, res) => {
    const answer = req.url?.startsWith(prefix) === true ? tokens.get(req.url.slice(prefix.length)) : undefined;
    if (answer === undefined) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(answer);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as { port: number }).port, tokens, server };
}

describe('SIGKILL under load: nothing a client received is lost, nothing is issued twice', () => {
  const dir = tempDir();
  const data = dir.file('data');
  let responder: Awaited<ReturnType<typeof startResponder>>;
  let server: RunningServer | undefined;
  const agents: Agent[] = [];

  before(async () => {
    await shortleafOk(['init', '--data', data]);
    responder = await startResponder();
  });
  after(async () => {
    await server?.stop();
    for (const a of agents) a.destroy();
    responder.server.closeAllConnections();
    await new Promise((r) => responder.server.close(r));
    dir.remove();
  });

  it(
    `${IN_FLIGHT} in flight (REST sign and ACME finalize), killed ${KILLS} times, restarted each time`,
    { timeout: 240_000 },
    async () => {
      const apiPort = await freePort();
      const statusPort = await freePort();
      const acmeNames = Array.from({ length: ACME_WORKERS }, (_, i) => `a${i}.crash.test`);
      const config = dir.file('config.json');
      writeFileSync(
        config,
        JSON.stringify({
          acme: {
            validation: {
              httpPort: responder.port,
              hosts: Object.fromEntries(acmeNames.map((n) => [n, '127.0.0.1'])),
              timeout: '5s',
            },
          },
        }),
      );
      const serve = () =>
        startServer({
          data,
          noListenFlags: true,
          args: ['--listen', `127.0.0.1:${apiPort}`, '--status-listen', `127.0.0.1:${statusPort}`, '--config', config],
          timeoutMs: 60_000,
        });
      server = await serve();
      const publicUrl = server.publicUrl;
      const statusUrl = server.statusUrl;
      const rootPem = readFileSync(dir.file('data/offline-root/root.crt'), 'utf8');
      const adminJwk = JSON.parse(readFileSync(dir.file('data/provisioners/admin.jwk'), 'utf8')) as Parameters<
        typeof mintToken
      >[0]['privateJwk'];

      const received: Received[] = [];
      const failures = new Map<string, number>();
      const fail = (kind: string) => failures.set(kind, (failures.get(kind) ?? 0) + 1);
      let stopping = false;

      // REST: a fresh token per attempt (a request the server died on may have spent its token).
      const key = await acmeCrypto.createPrivateEcdsaKey();
      const [, restCsr] = await acmeCrypto.createCsr(
        { commonName: 'svc.crash.test', altNames: ['svc.crash.test'] },
        key,
      );
      const restAgent = new Agent({ ca: rootPem, keepAlive: true, maxSockets: IN_FLIGHT });
      agents.push(restAgent);
      const restWorker = async () => {
        while (!stopping) {
          try {
            const token = await mintToken({
              provisioner: 'admin',
              privateJwk: adminJwk,
              caUrl: publicUrl,
              subject: 'svc.crash.test',
              sans: ['svc.crash.test'],
            });
            const res = await request(`https://127.0.0.1:${apiPort}/api/v1/sign`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ csr: restCsr.toString(), token }),
              ca: rootPem,
              servername: 'localhost',
              timeoutMs: 20_000,
            });
            if (res.status !== 201) {
              fail(`rest HTTP ${res.status} ${res.text.slice(0, 200)}`);
              await sleep(200);
              continue;
            }
            const body = res.json<{ serial: string; certificate: string }>();
            const der = new X509Certificate(body.certificate).raw;
            assert.equal(serialOfDer(der), body.serial);
            received.push({ serial: body.serial, der, via: 'rest' });
          } catch {
            fail('rest connection');
            await sleep(200); // the server is down: wait for the restart
          }
        }
      };

      // ACME: new order, http-01, finalize, download, with the npm acme-client.
      setLogger(() => undefined);
      (acmeAxios.defaults as unknown as { acmeSettings: { retryMaxAttempts: number } }).acmeSettings.retryMaxAttempts =
        0;
      acmeAxios.defaults.timeout = 20_000;
      const acmeAgent = new Agent({ ca: rootPem, keepAlive: true });
      agents.push(acmeAgent);
      acmeAxios.defaults.httpsAgent = acmeAgent;
      const acmeWorker = async (name: string) => {
        const [, csr] = await acmeCrypto.createCsr({ commonName: name, altNames: [name] }, key);
        const accountKey = await acmeCrypto.createPrivateEcdsaKey();
        const newClient = () =>
          new Client({
            directoryUrl: `${publicUrl}/acme/acme/directory`,
            accountKey,
            backoffMin: 50,
            backoffMax: 500,
            backoffAttempts: 10,
          });
        let client = newClient();
        while (!stopping) {
          try {
            const pem = await client.auto({
              csr,
              termsOfServiceAgreed: true,
              challengePriority: ['http-01'],
              skipChallengeVerification: true,
              challengeCreateFn: async (_a, challenge, keyAuthorization) =>
                void responder.tokens.set(challenge.token, keyAuthorization),
              challengeRemoveFn: async () => undefined,
            });
            const der = new X509Certificate(pem).raw;
            received.push({ serial: serialOfDer(der), der, via: 'acme' });
          } catch {
            fail('acme');
            // A client that saw a half-finished exchange starts again with a clean state (same account key).
            client = newClient();
            await sleep(300);
          }
        }
      };

      // CRL numbers as published: sampled all along; after each restart never below the last seen.
      let lastCrlNumber = -1n;
      const crlNumbers: Array<{ at: string; number: bigint }> = [];
      const readCrlNumber = async (): Promise<bigint | null> => {
        try {
          const res = await request(`${statusUrl}/crl`, { timeoutMs: 5_000 });
          return res.status === 200 ? (await crlInfo(new Uint8Array(res.body))).number : null;
        } catch {
          return null;
        }
      };

      const workers = [
        ...Array.from({ length: IN_FLIGHT - ACME_WORKERS }, () => restWorker()),
        ...acmeNames.map((n) => acmeWorker(n)),
      ];

      const revoked = new Set<string>();
      const killLog: string[] = [];
      for (let k = 0; k < KILLS; k++) {
        // Let issuance run a random while, revoke one received certificate from the CLI (the CRL
        // number moves), then kill at a random moment.
        const runFor = 2_000 + Math.floor(Math.random() * 5_000);
        const until = Date.now() + runFor;
        const rest = received.filter((r) => r.via === 'rest' && !revoked.has(r.serial));
        const victim = rest[Math.floor(Math.random() * rest.length)];
        if (victim !== undefined) {
          await shortleafOk(['revoke', victim.serial, '--reason', 'superseded', '--data', data]);
          revoked.add(victim.serial);
        }
        while (Date.now() < until) {
          const n = await readCrlNumber();
          if (n !== null) {
            assert.ok(n >= lastCrlNumber, `CRL number went back from ${lastCrlNumber} to ${n} (${killLog.join('; ')})`);
            lastCrlNumber = n;
            crlNumbers.push({ at: `cycle ${k}`, number: n });
          }
          await sleep(250);
        }
        const before = received.length;
        server.child.kill('SIGKILL');
        await new Promise((r) => (server!.exited() ? r(undefined) : server!.child.once('exit', r)));
        killLog.push(`kill ${k + 1} after ${runFor} ms with ${before} received`);
        server = await serve();
        const n = await readCrlNumber();
        assert.ok(n !== null, 'the restarted server publishes a CRL');
        assert.ok(n >= lastCrlNumber, `after restart ${k + 1} the CRL number went back from ${lastCrlNumber} to ${n}`);
        lastCrlNumber = n;
      }
      // Run on after the last restart so every client sees the server working again, then stop.
      const countAtLastRestart = received.length;
      await sleep(3_000);
      stopping = true;
      await Promise.race([
        Promise.all(workers),
        sleep(40_000).then(() => assert.fail('workers did not stop within 40 s')),
      ]);
      assert.ok(received.length > countAtLastRestart, 'issuance continues after the last restart');
      const exit = await server.stop();
      assert.equal(exit.code, 0, server.stderr());
      server = undefined;

      const unexpected = [...failures].filter(([kind]) => kind.startsWith('rest HTTP'));
      assert.deepEqual(unexpected, [], 'REST requests fail only by losing the connection, never with an HTTP error');
      const viaAcme = received.filter((r) => r.via === 'acme').length;
      assert.ok(viaAcme > 0, `some certificates came over ACME (failures: ${JSON.stringify([...failures])})`);
      console.log(
        `# ${received.length} certificates received (${viaAcme} over ACME); ${killLog.join('; ')}; failures ${JSON.stringify([...failures])}`,
      );

      // Every certificate a client received is recorded, issued, with the very same DER.
      const serials = received.map((r) => r.serial);
      assert.equal(new Set(serials).size, serials.length, 'no client received the same serial twice');
      await withStore(data, async (store) => {
        for (const r of received) {
          const row = await store.getCertificate(r.serial);
          assert.ok(row !== null, `serial ${r.serial} (${r.via}) was delivered but is not in the database`);
          assert.equal(row.status, 'issued');
          assert.ok(
            row.der !== null && Buffer.from(row.der).equals(r.der),
            `serial ${r.serial}: stored DER differs from the delivered one`,
          );
        }
      });

      // The kills rarely land between reserve and complete; one reservation made by hand (as the
      // server makes it) keeps the `undelivered` check below from passing vacuously.
      await withStore(
        data,
        async (store) => {
          const issuer = await store.getActiveIssuer();
          const at = new Date();
          await store.reserveCertificate({
            certificate: {
              serial: '7a11ed',
              issuerId: issuer!.id,
              subject: 'never.crash.test',
              names: ['never.crash.test'],
              notBefore: at,
              notAfter: new Date(at.getTime() + 3_600_000),
              provisioner: 'admin',
              requester: 'test',
              createdAt: at,
            },
            audit: { at, action: 'issue', actor: 'admin', serial: '7a11ed', detail: {} },
          });
        },
        { readonly: false },
      );

      const db = new Database(databasePath(data), { readonly: true });
      let reserved: string[];
      try {
        assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
        const { total, different } = db
          .prepare('SELECT count(*) AS total, count(DISTINCT serial) AS different FROM certificates')
          .get() as { total: number; different: number };
        assert.equal(total, different, 'serials are unique');
        const unaudited = db
          .prepare(
            "SELECT serial FROM certificates c WHERE NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.serial = c.serial AND a.action IN ('issue', 'renew'))",
          )
          .pluck()
          .all();
        assert.deepEqual(unaudited, [], 'every recorded certificate has its audit entry');
        reserved = db
          .prepare("SELECT serial FROM certificates WHERE status = 'reserved' ORDER BY serial")
          .pluck()
          .all() as string[];
      } finally {
        db.close();
      }
      const deliveredReserved = reserved.filter((s) => serials.includes(s));
      assert.deepEqual(deliveredReserved, [], 'no delivered certificate is left reserved');

      // Recorded but never delivered: the CLI lists exactly those, as `undelivered`.
      const listed = await shortleafOk(['certs', 'list', '--data', data, '--undelivered']);
      const rows = listed.stdout
        .trim()
        .split('\n')
        .slice(1)
        .filter((l) => l !== '')
        .map((l) => l.split('\t'));
      assert.deepEqual(rows.map((r) => r[0]).sort(), reserved);
      for (const r of rows) assert.equal(r[1], 'undelivered');
      assert.ok(reserved.includes('7a11ed'));
      console.log(`# ${reserved.length - 1} recorded but undelivered by the kills`);

      // OCSP: good for every delivered certificate, revoked for the ones the CLI revoked.
      const intermediates = dir.file('intermediates.pem');
      const rootsRes = await startAndFetchChain();
      writeFileSync(intermediates, rootsRes.intermediates);
      writeFileSync(dir.file('chain.pem'), rootsRes.roots + rootsRes.intermediates);
      // All of them is thousands of openssl runs: every revoked one, every ACME one, 150 others at random.
      const check = received.filter(
        (r) => revoked.has(r.serial) || r.via === 'acme' || Math.random() < 150 / received.length,
      );
      for (let i = 0; i < check.length; i += 8) {
        await Promise.all(
          check.slice(i, i + 8).map(async (r) => {
            const res = await ocsp([
              '-issuer',
              intermediates,
              '-serial',
              `0x${r.serial}`,
              '-url',
              `${rootsRes.statusUrl}/ocsp`,
              '-CAfile',
              dir.file('chain.pem'),
              '-no_nonce',
            ]);
            const single = res.single(`0x${r.serial}`);
            assert.ok(single !== null, res.output);
            assert.equal(
              single.status,
              revoked.has(r.serial) ? 'revoked' : 'good',
              `OCSP for ${r.serial}: ${res.output}`,
            );
          }),
        );
      }
      await rootsRes.stop();

      async function startAndFetchChain() {
        const s = await serve();
        server = s;
        const roots = await request(`${s.publicUrl}/roots.pem`, { ca: rootPem });
        const ints = await request(`${s.publicUrl}/intermediates.pem`, { ca: rootPem });
        return {
          roots: roots.text,
          intermediates: ints.text,
          statusUrl: s.statusUrl,
          stop: async () => {
            await s.stop();
            server = undefined;
          },
        };
      }
    },
  );
});

describe('one shortleaf serve per data directory', () => {
  const dir = tempDir();
  const data = dir.file('data');
  let first: RunningServer | undefined;

  before(async () => {
    await shortleafOk(['init', '--data', data]);
  });
  after(async () => {
    await first?.stop();
    dir.remove();
  });

  it(
    'a second serve refuses to start naming the first; the CLI still writes; after SIGKILL a new serve starts',
    { timeout: 120_000 },
    async () => {
      first = await startServer({ data });
      const second = await serveExpectingFailure({ data, timeoutMs: 30_000 });
      assert.equal(second.listened, false, second.stderr);
      assert.equal(second.timedOut, false, second.stderr);
      assert.equal(second.code, 1);
      assert.match(
        second.stderr,
        new RegExp(
          `another shortleaf serve \\(pid ${first.child.pid}, started [0-9T:.-]+Z\\) is already using the data directory`,
        ),
      );

      // The admin verbs that write do so while the server runs.
      await shortleafOk(['provisioner', 'add', 'extra', '--data', data, '--key-out', dir.file('extra.jwk')]);
      const certs = await shortleafOk(['certs', 'list', '--data', data]);
      const serverSerial = certs.stdout.trim().split('\n')[1]?.split('\t')[0];
      assert.ok(serverSerial !== undefined, certs.stdout);
      await shortleafOk(['revoke', serverSerial, '--reason', 'superseded', '--data', data]);

      // SIGKILL leaves no lock behind: the kernel drops it with the process.
      first.child.kill('SIGKILL');
      await first.stop();
      first = await startServer({ data });
      const exit = await first.stop();
      assert.equal(exit.code, 0, first.stderr());
      first = undefined;
      // A clean stop removes the holder's note; the next start is as plain as the first.
      const again = await shortleaf(['migrate', '--data', data]);
      assert.equal(again.code, 0, again.stderr);
    },
  );
});
