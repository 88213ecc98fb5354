import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { certId } from './ari.js';
import { AgentUsageError, parseAgentArgs, parseDurationMs } from './cli.js';

describe('agent command line', () => {
  const dir = mkdtempSync(join(tmpdir(), 'shortleaf-agent-cli-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const root = join(dir, 'roots.pem');
  writeFileSync(root, 'roots');
  const base = ['--ca', 'https://ca.test:9443/', '--root', root, '--cert', 'c.pem', '--key', 'k.pem'];

  it('reads a certificate command with its defaults', () => {
    const cmd = parseAgentArgs([
      ...base,
      '--token-file',
      't',
      '--exec',
      'nginx -s reload',
      '--san',
      'a.test',
      '--san',
      'b.test',
    ]);
    assert.equal(cmd.mode, 'certificate');
    if (cmd.mode !== 'certificate') return;
    assert.equal(cmd.options.caUrl, 'https://ca.test:9443');
    assert.equal(cmd.options.renewAt, 0.66);
    assert.equal(cmd.options.jitter, 0.05);
    assert.equal(cmd.options.ariUrl, 'https://ca.test:9443/acme/acme/renewal-info');
    assert.deepEqual(cmd.options.token, { kind: 'file', path: 't' });
    assert.deepEqual(cmd.options.hook, { kind: 'exec', command: 'nginx -s reload', timeoutMs: 30_000 });
    assert.deepEqual(cmd.options.names, ['a.test', 'b.test']);
    assert.equal(cmd.options.retryMinMs, 2_000);
    assert.equal(cmd.once, false);
  });

  it('reads a CRL command', () => {
    const cmd = parseAgentArgs([
      'crl',
      '--url',
      'http://s/crl',
      '--root-url',
      'http://s/root.crl',
      '--root',
      root,
      '--out',
      'crl.pem',
      '--signal',
      'HUP',
      '--pid-file',
      'p',
      '--interval',
      '30s',
    ]);
    assert.deepEqual(cmd.mode === 'crl' && [cmd.urls, cmd.intervalMs, cmd.hook], [
      ['http://s/crl', 'http://s/root.crl'],
      30_000,
      { kind: 'signal', signal: 'SIGHUP', pidFile: 'p' },
    ]);
  });

  it('refuses each mistake with a sentence that says what to change', () => {
    const cases: Array<[string[], RegExp]> = [
      [['--ca', 'https://x'], /--root is required/],
      [[...base, '--token', 'a', '--token-file', 'b'], /--token or --token-file, not both/],
      [[...base.slice(0, 1), 'http://ca.test', ...base.slice(2)], /https:\/\//],
      [[...base, '--renew-at', '1.2'], /--renew-at must be a fraction/],
      [[...base, '--jitter', '0.5'], /--jitter/],
      [[...base, '--exec', 'x', '--signal', 'HUP'], /--exec or --signal, not both/],
      [[...base, '--signal', 'HUP'], /--pid-file/],
      [[...base, '--signal', 'KILL', '--pid-file', 'p'], /--signal must be/],
      [[...base, '--retry-min', '10s', '--retry-max', '1s'], /--retry-max/],
      [[...base, '--kty', 'DSA'], /--kty/],
      [[...base, '--health-addr', 'nope'], /HOST:PORT/],
      [[...base, '--bogus'], /bogus/],
      [[...base, '--force'], /--force goes with --once/],
      [['crl', '--root', root, '--out', 'x'], /--url/],
      [['crl', '--url', 'ftp://x', '--root', root, '--out', 'x'], /not an http/],
    ];
    for (const [args, message] of cases)
      assert.throws(
        () => parseAgentArgs(args),
        (err: unknown) => err instanceof AgentUsageError && message.test(err.message),
        args.join(' '),
      );
  });

  describe('the EAB HMAC key, kept out of `ps`', () => {
    const acme = [
      ...base,
      '--acme',
      'https://ca.test:9443/acme/acme/directory',
      '--san',
      'a.test',
      '--eab-kid',
      'kid-1',
    ];
    const eabOf = (cmd: ReturnType<typeof parseAgentArgs>) =>
      cmd.mode === 'certificate' ? cmd.options.acme?.eab : undefined;
    const hmacFile = join(dir, 'eab-hmac');
    writeFileSync(hmacFile, 'c2VjcmV0LWhtYWMta2V5\n', { mode: 0o600 });

    it('reads it from --eab-hmac-file, trimmed as --token-file is', () => {
      assert.deepEqual(eabOf(parseAgentArgs([...acme, '--eab-hmac-file', hmacFile], {})), {
        kid: 'kid-1',
        hmacKey: 'c2VjcmV0LWhtYWMta2V5',
      });
    });

    it('reads it from SHORTLEAF_EAB_HMAC when no flag gives it', () => {
      assert.deepEqual(eabOf(parseAgentArgs(acme, { SHORTLEAF_EAB_HMAC: 'ZnJvbS1lbnY' })), {
        kid: 'kid-1',
        hmacKey: 'ZnJvbS1lbnY',
      });
      // A flag says more than the ambient environment.
      assert.deepEqual(
        eabOf(parseAgentArgs([...acme, '--eab-hmac-file', hmacFile], { SHORTLEAF_EAB_HMAC: 'ZnJvbS1lbnY' })),
        { kid: 'kid-1', hmacKey: 'c2VjcmV0LWhtYWMta2V5' },
      );
      // The environment alone, without --eab-kid, asks for no EAB.
      assert.equal(eabOf(parseAgentArgs(acme.slice(0, -2), { SHORTLEAF_EAB_HMAC: 'ZnJvbS1lbnY' })), null);
    });

    it('still takes --eab-hmac on the command line, and says it is visible there', () => {
      const cmd = parseAgentArgs([...acme, '--eab-hmac=LWRhc2g'], {});
      assert.deepEqual(eabOf(cmd), { kid: 'kid-1', hmacKey: 'LWRhc2g' });
      assert.deepEqual(cmd.mode === 'certificate' ? cmd.secretsOnCommandLine : null, ['--eab-hmac']);
      const fromFile = parseAgentArgs([...acme, '--eab-hmac-file', hmacFile], {});
      assert.deepEqual(fromFile.mode === 'certificate' ? fromFile.secretsOnCommandLine : null, []);
    });

    it('refuses a missing, empty or doubly given key', () => {
      const empty = join(dir, 'empty-hmac');
      writeFileSync(empty, '\n');
      const cases: Array<[string[], RegExp]> = [
        [acme, /--eab-kid needs the HMAC key: --eab-hmac-file FILE, or SHORTLEAF_EAB_HMAC/],
        [[...acme, '--eab-hmac-file', empty], /is empty/],
        [[...acme, '--eab-hmac-file', join(dir, 'absent')], /cannot read the EAB HMAC key file/],
        [[...acme, '--eab-hmac', 'a', '--eab-hmac-file', hmacFile], /not both/],
        [[...acme.slice(0, -2), '--eab-hmac-file', hmacFile], /go with --eab-kid/],
        [[...base, '--token', 't', '--eab-hmac-file', hmacFile], /--eab-hmac-file goes with --acme/],
      ];
      for (const [args, message] of cases)
        assert.throws(
          () => parseAgentArgs(args, {}),
          (err: unknown) => err instanceof AgentUsageError && message.test(err.message),
          args.join(' '),
        );
    });
  });

  it('reads durations', () => {
    assert.equal(parseDurationMs('250ms', 'x'), 250);
    assert.equal(parseDurationMs('1.5s', 'x'), 1_500);
    assert.equal(parseDurationMs('5m', 'x'), 300_000);
    assert.throws(() => parseDurationMs('5 minutes', '--interval'), /--interval must be a duration/);
  });
});

describe('ARI certificate identifier (RFC 9773 §4.1)', () => {
  it('encodes the AKI and the serial as a DER integer, with a leading zero when the top bit is set', () => {
    const aki = Uint8Array.from([0x69, 0x88, 0x5b, 0x6b]);
    assert.equal(
      certId({ authorityKeyIdentifier: aki, serial: '87654321' }),
      `${Buffer.from(aki).toString('base64url')}.${Buffer.from([0, 0x87, 0x65, 0x43, 0x21]).toString('base64url')}`,
    );
    assert.equal(
      certId({ authorityKeyIdentifier: aki, serial: '1234567' }),
      `${Buffer.from(aki).toString('base64url')}.${Buffer.from([0x01, 0x23, 0x45, 0x67]).toString('base64url')}`,
    );
    assert.equal(certId({ authorityKeyIdentifier: null, serial: '01' }), null);
  });
});
