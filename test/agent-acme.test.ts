// The agent's first certificate over ACME instead of a token: it answers http-01 itself, with
// and without External Account Binding, then renews over ACME too (the CA does not renew ACME
// certificates over mutual TLS by default: a new order checks the authorizations again).
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { run, shortleafArgs, shortleafOk, tempDir } from './helpers/cli.js';
import { startDevCa, type DevCa } from './helpers/dev-ca.js';
import { openssl } from './helpers/openssl.js';
import { freePort } from './helpers/server.js';

describe('agent: bootstrap over ACME', () => {
  const dir = tempDir();
  let ca: DevCa | undefined;
  let httpPort = 0;
  let eab = { kid: '', hmac: '' };

  before(async () => {
    httpPort = await freePort();
    const config = dir.file('config.json');
    writeFileSync(
      config,
      JSON.stringify({
        acme: { validation: { httpPort, hosts: { 'edge1.test': '127.0.0.1', 'edge2.test': '127.0.0.1' } } },
      }),
    );
    ca = await startDevCa(dir.path, {
      beforeServe: async (data) => {
        await shortleafOk(['provisioner', 'add', 'partners', '--type', 'acme', '--require-eab', '--data', data]);
        const out = (await shortleafOk(['acme', 'eab', 'add', '--provisioner', 'partners', '--data', data])).stdout;
        eab = { kid: /^kid: (\S+)$/m.exec(out)![1]!, hmac: /^hmac: (\S+)$/m.exec(out)![1]! };
      },
      serve: { args: ['--config', config] },
    });
  });

  after(async () => {
    try {
      await ca?.server.stop();
    } finally {
      dir.remove();
    }
  });

  const agent = (args: string[]) => run(process.execPath, shortleafArgs(['agent', ...args]), { timeoutMs: 60_000 });

  for (const variant of ['acme', 'partners'] as const) {
    it(`gets a certificate from /acme/${variant} answering http-01, then renews it over ACME, keeping the key`, async () => {
      const name = variant === 'acme' ? 'edge1.test' : 'edge2.test';
      const cert = dir.file(`${variant}.crt`);
      const key = dir.file(`${variant}.key`);
      const common = ['--ca', ca!.server.publicUrl, '--root', ca!.roots, '--cert', cert, '--key', key, '--no-ari'];
      // The EAB HMAC key comes from a file, out of sight of `ps`.
      const hmacFile = dir.file('eab-hmac');
      writeFileSync(hmacFile, `${eab.hmac}\n`, { mode: 0o600 });
      const acme = [
        '--acme',
        `${ca!.server.publicUrl}/acme/${variant}/directory`,
        '--http-01-addr',
        `127.0.0.1:${httpPort}`,
        '--san',
        name,
        ...(variant === 'partners' ? ['--eab-kid', eab.kid, '--eab-hmac-file', hmacFile] : []),
      ];
      const first = await agent([...common, ...acme, '--once']);
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stderr, /"event":"bootstrapped"/);
      await openssl(['verify', '-CAfile', ca!.roots, '-untrusted', ca!.intermediates, cert]);
      assert.match(
        await openssl(['x509', '-in', cert, '-noout', '-ext', 'subjectAltName']),
        new RegExp(`DNS:${name.replace('.', '\\.')}`),
      );
      const serial1 = await openssl(['x509', '-in', cert, '-noout', '-serial']);
      const keyBefore = readFileSync(key);

      const renewed = await agent([...common, ...acme, '--once', '--force']);
      assert.equal(renewed.code, 0, renewed.stderr);
      assert.match(renewed.stderr, /"event":"renewed"/);
      assert.notEqual(await openssl(['x509', '-in', cert, '-noout', '-serial']), serial1);
      assert.deepEqual(readFileSync(key), keyBefore);
    });
  }

  it('fails clearly when the provisioner requires EAB and none is given, and writes nothing', async () => {
    const cert = dir.file('noeab.crt');
    const res = await agent([
      '--ca',
      ca!.server.publicUrl,
      '--root',
      ca!.roots,
      '--cert',
      cert,
      '--key',
      dir.file('noeab.key'),
      '--acme',
      `${ca!.server.publicUrl}/acme/partners/directory`,
      '--http-01-addr',
      `127.0.0.1:${httpPort}`,
      '--san',
      'edge2.test',
      '--once',
    ]);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /externalAccountRequired/);
    assert.throws(() => readFileSync(cert), /ENOENT/);
  });
});
