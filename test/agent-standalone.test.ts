// The agent as its own program: one bundled file that a bare `node` runs from an empty folder,
// with no node_modules, gets a certificate with a token and renews it over mutual TLS.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT, run, shortleafOk, tempDir } from './helpers/cli.js';
import { startDevCa, type DevCa } from './helpers/dev-ca.js';
import { openssl } from './helpers/openssl.js';

describe('the standalone agent bundle', () => {
  const dir = tempDir();
  const bare = dir.file('bare');
  let ca: DevCa | undefined;

  before(async () => {
    mkdirSync(bare);
    const bundle = dir.file('shortleaf-agent.mjs');
    const built = await run(process.execPath, [join(REPO_ROOT, 'apps/agent/build.mjs'), '--outfile', bundle], {
      timeoutMs: 60_000,
    });
    assert.equal(built.code, 0, built.stderr);
    copyFileSync(bundle, join(bare, 'shortleaf-agent.mjs'));
    ca = await startDevCa(dir.path);
  });

  after(async () => {
    try {
      await ca?.server.stop();
    } finally {
      dir.remove();
    }
  });

  const agent = (args: string[]) =>
    run(process.execPath, ['shortleaf-agent.mjs', ...args], { cwd: bare, timeoutMs: 30_000 });

  it('runs from a folder with nothing but itself', async () => {
    const help = await agent(['--help']);
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /shortleaf agent: keeps a certificate current/);
  });

  it('bootstraps with a token, then renews over mutual TLS with --once', async () => {
    const token = (
      await shortleafOk([
        'token',
        'edge.svc.test',
        '--provisioner',
        'admin',
        '--key',
        ca!.adminKey,
        '--ca',
        ca!.server.publicUrl,
      ])
    ).stdout.trim();
    const common = [
      '--ca',
      ca!.server.publicUrl,
      '--root',
      ca!.roots,
      '--cert',
      'edge.crt',
      '--key',
      'edge.key',
      '--no-ari',
    ];
    const first = await agent([...common, '--token', token, '--once']);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, /"event":"bootstrapped"/);
    assert.equal(statSync(join(bare, 'edge.key')).mode & 0o777, 0o600);
    const serial1 = (await openssl(['x509', '-in', join(bare, 'edge.crt'), '-noout', '-serial'])).trim();
    await openssl(['verify', '-CAfile', ca!.roots, '-untrusted', ca!.intermediates, join(bare, 'edge.crt')]);
    const key1 = readFileSync(join(bare, 'edge.key'));

    const notDue = await agent([...common, '--once']);
    assert.match(notDue.stderr, /"outcome":"not due"/);
    const second = await agent([...common, '--once', '--force']);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stderr, /"event":"renewed"/);
    const serial2 = (await openssl(['x509', '-in', join(bare, 'edge.crt'), '-noout', '-serial'])).trim();
    assert.notEqual(serial2, serial1);
    assert.deepEqual(readFileSync(join(bare, 'edge.key')), key1, 'renewal without --rekey keeps the key');
    const san = await openssl(['x509', '-in', join(bare, 'edge.crt'), '-noout', '-ext', 'subjectAltName']);
    assert.match(san, /DNS:edge\.svc\.test/);
  });
});
