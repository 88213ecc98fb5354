// Intermediate rotation with no downtime, end to end: a running CA (`shortleaf serve`) gets a second
// intermediate through the offline ceremony (csr, sign-intermediate, import as staged), then
// activates it while certificate agents keep renewing and a steady stream of API requests keeps
// arriving. nginx verifies clients through both the old and the new chain and checks the CRLs of
// both intermediates; a certificate the old intermediate issued is revoked after the switch and
// nginx refuses it, OCSP says so. OpenSSL judges every chain, CRL and OCSP answer. Every wait is
// bounded; every process the test starts is stopped in `after`.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  addShortLivedProvisioner,
  leafOf,
  runAgent,
  startAgent,
  type AgentLog,
  type RunningAgent,
} from './helpers/agent.js';
import { shortleaf, shortleafOk, tempDir } from './helpers/cli.js';
import { startDevCa, type DevCa, type IssuedLeaf } from './helpers/dev-ca.js';
import { curl, request } from './helpers/http.js';
import { startEchoUpstream, startNginx, type EchoUpstream, type RunningNginx } from './helpers/nginx.js';
import { certDer, extension, openssl, opensslResult, splitCertificates, x509TextOfFile } from './helpers/openssl.js';
import { crlInfo, crlVerifies, normalizeSerial, ocsp } from './helpers/revocation.js';
import { freePort, pollUntil } from './helpers/server.js';
import { mintToken } from './helpers/workspace.js';

const SHORT = 'short';
const NEXT = 'next';
const NEXT_CN = 'Shortleaf Intermediate CA 2';
/**
 * Agents ask for one-minute leaves (a two-minute span: notBefore is backdated a minute) and renew
 * at 55 % of the span: 6 s after each issuance, with no jitter and no ARI, so a renewal follows
 * activation within seconds and every wait below stays short.
 */
const AGENT_RENEW_AT = '0.55';
/** How long the server may take to notice an import or an activation (the contract says about 2 s). */
const NOTICE_MS = 15_000;
const is = (event: string) => (l: AgentLog) => l.event === event;
const cnOf = (name: string): string => /(?:^|\n|, ?)CN=([^\n,]+)/.exec(name)?.[1] ?? '';
const ders = (pemText: string): Buffer[] => splitCertificates(pemText).map((p) => certDer(p));

interface LoadSample {
  worker: string;
  ms: number;
  ok: boolean;
  detail: string;
  /** CN of the issuer of the certificate returned (for nginx: of the client certificate presented). */
  issuer?: string;
}

describe('intermediate rotation with no downtime: agents renew, nginx verifies both chains, the old CRL and OCSP stay enforced', () => {
  const dir = tempDir();
  const f = (name: string) => dir.file(name);
  let devCa: DevCa | undefined;
  let upstream: EchoUpstream | undefined;
  let nginx: RunningNginx | undefined;
  const agents: RunningAgent[] = [];
  const L: Record<'server' | 'oldGood' | 'oldVictim' | 'renewLoop' | 'rollLoop' | 'newGood', IssuedLeaf> = {} as never;
  const A: Array<{ name: string; cert: string; key: string; chain: string; agent?: RunningAgent }> = [];
  let shortJwk: Record<string, unknown> = {};
  /** The server's log length just before `intermediate activate` ran, and when it logged the switch. */
  let activation: { logIndex: number; loggedAt: number } | undefined;
  let primaryCn = '';

  const ca = () => {
    assert.ok(devCa, 'the CA did not start');
    return devCa;
  };
  const statusUrl = () => ca().server.statusUrl;
  const rootCrt = () => join(ca().data, 'offline-root', 'root.crt');
  // Trust files: the root alone, the root with one intermediate, and with both.
  const primaryPem = () => f('primary.pem');
  const nextPem = () => f('next.crt');
  const caPrimary = () => f('ca-primary.pem');
  const caNext = () => f('ca-next.pem');
  const caBoth = () => f('ca-both.pem');

  before(async () => {
    devCa = await startDevCa(dir.path, {
      beforeServe: (data) => addShortLivedProvisioner(data, SHORT, f('short.jwk')),
    });
    const { provisioner: _, ...jwk } = JSON.parse(readFileSync(f('short.jwk'), 'utf8')) as Record<string, unknown>;
    shortJwk = jwk;
    copyFileSync(devCa.intermediates, primaryPem());
    assert.equal(
      splitCertificates(readFileSync(primaryPem(), 'utf8')).length,
      1,
      'before rotation, /intermediates.pem holds one intermediate',
    );
    primaryCn = cnOf(new X509Certificate(readFileSync(primaryPem())).subject);
    assert.notEqual(primaryCn, NEXT_CN);
    writeFileSync(caPrimary(), readFileSync(devCa.roots, 'utf8') + readFileSync(primaryPem(), 'utf8'));
    // Old (primary) leaves: nginx's own, two clients (one to revoke later), two for the request loops.
    const issued = await Promise.all([
      devCa.issue('localhost', 'nginx-server', { sans: ['localhost', '127.0.0.1'] }),
      devCa.issue('old-good.internal', 'old-good'),
      devCa.issue('old-victim.internal', 'old-victim'),
    ]);
    [L.server, L.oldGood, L.oldVictim] = issued;
    [L.renewLoop, L.rollLoop] = await Promise.all([
      devCa.issue('renew-loop.internal', 'renew-loop'),
      devCa.issue('roll-loop.internal', 'roll-loop'),
    ]);
    upstream = await startEchoUpstream();
  });

  after(async () => {
    try {
      for (const a of agents) await a.stop();
      await nginx?.stop();
      await upstream?.close();
      if (devCa)
        assert.deepEqual(
          devCa.server.logs().filter((l) => l.level === 'error'),
          [],
          'no internal error logged by the server',
        );
      await devCa?.server.stop();
    } finally {
      dir.remove();
    }
  });

  const token = (subject: string) =>
    mintToken({
      provisioner: SHORT,
      privateJwk: shortJwk as never,
      caUrl: ca().server.publicUrl,
      subject,
      sans: [subject],
    });
  const issuerCnOfFile = (file: string) => cnOf(new X509Certificate(leafOf(file).pem).issuer);
  /** GET through nginx on a brand-new TLS connection with this client certificate (file: leaf + chain). */
  const viaNginx = (cert: string, key: string) =>
    request(`https://127.0.0.1:${nginx!.site.port}/whoami`, {
      ca: readFileSync(ca().roots, 'utf8'),
      cert: readFileSync(cert, 'utf8'),
      key: readFileSync(key, 'utf8'),
      servername: 'localhost',
      freshConnection: true,
      timeoutMs: 5_000,
    });
  const assertAdmitted = async (what: string, cert: string, key: string) => {
    const res = await viaNginx(cert, key);
    assert.equal(
      res.status,
      200,
      `nginx must let ${what} in: HTTP ${res.status} ${res.text.slice(0, 200)}\n${nginx!.errorLog().slice(-2000)}`,
    );
    assert.equal(res.json<Record<string, string>>()['x-client-verify'], 'SUCCESS');
  };
  /** `shortleaf intermediate list`: name → state, from the lines that name an intermediate. */
  const listIntermediates = async (): Promise<{ states: Map<string, string>; text: string }> => {
    const r = await shortleafOk(['intermediate', 'list', '--data', ca().data]);
    const states = new Map<string, string>();
    for (const line of r.stdout.split('\n')) {
      const name = /^[\s*>-]*(primary|next)\b/.exec(line)?.[1];
      const state = /\b(active|staged|retired|expired)\b/.exec(line)?.[1];
      if (name !== undefined && state !== undefined) states.set(name, state);
    }
    return { states, text: r.stdout };
  };
  const fetchPem = async (base: string, path: string) => {
    const res = await curl(['--cacert', ca().roots, `${base}${path}`]);
    assert.equal(res.status, 200, `${base}${path}: ${res.text.slice(0, 300)}`);
    return res.text;
  };
  const fetchCrl = async (path: string) => {
    const res = await curl([`${statusUrl()}${path}`]);
    assert.equal(res.status, 200, `${path}: HTTP ${res.status} ${res.text.slice(0, 300)}`);
    return res.body;
  };
  /** `shortleaf agent crl --once` into OUT: one CRL per URL, each verified against CAFILE, PEM. */
  const crlBundle = async (names: string[], out: string) => {
    const r = await runAgent([
      'crl',
      ...names.flatMap((n) => ['--url', `${statusUrl()}/crl/${n}`]),
      '--root-url',
      `${statusUrl()}/root.crl`,
      '--root',
      caBoth(),
      '--out',
      out,
      '--once',
    ]);
    assert.equal(r.code, 0, `agent crl --once: ${r.stderr}`);
    const blocks = [
      ...readFileSync(out, 'utf8').matchAll(/-----BEGIN X509 CRL-----[\s\S]*?-----END X509 CRL-----\n?/g),
    ].map((m) => m[0]);
    assert.equal(blocks.length, names.length + 1, `one CRL per intermediate plus the root's:\n${r.stderr}`);
    return blocks;
  };
  const installCrls = async (bundle: string) => {
    copyFileSync(bundle, f('nginx-crls.pem'));
    await nginx!.reload();
  };

  it(
    'before rotation: agents bootstrap and renew from primary (chain file = primary); nginx admits a primary client',
    { timeout: 120_000 },
    async (t) => {
      const { states } = await listIntermediates();
      assert.deepEqual([...states], [['primary', 'active']], 'one intermediate, active');
      writeFileSync(caBoth(), readFileSync(caPrimary(), 'utf8')); // only primary exists yet
      for (const name of ['agent-1.test', 'agent-2.test']) {
        const d = f(name);
        mkdirSync(d);
        A.push({ name, cert: join(d, 'cert.pem'), key: join(d, 'key.pem'), chain: join(d, 'chain.pem') });
      }
      for (const a of A) {
        a.agent = startAgent([
          '--ca',
          ca().server.publicUrl,
          '--root',
          ca().roots,
          '--cert',
          a.cert,
          '--key',
          a.key,
          '--chain',
          a.chain,
          '--san',
          a.name,
          '--token',
          await token(a.name),
          '--not-after',
          '1m',
          '--renew-at',
          AGENT_RENEW_AT,
          '--jitter',
          '0',
          '--no-ari',
          '--retry-min',
          '1s',
          '--retry-max',
          '2s',
        ]);
        agents.push(a.agent);
      }
      await Promise.all(
        A.map((a) => a.agent!.waitFor(`${a.name} to renew once`, is('renewed'), { timeoutMs: 45_000 })),
      );
      for (const a of A) {
        assert.equal(issuerCnOfFile(a.cert), primaryCn, `${a.name}: issued by primary before rotation`);
        assert.deepEqual(
          ders(readFileSync(a.chain, 'utf8')),
          ders(readFileSync(primaryPem(), 'utf8')),
          `${a.name}: the chain file holds primary`,
        );
      }

      // nginx trusts the root and primary, and checks primary's CRL and the root's.
      await crlBundle(['primary'], f('bundle-primary.pem'));
      copyFileSync(f('bundle-primary.pem'), f('nginx-crls.pem'));
      copyFileSync(caPrimary(), f('nginx-client-ca.pem'));
      nginx = await startNginx({
        dir: f('nginx'),
        port: await freePort(),
        serverCert: L.server.cert,
        serverKey: L.server.key,
        clientCa: f('nginx-client-ca.pem'),
        upstreamPort: upstream!.port,
        revocation: { crlFile: f('nginx-crls.pem') },
      });
      await assertAdmitted('a primary client', L.oldGood.cert, L.oldGood.key);
      t.diagnostic(`agents renewing every ~6 s from "${primaryCn}"; nginx on :${nginx.site.port}`);
    },
  );

  it(
    'rotation under load: csr, sign, import (staged, published before activation), activate; the server switches without a restart and every API request succeeds',
    { timeout: 180_000 },
    async (t) => {
      const server = ca().server;
      const api = server.publicUrl;
      const rootsPem = readFileSync(ca().roots, 'utf8');
      const rootX = new X509Certificate(readFileSync(rootCrt()));
      const primaryX = new X509Certificate(readFileSync(primaryPem()));

      // --- the request loops: the "drops no request" evidence -------------------------------------
      await openssl([
        'req',
        '-new',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        f('loop.key'),
        '-subj',
        '/CN=loop.test',
        '-addext',
        'subjectAltName=DNS:loop.test',
        '-out',
        f('loop.csr'),
      ]);
      const loopCsr = readFileSync(f('loop.csr'), 'utf8');
      const samples: LoadSample[] = [];
      let stop = false;
      const t0 = Date.now();
      /** Checks one 201 answer: the chain is exactly the issuer of the leaf, and that issuer is the root's. */
      const judge = (body: { certificate?: string; chain?: string }): { issuer: string; detail: string } | string => {
        if (typeof body.certificate !== 'string' || typeof body.chain !== 'string')
          return `no certificate/chain in ${JSON.stringify(body).slice(0, 200)}`;
        const leaf = new X509Certificate(body.certificate);
        const chain = splitCertificates(body.chain).map((p) => new X509Certificate(p));
        if (chain.length !== 1) return `chain has ${chain.length} certificates`;
        const issuer = chain[0]!;
        if (!leaf.checkIssued(issuer) || !leaf.verify(issuer.publicKey))
          return `the chain (${issuer.subject}) is not the leaf's issuer (${leaf.issuer})`;
        if (!issuer.checkIssued(rootX) || !issuer.verify(rootX.publicKey))
          return `the chain's certificate does not chain to the root`;
        return { issuer: cnOf(leaf.issuer), detail: normalizeSerial(leaf.serialNumber) };
      };
      const worker = async (
        name: string,
        send: () => Promise<{ status: number; text: string; json(): Record<string, string> }>,
        onIssued?: (body: Record<string, string>) => void,
      ) => {
        while (!stop) {
          const started = Date.now();
          try {
            const res = await send();
            if (res.status !== 201) {
              samples.push({
                worker: name,
                ms: started - t0,
                ok: false,
                detail: `HTTP ${res.status}: ${res.text.slice(0, 300)}`,
              });
            } else {
              const body = res.json();
              const verdict = judge(body);
              if (typeof verdict === 'string')
                samples.push({ worker: name, ms: started - t0, ok: false, detail: verdict });
              else {
                samples.push({
                  worker: name,
                  ms: started - t0,
                  ok: true,
                  detail: verdict.detail,
                  issuer: verdict.issuer,
                });
                onIssued?.(body);
              }
            }
          } catch (err) {
            samples.push({
              worker: name,
              ms: started - t0,
              ok: false,
              detail: `connection: ${(err as Error).message}`,
            });
          }
          await sleep(40);
        }
      };
      /** Through nginx, alternating a primary client and an agent's current certificate (primary, then next). */
      const probe = async () => {
        let turn = 0;
        while (!stop) {
          const started = Date.now();
          const client =
            turn++ % 2 === 0 ? { cert: L.oldGood.cert, key: L.oldGood.key } : { cert: A[0]!.cert, key: A[0]!.key };
          const issuer = issuerCnOfFile(client.cert);
          try {
            const res = await viaNginx(client.cert, client.key);
            samples.push({
              worker: 'nginx',
              ms: started - t0,
              ok: res.status === 200,
              detail:
                res.status === 200 ? client.cert : `HTTP ${res.status} for ${client.cert}: ${res.text.slice(0, 200)}`,
              issuer,
            });
          } catch (err) {
            samples.push({
              worker: 'nginx',
              ms: started - t0,
              ok: false,
              detail: `connection: ${(err as Error).message}`,
              issuer,
            });
          }
          await sleep(100);
        }
      };
      // 1. renew over mTLS, always with the same primary-issued certificate (a client that has not renewed since);
      // 2. renew over mTLS with whatever the previous renewal returned (a client rolling forward onto `next`);
      // 3. sign a CSR with a fresh one-time token. Each request on a new TLS connection.
      // 4. nginx, with an old client and an agent's certificate, through the CA-file and CRL reloads.
      let rolling = { cert: readFileSync(L.rollLoop.cert, 'utf8'), key: readFileSync(L.rollLoop.key, 'utf8') };
      const renewWith = (cert: string, key: string) => () =>
        request(`${api}/api/v1/renew`, {
          method: 'POST',
          ca: rootsPem,
          cert,
          key,
          freshConnection: true,
          timeoutMs: 15_000,
        });
      const loops = Promise.all([
        worker('renew-fixed', renewWith(readFileSync(L.renewLoop.cert, 'utf8'), readFileSync(L.renewLoop.key, 'utf8'))),
        worker(
          'renew-rolling',
          () => renewWith(rolling.cert, rolling.key)(),
          (b) => (rolling = { cert: b.certificate! + b.chain!, key: rolling.key }),
        ),
        worker('sign', async () =>
          request(`${api}/api/v1/sign`, {
            method: 'POST',
            ca: rootsPem,
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ csr: loopCsr, token: await token('loop.test') }),
            freshConnection: true,
            timeoutMs: 15_000,
          }),
        ),
        probe(),
      ]);
      const stopLoops = async () => {
        stop = true;
        await loops;
      };

      try {
        // --- the ceremony: csr (key sealed in the database), sign with the offline root, import ----
        await shortleafOk([
          'intermediate',
          'csr',
          '--data',
          ca().data,
          '--name',
          NEXT,
          '--cn',
          NEXT_CN,
          '--out',
          f('next.csr'),
        ]);
        const reqCheck = await opensslResult(['req', '-in', f('next.csr'), '-verify', '-noout', '-subject']);
        assert.match(reqCheck.stdout + reqCheck.stderr, /verif(y|ication) OK/i, reqCheck.stderr);
        assert.match(reqCheck.stdout, new RegExp(`CN ?= ?${NEXT_CN}`));
        await shortleafOk([
          'root',
          'sign-intermediate',
          '--root',
          join(ca().data, 'offline-root'),
          '--csr',
          f('next.csr'),
          '--out',
          nextPem(),
        ]);
        assert.match(
          await openssl(['verify', '-CAfile', rootCrt(), nextPem()]),
          /: OK$/m,
          'next is signed by the root',
        );
        const nextX = new X509Certificate(readFileSync(nextPem()));
        writeFileSync(caNext(), rootsPem + readFileSync(nextPem(), 'utf8'));
        writeFileSync(caBoth(), rootsPem + readFileSync(primaryPem(), 'utf8') + readFileSync(nextPem(), 'utf8'));

        const imported = await shortleafOk([
          'intermediate',
          'import',
          '--data',
          ca().data,
          '--name',
          NEXT,
          '--cert',
          nextPem(),
          '--root',
          rootCrt(),
        ]);
        assert.doesNotMatch(
          imported.stdout,
          /now active/,
          `import must only stage while primary is active: ${imported.stdout}`,
        );
        const staged = await listIntermediates();
        assert.equal(staged.states.get('primary'), 'active', staged.text);
        assert.equal(staged.states.get(NEXT), 'staged', staged.text);

        // Published before any leaf comes from it, active first, on both listeners.
        const tImport = Date.now();
        const both = await pollUntil(
          '/intermediates.pem to list the staged intermediate',
          async () => {
            const pem = await fetchPem(api, '/intermediates.pem');
            return ders(pem).length === 2 ? pem : undefined;
          },
          { timeoutMs: NOTICE_MS, intervalMs: 250 },
        );
        t.diagnostic(
          `/intermediates.pem listed the staged intermediate ${Date.now() - tImport} ms after import returned`,
        );
        assert.deepEqual(
          ders(both),
          [primaryX.raw, nextX.raw],
          '/intermediates.pem: the active one (primary) first, then the staged one',
        );
        assert.deepEqual(
          ders(await fetchPem(statusUrl(), '/intermediates.pem')),
          [primaryX.raw, nextX.raw],
          'the status listener publishes the same list',
        );
        assert.equal(
          (await curl(['--cacert', ca().roots, `${api}/health`])).json().issuer,
          'primary',
          'staging does not activate',
        );
        for (const [name, x] of [
          ['primary', primaryX],
          [NEXT, nextX],
        ] as const) {
          const res = await curl([`${statusUrl()}/intermediate/${name}.crt`]);
          assert.equal(res.status, 200, `/intermediate/${name}.crt: ${res.text.slice(0, 200)}`);
          assert.deepEqual(res.body, x.raw, `/intermediate/${name}.crt is ${name}'s certificate`);
        }
        const stagedCrl = await pollUntil(
          `/crl/${NEXT} for the staged intermediate`,
          async () => {
            const res = await curl([`${statusUrl()}/crl/${NEXT}`]);
            return res.status === 200 ? res.body : undefined;
          },
          { timeoutMs: NOTICE_MS, intervalMs: 250 },
        );
        const stagedCrlCheck = await crlVerifies(stagedCrl, caNext());
        assert.ok(stagedCrlCheck.ok, `next's CRL is signed by next:\n${stagedCrlCheck.output}`);

        // The proxy now trusts both intermediates and holds both CRLs, before any `next` leaf exists.
        writeFileSync(f('nginx-client-ca.pem'), rootsPem + both);
        await crlBundle(['primary', NEXT], f('bundle-both.pem'));
        await installCrls(f('bundle-both.pem'));
        await assertAdmitted('a primary client after the CA file grew', L.oldGood.cert, L.oldGood.key);

        // --- activate while requests keep coming ------------------------------------------------
        assert.ok(
          samples.some((s) => s.ok && s.issuer === primaryCn),
          'the loops were issuing from primary before activation',
        );
        activation = { logIndex: server.logs().length, loggedAt: 0 };
        await shortleafOk(['intermediate', 'activate', '--data', ca().data, NEXT]);
        const tActivated = Date.now();
        const event = await pollUntil(
          'the server to log issuer_activated for next',
          async () =>
            server
              .logs()
              .slice(activation!.logIndex)
              .find((l) => l.event === 'issuer_activated' && l.issuer === NEXT),
          { timeoutMs: NOTICE_MS, intervalMs: 100 },
        );
        activation.loggedAt = Date.parse(String(event.time));
        t.diagnostic(`issuer_activated logged ${Date.now() - tActivated} ms after \`intermediate activate\` returned`);
        const health = await pollUntil(
          '/health to report next',
          async () => {
            const h = (await curl(['--cacert', ca().roots, `${api}/health`])).json();
            return h.issuer === NEXT ? h : undefined;
          },
          { timeoutMs: NOTICE_MS, intervalMs: 100 },
        );
        assert.equal(health.issuer, NEXT);

        // Keep the loops going until each has had several answers from next (bounded).
        await pollUntil(
          'every request loop to be issued three certificates by next, and nginx to admit the agent renewed by next three times',
          async () => {
            const counts = ['renew-fixed', 'renew-rolling', 'sign', 'nginx'].map(
              (w) => samples.filter((s) => s.worker === w && s.issuer === NEXT_CN).length,
            );
            return counts.every((c) => c >= 3) || samples.some((s) => !s.ok) ? true : undefined;
          },
          { timeoutMs: 30_000, intervalMs: 200 },
        );
      } finally {
        await stopLoops();
      }

      const failed = samples.filter((s) => !s.ok);
      const nginxSamples = samples.filter((s) => s.worker === 'nginx');
      t.diagnostic(
        `${samples.length - nginxSamples.length} API requests and ${nginxSamples.length} nginx requests across the rotation window (${Math.round((Date.now() - t0) / 1000)} s), ${failed.length} failed`,
      );
      assert.deepEqual(failed, [], 'no request refused, failed or answered with a wrong chain during the rotation');
      for (const w of ['renew-fixed', 'renew-rolling', 'sign']) {
        const issuers = samples.filter((s) => s.worker === w).map((s) => s.issuer);
        assert.ok(
          issuers.includes(primaryCn) && issuers.includes(NEXT_CN),
          `${w}: the window spans the switch (${issuers.length} requests)`,
        );
        const firstNext = issuers.indexOf(NEXT_CN);
        assert.deepEqual(
          issuers.slice(firstNext).filter((i) => i !== NEXT_CN),
          [],
          `${w}: once next issued, every later answer came from next (a clean switch)`,
        );
      }
      assert.ok(
        nginxSamples.some((s) => s.issuer === primaryCn) && nginxSamples.some((s) => s.issuer === NEXT_CN),
        'nginx admitted primary and next clients inside the window',
      );

      const after = await listIntermediates();
      assert.equal(after.states.get(NEXT), 'active', after.text);
      assert.equal(after.states.get('primary'), 'retired', after.text);
      const nextX = new X509Certificate(readFileSync(nextPem()));
      assert.deepEqual(
        ders(await fetchPem(api, '/intermediates.pem')),
        [nextX.raw, primaryX.raw],
        '/intermediates.pem after activation: next first, primary still listed',
      );
      const roots = ders(await fetchPem(api, '/roots.pem'));
      assert.ok(
        roots.some((r) => r.equals(rootX.raw)),
        '/roots.pem still lists the root',
      );
      assert.equal(server.exited(), false, 'the server kept running');
      assert.equal(server.logs().filter((l) => l.event === 'listening').length, 1, 'no restart: one listening line');
    },
  );

  it(
    "agents: the next renewal after activation comes from next, the chain file holds next's certificate, and OpenSSL verifies it only through next",
    { timeout: 120_000 },
    async (t) => {
      assert.ok(activation, 'the rotation step ran');
      await Promise.all(
        A.map(async (a) => {
          const agent = a.agent!;
          // The first renewal that starts after activation was logged must already be next's.
          let from = agent.logs().findIndex((l) => Date.parse(String(l.time)) > activation!.loggedAt);
          if (from < 0) from = agent.logs().length;
          const first = await agent.waitFor(`${a.name}: a renewal after activation`, is('renewed'), {
            from,
            timeoutMs: 40_000,
          });
          const leaf = leafOf(a.cert);
          // A request already in flight at the switch may be answered by primary; one logged a second later may not.
          const late = Date.parse(String(first.log.time)) - activation!.loggedAt > 1_000;
          if (late && leaf.serial === normalizeSerial(String(first.log.serial)))
            assert.equal(issuerCnOfFile(a.cert), NEXT_CN, `${a.name}: the first renewal after activation is next's`);
          // One more renewal, now presenting a next-issued certificate over mutual TLS.
          const second = await agent.waitFor(`${a.name}: a second renewal after activation`, is('renewed'), {
            from: first.index + 1,
            timeoutMs: 40_000,
          });
          assert.equal(leafOf(a.cert).serial, normalizeSerial(String(second.log.serial)));
          assert.equal(issuerCnOfFile(a.cert), NEXT_CN, `${a.name}: renewed by next`);
          assert.deepEqual(
            ders(readFileSync(a.chain, 'utf8')),
            ders(readFileSync(nextPem(), 'utf8')),
            `${a.name}: the chain file holds exactly next's certificate`,
          );
          assert.deepEqual(
            ders(readFileSync(a.cert, 'utf8')).slice(1),
            ders(readFileSync(nextPem(), 'utf8')),
            `${a.name}: the cert file is the leaf followed by next`,
          );
          writeFileSync(`${a.cert}.leaf`, leafOf(a.cert).pem);
          const good = await opensslResult(['verify', '-CAfile', rootCrt(), '-untrusted', a.chain, `${a.cert}.leaf`]);
          assert.match(
            good.stdout,
            /: OK$/m,
            `openssl verify -CAfile root -untrusted chain:\n${good.stdout}${good.stderr}`,
          );
          const wrong = await opensslResult([
            'verify',
            '-CAfile',
            rootCrt(),
            '-untrusted',
            primaryPem(),
            `${a.cert}.leaf`,
          ]);
          assert.notEqual(wrong.code, 0, "the leaf does not verify through primary: it really is next's");
          assert.deepEqual(
            agent.events('renewal_failed'),
            [],
            `${a.name}: no renewal failed:\n${agent.stderr().slice(-2000)}`,
          );
          assert.equal(agent.exited(), null, `${a.name} still running`);
          t.diagnostic(`${a.name}: renewed by next as ${leafOf(a.cert).serial}`);
        }),
      );
    },
  );

  it(
    'nginx admits old (primary) and new (next) clients; an old client revoked after the switch is listed by /crl/primary and refused, OCSP agrees',
    { timeout: 120_000 },
    async (t) => {
      L.newGood = await ca().issue('new-good.internal', 'new-good');
      assert.equal(issuerCnOfFile(L.newGood.cert), NEXT_CN, 'a certificate issued now comes from next');
      assert.deepEqual(
        ders(readFileSync(L.newGood.cert, 'utf8')).slice(1),
        ders(readFileSync(nextPem(), 'utf8')),
        'shortleaf certificate writes next as the chain',
      );

      await assertAdmitted('an old primary client', L.oldGood.cert, L.oldGood.key);
      await assertAdmitted('the soon-revoked primary client', L.oldVictim.cert, L.oldVictim.key);
      await assertAdmitted('a new next client', L.newGood.cert, L.newGood.key);
      await assertAdmitted('an agent renewed by next', A[0]!.cert, A[0]!.key);

      await shortleafOk(['revoke', L.oldVictim.serial, '--reason', 'keyCompromise', '--data', ca().data]);
      const t0 = Date.now();
      const primaryCrl = await pollUntil(
        `/crl/primary to list ${L.oldVictim.serial}`,
        async () => {
          const der = await fetchCrl('/crl/primary');
          return (await crlInfo(der)).entries.has(L.oldVictim.serial) ? der : undefined;
        },
        { timeoutMs: 20_000, intervalMs: 200 },
      );
      t.diagnostic(`/crl/primary listed the revoked serial ${Date.now() - t0} ms after shortleaf revoke returned`);
      const primaryCheck = await crlVerifies(primaryCrl, caPrimary());
      assert.ok(primaryCheck.ok, `/crl/primary is signed by primary:\n${primaryCheck.output}`);
      assert.equal(
        (await crlInfo(await fetchCrl(`/crl/${NEXT}`))).entries.has(L.oldVictim.serial),
        false,
        "next's CRL lists only next's certificates",
      );

      const bundle = await crlBundle(['primary', NEXT], f('bundle-both.pem'));
      assert.ok((await crlInfo(bundle[0]!)).entries.has(L.oldVictim.serial), 'the refreshed bundle lists it');
      await installCrls(f('bundle-both.pem'));
      await pollUntil(
        `nginx to refuse ${L.oldVictim.serial}`,
        async () => ((await viaNginx(L.oldVictim.cert, L.oldVictim.key)).status === 400 ? true : undefined),
        { timeoutMs: 20_000, intervalMs: 200 },
      );
      const refused = await curl([
        '--resolve',
        `localhost:${nginx!.site.port}:127.0.0.1`,
        '--cacert',
        ca().roots,
        '--cert',
        L.oldVictim.cert,
        '--key',
        L.oldVictim.key,
        `https://localhost:${nginx!.site.port}/whoami`,
      ]);
      assert.equal(refused.status, 400);
      assert.match(refused.text, /The SSL certificate error/);
      assert.match(nginx!.errorLog(), /client SSL certificate verify error: (\(23:)?certificate revoked/);
      await assertAdmitted('the other old primary client', L.oldGood.cert, L.oldGood.key);
      await assertAdmitted('the new next client', L.newGood.cert, L.newGood.key);
      for (const a of A) await assertAdmitted(`${a.name} (renewed by next)`, a.cert, a.key);

      // OCSP chooses the issuer from the CertID: primary's leaves and next's leaves, one responder.
      const ask = (issuer: string, leaf: IssuedLeaf) =>
        ocsp(['-issuer', issuer, '-cert', leaf.leaf, '-url', `${statusUrl()}/ocsp`, '-CAfile', ca().roots]);
      const victim = await ask(primaryPem(), L.oldVictim);
      assert.ok(victim.verified, `the OCSP answer for the revoked primary leaf verifies:\n${victim.output}`);
      assert.equal(victim.single(L.oldVictim.leaf)?.status, 'revoked', victim.output);
      assert.equal(victim.single(L.oldVictim.leaf)?.reason, 'keyCompromise', victim.output);
      const oldGood = await ask(primaryPem(), L.oldGood);
      assert.ok(oldGood.verified, oldGood.output);
      assert.equal(oldGood.single(L.oldGood.leaf)?.status, 'good', oldGood.output);
      const fresh = await ask(nextPem(), L.newGood);
      assert.ok(fresh.verified, `the OCSP answer for a next leaf verifies:\n${fresh.output}`);
      assert.equal(fresh.single(L.newGood.leaf)?.status, 'good', fresh.output);
      assert.equal(nginx!.exited(), false, nginx!.errorLog());
    },
  );

  it(
    "CRLs and pointers: /crl is next's, /crl/primary is still primary's; each leaf names its own issuer's CRL and certificate",
    { timeout: 60_000 },
    async () => {
      const active = await fetchCrl('/crl');
      assert.ok((await crlVerifies(active, caNext())).ok, '/crl (the active intermediate) is signed by next');
      assert.equal((await crlVerifies(active, caPrimary())).ok, false, "/crl is no longer primary's");
      assert.deepEqual(active, await fetchCrl(`/crl/${NEXT}`), '/crl is the same CRL as /crl/next');
      const primary = await fetchCrl('/crl/primary');
      assert.ok((await crlVerifies(primary, caPrimary())).ok, '/crl/primary is still served and signed by primary');
      assert.equal((await crlVerifies(primary, caNext())).ok, false);
      assert.ok((await crlInfo(primary)).entries.has(L.oldVictim.serial));
      const pemRes = await curl([`${statusUrl()}/crl/primary.pem`]);
      assert.equal(pemRes.status, 200, pemRes.text);
      assert.equal(
        (await opensslResult(['crl', '-outform', 'DER'], pemRes.text)).stdoutBytes.equals(primary),
        true,
        '/crl/primary.pem is the same CRL',
      );
      assert.ok((await crlVerifies(await fetchCrl('/root.crl'), rootCrt())).ok, "/root.crl is the root's");

      for (const [leaf, name, pem] of [
        [L.newGood, NEXT, nextPem()],
        [L.oldGood, 'primary', primaryPem()],
      ] as const) {
        const text = await x509TextOfFile(leaf.leaf);
        assert.match(
          extension(text, 'X509v3 CRL Distribution Points') ?? '',
          new RegExp(`URI:${statusUrl()}/crl/${name}$`, 'm'),
          `${name}'s leaf points at /crl/${name}:\n${text}`,
        );
        assert.match(
          extension(text, 'Authority Information Access') ?? '',
          new RegExp(`CA Issuers - URI:${statusUrl()}/intermediate/${name}\\.crt$`, 'm'),
          `${name}'s leaf points at its issuer's certificate`,
        );
        const issuerRes = await curl([`${statusUrl()}/intermediate/${name}.crt`]);
        assert.equal(issuerRes.status, 200);
        assert.deepEqual(issuerRes.body, certDer(readFileSync(pem, 'utf8')));
      }
    },
  );

  it(
    'an agent whose --root file holds two roots (an unrelated one and the real one) bootstraps and renews; with only the unrelated root it is refused',
    { timeout: 120_000 },
    async () => {
      await shortleafOk(['root', 'init', '--out', f('unrelated-root'), '--cn', 'Unrelated Root CA'], {
        env: { SHORTLEAF_ROOT_PASSWORD: `unrelated-${Date.now()}-passphrase` },
      });
      const unrelated = readFileSync(join(f('unrelated-root'), 'root.crt'), 'utf8');
      writeFileSync(f('unrelated-only.pem'), unrelated);
      writeFileSync(f('two-roots.pem'), unrelated + readFileSync(ca().roots, 'utf8'));
      mkdirSync(f('two-roots'));
      const files = (d: string) => [
        '--cert',
        join(d, 'cert.pem'),
        '--key',
        join(d, 'key.pem'),
        '--chain',
        join(d, 'chain.pem'),
      ];
      const tok = await token('two-roots.test');
      const common = ['--ca', ca().server.publicUrl, '--san', 'two-roots.test', '--not-after', '1m'];

      const refused = await runAgent([
        ...common,
        '--root',
        f('unrelated-only.pem'),
        ...files(f('two-roots')),
        '--token',
        tok,
        '--once',
      ]);
      assert.notEqual(
        refused.code,
        0,
        `trusting only an unrelated root, the agent must not reach the CA:\n${refused.stderr}`,
      );
      assert.match(refused.stderr, /certificate|self[- ]signed|issuer/i, refused.stderr);
      assert.equal(existsSync(join(f('two-roots'), 'cert.pem')), false, 'nothing written');

      // The same token still works: the refusal happened in TLS, before it was sent.
      const boot = await runAgent([
        ...common,
        '--root',
        f('two-roots.pem'),
        ...files(f('two-roots')),
        '--token',
        tok,
        '--once',
      ]);
      assert.equal(boot.code, 0, boot.stderr);
      assert.ok(boot.logs.some(is('bootstrapped')), boot.stderr);
      const first = leafOf(join(f('two-roots'), 'cert.pem'));
      const renew = await runAgent([
        ...common,
        '--root',
        f('two-roots.pem'),
        ...files(f('two-roots')),
        '--once',
        '--force',
      ]);
      assert.equal(renew.code, 0, renew.stderr);
      assert.ok(renew.logs.some(is('renewed')), renew.stderr);
      const second = leafOf(join(f('two-roots'), 'cert.pem'));
      assert.notEqual(second.serial, first.serial);
      assert.equal(issuerCnOfFile(join(f('two-roots'), 'cert.pem')), NEXT_CN);
      assert.deepEqual(
        ders(readFileSync(join(f('two-roots'), 'chain.pem'), 'utf8')),
        ders(readFileSync(nextPem(), 'utf8')),
      );
    },
  );
});
