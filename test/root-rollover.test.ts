// A root rollover: a second root signs the next intermediate, the server publishes both roots,
// and once that intermediate is active its HTTPS certificate chains to the new root. An agent
// whose --root file holds both roots keeps renewing; one holding only the old root cannot reach
// the server any more. Real `shortleaf serve`, `shortleaf agent` and OpenSSL; every wait bounded.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodePem } from '@shortleaf/pki';
import { after, before, describe, it } from 'node:test';
import {
  addShortLivedProvisioner,
  leafOf,
  mintTokenCli,
  runAgent,
  startAgent,
  verifyLeaf,
  type RunningAgent,
} from './helpers/agent.js';
import { shortleafOk, tempDir } from './helpers/cli.js';
import { startDevCa, type DevCa } from './helpers/dev-ca.js';
import { curl } from './helpers/http.js';
import { openssl, opensslResult } from './helpers/openssl.js';
import { recordSecret } from './helpers/secret-log.js';
import { pollUntil } from './helpers/server.js';

const countCertificates = (pem: string) => pem.match(/-----BEGIN CERTIFICATE-----/g)?.length ?? 0;

describe('root rollover: the next intermediate under a new root', () => {
  const dir = tempDir();
  const rootEnv = { SHORTLEAF_ROOT_PASSWORD: `root-${randomBytes(12).toString('hex')}` };
  recordSecret(rootEnv.SHORTLEAF_ROOT_PASSWORD);
  let devCa: DevCa | undefined;
  let live: RunningAgent | undefined;
  const ca = () => {
    assert.ok(devCa, 'the CA did not start');
    return devCa;
  };
  const f = dir.file;
  const oldRoot = () => join(ca().data, 'offline-root', 'root.crt');
  const agentArgs = (root: string) => [
    '--ca',
    ca().server.publicUrl,
    '--root',
    root,
    '--cert',
    f('svc.pem'),
    '--key',
    f('svc.key'),
    '--chain',
    f('svc-chain.pem'),
    '--no-ari',
  ];

  before(async () => {
    devCa = await startDevCa(dir.path, {
      beforeServe: (data) => addShortLivedProvisioner(data, 'short', f('short.jwk')),
    });
  });
  after(async () => {
    await live?.stop();
    await devCa?.server.stop();
    dir.remove();
  });

  it('both roots are published, and after activation an agent trusting both renews from the new chain', async () => {
    // An agent bootstraps under the old root, trusting only it.
    const token = await mintTokenCli({
      caUrl: ca().server.publicUrl,
      provisioner: 'short',
      key: f('short.jwk'),
      subject: 'svc.test',
    });
    const first = await runAgent([...agentArgs(oldRoot()), '--token', token, '--once']);
    assert.equal(first.code, 0, first.stderr);
    const firstLeaf = leafOf(f('svc.pem'));
    // A second agent keeps running, renewing every few seconds, with a root file holding the old root only.
    writeFileSync(f('live-roots.pem'), readFileSync(oldRoot(), 'utf8'));
    live = startAgent([
      '--ca',
      ca().server.publicUrl,
      '--root',
      f('live-roots.pem'),
      '--cert',
      f('live.pem'),
      '--key',
      f('live.key'),
      '--chain',
      f('live-chain.pem'),
      '--san',
      'live.test',
      '--token',
      await mintTokenCli({
        caUrl: ca().server.publicUrl,
        provisioner: 'short',
        key: f('short.jwk'),
        subject: 'live.test',
      }),
      '--not-after',
      '1m',
      '--renew-at',
      '0.55',
      '--jitter',
      '0',
      '--no-ari',
      '--retry-min',
      '1s',
      '--retry-max',
      '2s',
    ]);
    await live.waitFor('the live agent bootstraps', (l) => l.event === 'bootstrapped', { timeoutMs: 30_000 });

    // The new root, offline; the next intermediate signed by it and imported (staged).
    await shortleafOk(['root', 'init', '--out', f('new-root'), '--cn', 'Shortleaf Second Root'], { env: rootEnv });
    await shortleafOk(['intermediate', 'csr', '--data', ca().data, '--name', 'rolled', '--out', f('rolled.csr')]);
    await shortleafOk(
      ['root', 'sign-intermediate', '--root', f('new-root'), '--csr', f('rolled.csr'), '--out', f('rolled.crt')],
      { env: rootEnv },
    );
    await shortleafOk([
      'intermediate',
      'import',
      '--data',
      ca().data,
      '--name',
      'rolled',
      '--cert',
      f('rolled.crt'),
      '--root',
      join(f('new-root'), 'root.crt'),
    ]);
    writeFileSync(
      f('both-roots.pem'),
      readFileSync(oldRoot(), 'utf8') + readFileSync(join(f('new-root'), 'root.crt'), 'utf8'),
    );

    // /roots.pem carries both roots as soon as the import lands, on both listeners.
    const roots = await pollUntil(
      'two roots in /roots.pem',
      async () => {
        const res = await curl([`${ca().server.status}/roots.pem`]);
        return countCertificates(res.text) === 2 ? res.text : undefined;
      },
      { timeoutMs: 15_000 },
    );
    const apiRoots = await curl(['--cacert', f('both-roots.pem'), `${ca().server.publicUrl}/roots.pem`]);
    assert.equal(apiRoots.text, roots, 'the API and the status listener publish the same roots');
    const ders = (pem: string) => decodePem(pem).map((b) => Buffer.from(b.der).toString('hex'));
    assert.deepEqual(
      ders(roots),
      [...ders(readFileSync(oldRoot(), 'utf8')), ...ders(readFileSync(join(f('new-root'), 'root.crt'), 'utf8'))],
      'the old root, then the new one',
    );

    // Each root's CRL is published by fingerprint, so proxies that check the whole chain can hold both.
    await shortleafOk(['root', 'crl', '--root', f('new-root'), '--out', f('new-root.crl')], { env: rootEnv });
    await shortleafOk(['root-crl', 'import', f('new-root.crl'), '--data', ca().data]);
    for (const [root, cn] of [
      [oldRoot(), 'Shortleaf Development Root CA'],
      [join(f('new-root'), 'root.crt'), 'Shortleaf Second Root'],
    ] as const) {
      const fingerprint = (await openssl(['x509', '-noout', '-fingerprint', '-sha256', '-in', root]))
        .trim()
        .split('=')[1]!;
      const crl = await pollUntil(
        `the CRL of ${cn}`,
        async () => {
          const res = await curl([`${ca().server.status}/root/${fingerprint}.crl`]);
          return res.status === 200 ? res.body : undefined;
        },
        { timeoutMs: 15_000 },
      );
      writeFileSync(f('fetched-root.crl'), crl);
      const verified = await opensslResult([
        'crl',
        '-inform',
        'DER',
        '-in',
        f('fetched-root.crl'),
        '-CAfile',
        root,
        '-noout',
        '-issuer',
      ]);
      assert.equal(verified.code, 0, verified.stderr);
      assert.match(`${verified.stdout}${verified.stderr}`, /verify OK/);
      assert.match(verified.stdout, new RegExp(cn));
    }

    await shortleafOk(['intermediate', 'activate', '--data', ca().data, 'rolled']);
    // The server re-issues its own HTTPS certificate from the new intermediate at once.
    await pollUntil(
      'the HTTPS listener chains to the new root',
      async () => {
        const res = await curl(['--cacert', join(f('new-root'), 'root.crt'), `${ca().server.publicUrl}/health`]).catch(
          () => undefined,
        );
        return res?.status === 200 && /"issuer":"rolled"/.test(res.text) ? true : undefined;
      },
      { timeoutMs: 20_000 },
    );

    // Trusting only the old root, the agent can no longer reach the server: the --root file is what it trusts.
    const refused = await runAgent([...agentArgs(oldRoot()), '--once', '--force']);
    assert.notEqual(refused.code, 0, 'an agent trusting only the old root must not accept the new chain');
    assert.equal(leafOf(f('svc.pem')).serial, firstLeaf.serial, 'a failed renewal keeps the files');

    // Trusting both, it renews over mTLS with its old-root certificate and gets one under the new root.
    const renewed = await runAgent([...agentArgs(f('both-roots.pem')), '--once', '--force']);
    assert.equal(renewed.code, 0, renewed.stderr);
    const leaf = leafOf(f('svc.pem'));
    assert.notEqual(leaf.serial, firstLeaf.serial);
    const chain = readFileSync(f('svc-chain.pem'), 'utf8');
    assert.equal(countCertificates(chain), 1);
    assert.match(
      await openssl(['x509', '-noout', '-subject'], chain),
      /Shortleaf Intermediate CA rolled/,
      'the chain file holds the intermediate that issued the leaf',
    );
    assert.ok(
      (await verifyLeaf(f('svc.pem'), join(f('new-root'), 'root.crt'), f('svc-chain.pem'))).ok,
      'the new leaf verifies under the new root',
    );
    assert.equal(
      (await verifyLeaf(f('svc.pem'), oldRoot(), f('svc-chain.pem'))).ok,
      false,
      'and not under the old one',
    );

    // The running agent cannot renew now; once the new root is added to its file, it renews
    // without a restart, from the new chain.
    const agent = live!;
    const failed = await agent.waitFor(
      'a renewal refused by TLS (old root only)',
      (l) => l.event === 'renewal_failed',
      { timeoutMs: 60_000 },
    );
    writeFileSync(f('live-roots.pem'), readFileSync(f('both-roots.pem'), 'utf8'));
    await agent.waitFor('the roots reloaded', (l) => l.event === 'roots_reloaded', {
      from: failed.index,
      timeoutMs: 30_000,
    });
    await agent.waitFor('a renewal with both roots trusted', (l) => l.event === 'renewed', {
      from: failed.index,
      timeoutMs: 30_000,
    });
    assert.match(
      await openssl(['x509', '-noout', '-issuer', '-in', f('live.pem')]),
      /Shortleaf Intermediate CA rolled/,
    );
    assert.ok((await verifyLeaf(f('live.pem'), join(f('new-root'), 'root.crt'), f('live-chain.pem'))).ok);
    assert.equal(agent.exited(), null, 'the agent was never restarted');
  });
});
