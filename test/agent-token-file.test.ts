// `shortleaf agent --token-file`: the agent reads its token from a file every time it must
// authenticate, because the file's owner (a kubelet, an operator's tooling) replaces it. A real CA,
// real agent processes; the file is missing, empty, rotated and the certificate revoked under the
// agent. On Kubernetes the test plays the cluster's token issuer (projected service-account tokens,
// RS256, a signing key rotated mid-test) and real nginx checks each certificate the agent holds.
// No token ever reaches the agent's log. Every wait is bounded.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { copyFileSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import {
  addShortLivedProvisioner,
  leafOf,
  mintTokenCli,
  runAgent,
  startAgent,
  verifyLeaf,
  type AgentLog,
  type RunningAgent,
} from './helpers/agent.js';
import { shortleafOk, tempDir } from './helpers/cli.js';
import { startDevCa, type DevCa } from './helpers/dev-ca.js';
import { curl } from './helpers/http.js';
import { startEchoUpstream, startNginx, type EchoUpstream, type RunningNginx } from './helpers/nginx.js';
import { freePort, pollUntil } from './helpers/server.js';

const PROVISIONER = 'short';
const SUBJECT = 'svc.test';
const SANS = ['svc.test'];
const is = (event: string) => (l: AgentLog) => l.event === event;

/** Puts a token in place as a kubelet or careful tooling does: a new file renamed over the old one. */
function rotate(file: string, token: string): void {
  writeFileSync(`${file}.new`, `${token}\n`, { mode: 0o600 });
  renameSync(`${file}.new`, file);
}

describe('shortleaf agent --token-file with one-time JWK tokens', () => {
  const dir = tempDir();
  let devCa: DevCa | undefined;
  const agents: RunningAgent[] = [];
  /** Every token the tests wrote: none may appear in any agent's output. */
  const tokens: string[] = [];
  const ca = () => {
    assert.ok(devCa, 'the CA did not start');
    return devCa;
  };

  before(async () => {
    devCa = await startDevCa(dir.path, {
      beforeServe: (data) => addShortLivedProvisioner(data, PROVISIONER, dir.file('short.jwk')),
    });
  });

  after(async () => {
    try {
      for (const a of agents) await a.stop();
      for (const a of agents)
        for (const t of tokens) assert.ok(!a.stderr().includes(t), 'a token was written to the agent log');
      await devCa?.server.stop();
    } finally {
      dir.remove();
    }
  });

  const token = async () => {
    const t = await mintTokenCli({
      caUrl: ca().server.publicUrl,
      provisioner: PROVISIONER,
      key: dir.file('short.jwk'),
      subject: SUBJECT,
      sans: SANS,
    });
    tokens.push(t);
    return t;
  };
  const workdir = (name: string) => {
    const d = dir.file(name);
    mkdirSync(d);
    return { cert: join(d, 'cert.pem'), key: join(d, 'key.pem'), tokenFile: join(d, 'token') };
  };
  const argsFor = (w: ReturnType<typeof workdir>, extra: string[] = []) => [
    '--ca',
    ca().server.publicUrl,
    '--root',
    ca().roots,
    '--cert',
    w.cert,
    '--key',
    w.key,
    '--token-file',
    w.tokenFile,
    ...SANS.flatMap((s) => ['--san', s]),
    '--not-after',
    '1m',
    '--renew-at',
    '0.6',
    '--jitter',
    '0',
    '--no-ari',
    '--token-poll',
    '200ms',
    ...extra,
  ];
  const launch = (w: ReturnType<typeof workdir>, extra: string[] = []) => {
    const agent = startAgent(argsFor(w, extra));
    agents.push(agent);
    return agent;
  };

  it(
    'a missing, then empty token file is a clear error retried with backoff, not a crash; the token written later bootstraps',
    { timeout: 90_000 },
    async () => {
      const w = workdir('missing');
      const agent = launch(w, ['--retry-min', '500ms', '--retry-max', '2s']);
      const missing = await agent.waitFor('the agent to say the file is missing', is('token_file_unreadable'), {
        timeoutMs: 30_000,
      });
      assert.equal(missing.log.level, 'error');
      assert.equal(missing.log.tokenFile, w.tokenFile);
      assert.equal(missing.log.error, `cannot read the token file ${w.tokenFile}: it does not exist`);
      assert.equal(typeof missing.log.retryInMs, 'number');
      const again = await agent.waitFor(
        'a second attempt, after a backoff',
        (l) => l.event === 'token_file_unreadable' && l.attempt === 2,
        { from: missing.index + 1, timeoutMs: 10_000 },
      );
      assert.ok(Number(again.log.retryInMs) > 0);

      writeFileSync(w.tokenFile, '\n');
      const empty = await agent.waitFor(
        'the agent to say the file is empty',
        (l) => l.event === 'token_file_unreadable' && l.error === `the token file ${w.tokenFile} is empty`,
        { from: again.index + 1, timeoutMs: 10_000 },
      );
      assert.equal(agent.exited(), null, `it keeps running:\n${agent.stderr()}`);

      rotate(w.tokenFile, await token());
      const boot = await agent.waitFor('the first certificate from the token written later', is('bootstrapped'), {
        from: empty.index,
        timeoutMs: 30_000,
      });
      assert.equal(leafOf(w.cert).serial, String(boot.log.serial).toLowerCase().replace(/^0+/, ''));
      const v = await verifyLeaf(w.cert, ca().roots, ca().intermediates);
      assert.ok(v.ok, v.output);
      assert.equal(agent.events('bootstrap_failed').length, 0, 'no token was sent before there was one');
    },
  );

  it(
    'revoked: the file is read again as it is now, so a token rotated into it beforehand gets a certificate back at once',
    { timeout: 120_000 },
    async () => {
      const w = workdir('revoked');
      rotate(w.tokenFile, await token());
      const agent = launch(w, ['--retry-min', '1s', '--retry-max', '4s']);
      const boot = await agent.waitFor('the first certificate', is('bootstrapped'), { timeoutMs: 30_000 });
      const leaf0 = leafOf(w.cert);
      // Rotated while the certificate is good: the agent has no reason to look at it yet.
      rotate(w.tokenFile, await token());
      await shortleafOk(['revoke', leaf0.serial, '--reason', 'keyCompromise', '--data', ca().data]);

      const reauth = await agent.waitFor('the agent to authenticate again', is('reauthenticating'), {
        from: boot.index + 1,
        timeoutMs: 60_000,
      });
      assert.equal(reauth.log.via, 'token-file');
      assert.match(String(reauth.log.reason), /certificateRevoked/);
      const again = await agent.waitFor('a new certificate from the rotated token', is('bootstrapped'), {
        from: reauth.index,
        timeoutMs: 30_000,
      });
      const leaf1 = leafOf(w.cert);
      assert.notEqual(leaf1.serial, leaf0.serial);
      assert.equal(leaf1.serial, String(again.log.serial).toLowerCase().replace(/^0+/, ''));
      assert.equal(leaf1.sans, leaf0.sans);
      assert.deepEqual(agent.logs().slice(reauth.index).filter(is('waiting_for_new_token')), [], 'no wait');
      await agent.waitFor('the new certificate to be renewed over mutual TLS', (l) => l.event === 'renewed', {
        from: again.index,
        timeoutMs: 45_000,
      });
    },
  );

  it(
    'revoked with a spent token still in the file: one refused try, then it waits for the file to change',
    { timeout: 120_000 },
    async () => {
      const w = workdir('spent');
      rotate(w.tokenFile, await token());
      const agent = launch(w, ['--retry-min', '1s', '--retry-max', '4s']);
      const boot = await agent.waitFor('the first certificate', is('bootstrapped'), { timeoutMs: 30_000 });
      await shortleafOk(['revoke', leafOf(w.cert).serial, '--data', ca().data]);
      const waiting = await agent.waitFor('the agent to wait for a new token', is('waiting_for_new_token'), {
        from: boot.index,
        timeoutMs: 60_000,
      });
      assert.match(String(waiting.log.reason), /certificateRevoked.*the CA refused the token/);
      const tried = agent.logs().slice(boot.index).filter(is('bootstrap_failed'));
      assert.equal(tried.length, 1, 'the spent token was tried once');
      rotate(w.tokenFile, await token());
      await agent.waitFor('a new certificate from the new token', is('bootstrapped'), {
        from: waiting.index,
        timeoutMs: 30_000,
      });
    },
  );

  it(
    '--once after a revocation: bootstraps again from the token file (exit 0), exits 2 saying why when its token is spent or the file is gone',
    { timeout: 120_000 },
    async () => {
      const w = workdir('once');
      const once = async () => {
        const r = await runAgent([...argsFor(w), '--once', '--force'], { timeoutMs: 60_000 });
        for (const t of tokens) assert.ok(!r.stderr.includes(t), 'a token was written to the agent log');
        return r;
      };
      rotate(w.tokenFile, await token());
      const first = await once();
      assert.equal(first.code, 0, first.stderr);
      const leaf0 = leafOf(w.cert);
      await shortleafOk(['revoke', leaf0.serial, '--data', ca().data]);

      rotate(w.tokenFile, await token());
      const again = await once();
      assert.equal(again.code, 0, again.stderr);
      assert.equal(again.logs.find(is('reauthenticating'))?.via, 'token-file', again.stderr);
      const leaf1 = leafOf(w.cert);
      assert.notEqual(leaf1.serial, leaf0.serial);
      await shortleafOk(['revoke', leaf1.serial, '--data', ca().data]);

      const spent = await once();
      assert.equal(spent.code, 2, spent.stderr);
      assert.match(spent.stderr, /^shortleaf agent: .*the token file did not help.*a new token is needed$/m);
      rmSync(w.tokenFile);
      const gone = await once();
      assert.equal(gone.code, 2, gone.stderr);
      assert.match(
        gone.stderr,
        new RegExp(`cannot read the token file ${w.tokenFile}: it does not exist; a new token is needed`),
      );
      assert.equal(leafOf(w.cert).serial, leaf1.serial, 'the files stay');
    },
  );
});

/** What the API server writes into a projected service-account token (kubelet's TokenRequest). */
interface Pod {
  namespace: string;
  serviceaccount: string;
  pod: string;
}

type PrivateKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

/**
 * The cluster's token issuer, played by the test: RS256 keys published as a JWKS (what
 * `kubectl get --raw /openid/v1/jwks` prints) and tokens in exactly the projected format.
 */
async function clusterKey(kid: string): Promise<{ kid: string; privateKey: PrivateKey; jwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' } };
}

const ISSUER = 'https://kubernetes.default.svc.cluster.local';
const AUDIENCE = 'shortleaf';

/** A token as a kubelet mounts it for `expirationSeconds: 3600` and `audience: shortleaf`. */
async function projectedToken(
  key: { kid: string; privateKey: PrivateKey },
  who: Pod,
  audience = AUDIENCE,
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const uid = () => randomUUID();
  return new SignJWT({
    aud: [audience],
    exp: now + 3600,
    iat: now,
    iss: ISSUER,
    jti: uid(),
    'kubernetes.io': {
      namespace: who.namespace,
      node: { name: 'node-1', uid: uid() },
      pod: { name: who.pod, uid: uid() },
      serviceaccount: { name: who.serviceaccount, uid: uid() },
    },
    nbf: now,
    sub: `system:serviceaccount:${who.namespace}:${who.serviceaccount}`,
  })
    .setProtectedHeader({ alg: 'RS256', kid: key.kid })
    .sign(key.privateKey);
}

describe('a sidecar on Kubernetes: projected service-account tokens, rotated, and nginx in front', () => {
  const dir = tempDir();
  const f = (name: string) => dir.file(name);
  let devCa: DevCa | undefined;
  let upstream: EchoUpstream | undefined;
  let nginx: RunningNginx | undefined;
  const agents: RunningAgent[] = [];
  const tokens: string[] = [];
  const keys: Awaited<ReturnType<typeof clusterKey>>[] = [];
  const ca = () => {
    assert.ok(devCa, 'the CA did not start');
    return devCa;
  };
  const api: Pod = { namespace: 'payments', serviceaccount: 'api', pod: 'api-7d9f8b6c4-x2kqz' };
  const SPIFFE_ID = 'spiffe://example.org/ns/payments/sa/api';
  /** The API server's /openid/v1/jwks, played by the test for the `--jwks-url` provisioner: what it publishes now, and how often it was asked. */
  const published = { keys: [] as JWK[], fetches: 0 };
  let jwksServer: Server | undefined;
  const URL_AUDIENCE = 'shortleaf-url';
  const SPIFFE_TEMPLATE = { uris: ['spiffe://example.org/ns/{namespace}/sa/{serviceaccount}'] };

  before(async () => {
    // For `--jwks-file` both keys are in the file from the start (the provisioner stores the keys
    // the file holds when it is added and cannot be updated in place); the cluster signs with the
    // first, then rotates to the second mid-test. The `--jwks-url` provisioner sees the second key
    // only when the cluster publishes it, mid-test.
    keys.push(await clusterKey('sa-key-2026-01'), await clusterKey('sa-key-2026-02'));
    writeFileSync(f('jwks.json'), JSON.stringify({ keys: keys.map((k) => k.jwk) }));
    published.keys = [keys[0]!.jwk];
    jwksServer = createServer((req, res) => {
      published.fetches++;
      res.writeHead(req.url === '/openid/v1/jwks' ? 200 : 404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: published.keys }));
    });
    await new Promise<void>((resolve) => jwksServer!.listen(0, '127.0.0.1', resolve));
    const jwksUrl = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/openid/v1/jwks`;
    writeFileSync(
      f('shortleaf.json'),
      JSON.stringify({ templates: { k8s: SPIFFE_TEMPLATE, 'k8s-url': SPIFFE_TEMPLATE } }),
    );
    const policy = ['--allow-uri', 'spiffe://example.org/ns/*', '--default-lifetime', '1m', '--min-lifetime', '1m'];
    devCa = await startDevCa(dir.path, {
      beforeServe: async (data) => {
        for (const [name, audience, keySource] of [
          ['k8s', AUDIENCE, ['--jwks-file', f('jwks.json')]],
          ['k8s-url', URL_AUDIENCE, ['--jwks-url', jwksUrl]],
        ] as const)
          await shortleafOk([
            'provisioner',
            'add',
            name,
            '--type',
            'kubernetes',
            '--issuer',
            ISSUER,
            '--audience',
            audience,
            ...keySource,
            '--data',
            data,
            ...policy,
            '--max-lifetime',
            '5m',
          ]);
      },
      serve: { args: ['--config', f('shortleaf.json')] },
    });
    const server = await devCa.issue('localhost', 'nginx-server', { sans: ['127.0.0.1'] });
    writeFileSync(f('client-ca.pem'), readFileSync(devCa.roots, 'utf8') + readFileSync(devCa.intermediates, 'utf8'));
    upstream = await startEchoUpstream();
    nginx = await startNginx({
      dir: f('nginx'),
      port: await freePort(),
      serverCert: server.cert,
      serverKey: server.key,
      clientCa: f('client-ca.pem'),
      upstreamPort: upstream.port,
      revocation: { ocspResponder: `http://127.0.0.1:${devCa.server.statusPort}/ocsp` },
    });
  });

  after(async () => {
    try {
      for (const a of agents) await a.stop();
      for (const a of agents)
        for (const t of tokens) assert.ok(!a.stderr().includes(t), 'a token was written to the agent log');
      await nginx?.stop();
      await upstream?.close();
      if (devCa)
        assert.deepEqual(
          devCa.server.logs().filter((l) => l.level === 'error'),
          [],
          'no internal error logged',
        );
      await devCa?.server.stop();
      await new Promise((resolve) => (jwksServer === undefined ? resolve(undefined) : jwksServer.close(resolve)));
    } finally {
      dir.remove();
    }
  });

  /** The kubelet writing a (new) token into the pod's projected volume. */
  const kubelet = async (file: string, key: (typeof keys)[number], who: Pod, audience = AUDIENCE) => {
    const t = await projectedToken(key, who, audience);
    tokens.push(t);
    rotate(file, t);
  };
  /** GET through nginx with these client credentials, on a new connection. */
  const viaNginx = (cert: string, key: string) =>
    curl([
      '--resolve',
      `localhost:${nginx!.site.port}:127.0.0.1`,
      '--cacert',
      ca().roots,
      '--cert',
      cert,
      '--key',
      key,
      `https://localhost:${nginx!.site.port}/whoami`,
    ]);
  const accepted = async (cert: string, key: string, serial: string) => {
    const res = await viaNginx(cert, key);
    assert.equal(res.status, 200, `${res.text}\n${nginx?.errorLog()}`);
    const seen = res.json<Record<string, string>>();
    assert.equal(seen['x-client-verify'], 'SUCCESS');
    assert.equal(seen['x-client-serial']?.toLowerCase().replace(/^0+/, ''), serial);
  };
  const launch = (w: { cert: string; key: string; tokenFile: string }) => {
    const agent = startAgent([
      '--ca',
      ca().server.publicUrl,
      '--root',
      ca().roots,
      '--cert',
      w.cert,
      '--key',
      w.key,
      '--token-file',
      w.tokenFile,
      '--not-after',
      '1m',
      '--renew-at',
      '0.6',
      '--jitter',
      '0',
      '--no-ari',
      '--retry-min',
      '1s',
      '--retry-max',
      '4s',
      '--token-poll',
      '200ms',
    ]);
    agents.push(agent);
    return agent;
  };

  it(
    'bootstraps from the token file, renews, re-bootstraps with the rotated token after a revocation, and comes back after a pod restart; nginx accepts each certificate',
    { timeout: 240_000 },
    async (t) => {
      mkdirSync(f('pod'));
      const w = { cert: f('pod/tls.crt'), key: f('pod/tls.key'), tokenFile: f('pod/token') };
      await kubelet(w.tokenFile, keys[0]!, api);
      const agent = launch(w);

      const boot = await agent.waitFor('the first certificate', is('bootstrapped'), { timeoutMs: 30_000 });
      const leaf0 = leafOf(w.cert);
      assert.equal(leaf0.sans, `URI:${SPIFFE_ID}`, 'the names come from the template, filled from the token');
      const v = await verifyLeaf(w.cert, ca().roots, ca().intermediates);
      assert.ok(v.ok, v.output);
      await accepted(w.cert, w.key, leaf0.serial);

      const renewed = await agent.waitFor('a renewal over mutual TLS', is('renewed'), {
        from: boot.index,
        timeoutMs: 60_000,
      });
      const leaf1 = leafOf(w.cert);
      assert.notEqual(leaf1.serial, leaf0.serial);
      assert.equal(leaf1.sans, leaf0.sans);
      await accepted(w.cert, w.key, leaf1.serial);

      // The cluster rotates its signing key; the kubelet's next token is signed with the new one.
      await kubelet(w.tokenFile, keys[1]!, api);
      copyFileSync(w.cert, f('revoked.crt'));
      copyFileSync(w.key, f('revoked.key'));
      await shortleafOk(['revoke', leaf1.serial, '--reason', 'keyCompromise', '--data', ca().data]);
      const reauth = await agent.waitFor('the agent to authenticate again', is('reauthenticating'), {
        from: renewed.index + 1,
        timeoutMs: 60_000,
      });
      assert.equal(reauth.log.via, 'token-file');
      assert.match(String(reauth.log.reason), /certificateRevoked/);
      const again = await agent.waitFor('a certificate from the rotated token', is('bootstrapped'), {
        from: reauth.index,
        timeoutMs: 30_000,
      });
      const leaf2 = leafOf(w.cert);
      assert.equal(leaf2.serial, String(again.log.serial).toLowerCase().replace(/^0+/, ''));
      assert.notEqual(leaf2.serial, leaf1.serial);
      assert.equal(leaf2.sans, `URI:${SPIFFE_ID}`);
      assert.deepEqual(agent.logs().filter(is('bootstrap_failed')), [], 'the rotated token was accepted at once');
      await accepted(w.cert, w.key, leaf2.serial);
      await pollUntil(
        'nginx to refuse the revoked certificate',
        async () => ((await viaNginx(f('revoked.crt'), f('revoked.key'))).status === 400 ? true : undefined),
        { timeoutMs: 20_000, intervalMs: 200 },
      );
      assert.deepEqual(await agent.stop(), { code: 0, signal: null }, agent.stderr());

      // The pod is deleted and its Deployment starts another: a new pod name, empty volumes, a new
      // token for the same service account. No human step: the same identity comes back.
      mkdirSync(f('pod2'));
      const w2 = { cert: f('pod2/tls.crt'), key: f('pod2/tls.key'), tokenFile: f('pod2/token') };
      await kubelet(w2.tokenFile, keys[1]!, { ...api, pod: 'api-7d9f8b6c4-p8wzn' });
      const restarted = launch(w2);
      await restarted.waitFor('the restarted pod to get its certificate', is('bootstrapped'), { timeoutMs: 30_000 });
      const leaf3 = leafOf(w2.cert);
      assert.equal(leaf3.sans, `URI:${SPIFFE_ID}`);
      await accepted(w2.cert, w2.key, leaf3.serial);
      t.diagnostic(`serials: ${[leaf0, leaf1, leaf2, leaf3].map((l) => l.serial).join(' → ')}`);
    },
  );

  it(
    "--jwks-url: the cluster rotates its signing key and the CA picks the new key up from the cluster's JWKS without a restart",
    { timeout: 240_000 },
    async () => {
      mkdirSync(f('pod-url'));
      const w = { cert: f('pod-url/tls.crt'), key: f('pod-url/tls.key'), tokenFile: f('pod-url/token') };
      await kubelet(w.tokenFile, keys[0]!, api, URL_AUDIENCE);
      const agent = launch(w);
      const boot = await agent.waitFor('the first certificate', is('bootstrapped'), { timeoutMs: 30_000 });
      const bootAt = Date.parse(String(boot.log.time));
      // An unknown kid makes the CA fetch the key set again at most once a minute: the agent keeps
      // renewing (every 12 s) until a minute has passed since the fetch its bootstrap made.
      const later = await agent.waitFor(
        'a renewal a minute after the bootstrap',
        (l) => l.event === 'renewed' && Date.parse(String(l.time)) > bootAt + 61_000,
        { from: boot.index, timeoutMs: 120_000 },
      );
      const fetchesBefore = published.fetches;
      const revoked = leafOf(w.cert);

      published.keys = [keys[0]!.jwk, keys[1]!.jwk];
      await kubelet(w.tokenFile, keys[1]!, api, URL_AUDIENCE);
      await shortleafOk(['revoke', revoked.serial, '--data', ca().data]);
      const again = await agent.waitFor('a certificate from the token signed with the new key', is('bootstrapped'), {
        from: later.index + 1,
        timeoutMs: 60_000,
      });
      assert.deepEqual(agent.logs().filter(is('bootstrap_failed')), [], 'the new key was known at the first try');
      assert.ok(published.fetches > fetchesBefore, 'the CA fetched the JWKS again for the new kid');
      const leaf = leafOf(w.cert);
      assert.equal(leaf.serial, String(again.log.serial).toLowerCase().replace(/^0+/, ''));
      assert.equal(leaf.sans, `URI:${SPIFFE_ID}`);
      await accepted(w.cert, w.key, leaf.serial);
    },
  );
});
