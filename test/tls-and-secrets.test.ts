// What the HTTPS listener offers, judged by a real `openssl s_client`, and the refusal of secret
// files that group or others can read.
import assert from 'node:assert/strict';
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { run, shortleaf, shortleafOk, tempDir } from './helpers/cli.js';
import { serveExpectingFailure, startServer, type RunningServer } from './helpers/server.js';

describe('TLS versions and cipher suites of the HTTPS listener', () => {
  const dir = tempDir();
  const data = dir.file('data');
  let server: RunningServer | undefined;

  before(async () => {
    await shortleafOk(['init', '--data', data]);
    server = await startServer({ data });
  });

  after(async () => {
    try {
      await server?.stop();
    } finally {
      dir.remove();
    }
  });

  /** One handshake with `openssl s_client -brief`; what it negotiated, or why it failed. */
  async function handshake(
    args: string[],
  ): Promise<{ ok: boolean; protocol?: string; cipher?: string; output: string }> {
    assert.ok(server, 'the server did not start');
    const r = await run(
      'openssl',
      ['s_client', '-brief', '-connect', `127.0.0.1:${server.apiPort}`, '-servername', 'localhost', ...args],
      { input: '', timeoutMs: 15_000 },
    );
    const output = `${r.stdout}\n${r.stderr}`;
    const protocol = /Protocol version: (\S+)/.exec(output)?.[1];
    const cipher = /Ciphersuite: (\S+)/.exec(output)?.[1];
    return {
      ok: r.code === 0 && protocol !== undefined,
      ...(protocol ? { protocol } : {}),
      ...(cipher ? { cipher } : {}),
      output,
    };
  }

  it('TLS 1.3 is accepted', async () => {
    const r = await handshake(['-tls1_3']);
    assert.ok(r.ok, r.output);
    assert.equal(r.protocol, 'TLSv1.3');
  });

  it('TLS 1.2 with ECDHE-ECDSA-AES128-GCM-SHA256 (and CHACHA20-POLY1305) is accepted', async () => {
    for (const cipher of [
      'ECDHE-ECDSA-AES128-GCM-SHA256',
      'ECDHE-ECDSA-CHACHA20-POLY1305',
      'ECDHE-ECDSA-AES256-GCM-SHA384',
    ]) {
      const r = await handshake(['-tls1_2', '-cipher', cipher]);
      assert.ok(r.ok, r.output);
      assert.equal(r.protocol, 'TLSv1.2');
      assert.equal(r.cipher, cipher);
    }
  });

  it('TLS 1.2 with a CBC suite, or without ECDHE, is refused', async () => {
    // Node's default list accepts the first three; they are CBC (and SHA-1) suites.
    for (const cipher of [
      'ECDHE-ECDSA-AES128-SHA256',
      'ECDHE-ECDSA-AES256-SHA384',
      'ECDHE-ECDSA-AES128-SHA',
      'AES128-GCM-SHA256',
      'DHE-RSA-AES128-GCM-SHA256',
      'ECDHE-ECDSA-AES128-CCM',
    ]) {
      const r = await handshake(['-tls1_2', '-cipher', `${cipher}@SECLEVEL=0`]);
      assert.ok(!r.ok, `${cipher} must be refused:\n${r.output}`);
      assert.match(r.output, /handshake failure|no shared cipher|no ciphers available/, r.output);
    }
  });

  it('TLS 1.1 and 1.0 are refused by the server (the client is willing: SECLEVEL=0)', async () => {
    for (const version of ['-tls1_1', '-tls1']) {
      const r = await handshake([version, '-cipher', 'DEFAULT@SECLEVEL=0']);
      assert.ok(!r.ok, r.output);
      assert.match(r.output, /alert protocol version|unsupported protocol|wrong version number/, r.output);
      assert.doesNotMatch(r.output, /no protocols available/, 'the refusal must come from the server, not the client');
    }
  });
});

describe('secret files that group or others can read are refused', () => {
  const dir = tempDir();

  after(() => dir.remove());

  it('serve refuses a group-readable passphrase file (DATA/password and --password-file), naming it and the fix', async () => {
    const data = dir.file('data');
    await shortleafOk(['init', '--data', data]);
    const password = join(data, 'password');
    chmodSync(password, 0o640);
    const r = await serveExpectingFailure({ data });
    assert.ok(!r.listened && !r.timedOut, r.stderr);
    assert.equal(r.code, 1);
    assert.ok(r.stderr.includes(`${password} is readable by group or others (mode 0640)`), r.stderr);
    assert.ok(r.stderr.includes(`chmod 600 ${password}`), r.stderr);

    chmodSync(password, 0o604);
    const viaFlag = await serveExpectingFailure({ data, args: ['--password-file', password] });
    assert.equal(viaFlag.code, 1);
    assert.match(viaFlag.stderr, /mode 0604\); refusing to use a shared secret: chmod 600/);

    // Verbs that unseal refuse it too.
    const csr = await shortleaf(['intermediate', 'csr', '--data', data, '--out', dir.file('int.csr')]);
    assert.equal(csr.code, 1, csr.stdout);
    assert.match(csr.stderr, /readable by group or others/);

    chmodSync(password, 0o600);
    const ok = await startServer({ data });
    await ok.stop();
  });

  it('root verbs refuse a group-readable root key', async () => {
    const root = dir.file('root');
    const env = { SHORTLEAF_ROOT_PASSWORD: 'correct horse battery staple' };
    await shortleafOk(['root', 'init', '--out', root], { env });
    chmodSync(join(root, 'root.key'), 0o644);
    const r = await shortleaf(['root', 'crl', '--root', root, '--out', dir.file('root.crl')], { env });
    assert.equal(r.code, 1, r.stdout);
    assert.ok(r.stderr.includes(`chmod 600 ${join(root, 'root.key')}`), r.stderr);
    chmodSync(join(root, 'root.key'), 0o600);
    await shortleafOk(['root', 'crl', '--root', root, '--out', dir.file('root.crl')], { env });
  });
});
