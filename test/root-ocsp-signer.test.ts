// The responder the root delegates to answer for the intermediate's own status has ocsp-nocheck
// and an online key: it cannot be revoked, so the ceremony signs it for 90 days by default, refuses
// more than a year, the server warns before it lapses, and each ceremony re-signs it
// (`intermediate ocsp-csr`, `root sign-ocsp`, `intermediate ocsp-import`) without a restart: the
// one in use keeps answering until its replacement is imported.
import assert from 'node:assert/strict';
import { randomBytes, X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { shortleaf, shortleafOk, tempDir } from './helpers/cli.js';
import { curl } from './helpers/http.js';
import { ocsp } from './helpers/revocation.js';
import { pollUntil, startServer, type RunningServer } from './helpers/server.js';

const DAY = 86_400_000;
const lifetimeMs = (file: string) => {
  const x = new X509Certificate(readFileSync(file));
  return Date.parse(x.validTo) - Date.parse(x.validFrom);
};

describe('the root-delegated OCSP responder is short-lived and re-signed at each ceremony', () => {
  const dir = tempDir();
  const f = (name: string) => dir.file(name);
  const rootDir = f('root');
  const rootCrt = join(rootDir, 'root.crt');
  const data = f('data');
  const rootEnv = { SHORTLEAF_ROOT_PASSWORD: `root-${randomBytes(12).toString('hex')}` };
  const dataEnv = { SHORTLEAF_PASSWORD: `data-${randomBytes(12).toString('hex')}` };
  let server: RunningServer | undefined;
  after(async () => {
    try {
      if (server)
        assert.deepEqual(
          server.logs().filter((l) => l.level === 'error'),
          [],
          'no error logged',
        );
      await server?.stop();
    } finally {
      dir.remove();
    }
  });

  /** The responder certificate's notAfter in the answer about the intermediate, as OpenSSL prints it. */
  const intermediateAnswer = async () => {
    const r = await ocsp([
      '-issuer',
      rootCrt,
      '-cert',
      f('int.crt'),
      '-url',
      `${server!.statusUrl}/ocsp`,
      '-CAfile',
      rootCrt,
      '-resp_text',
      '-no_nonce',
    ]);
    assert.ok(r.verified, r.output);
    assert.equal(r.single(f('int.crt'))?.status, 'good', r.output);
    return { notAfter: /Not After : (.+)$/m.exec(r.output)?.[1]?.trim() ?? '', output: r.output };
  };
  const health = async () =>
    (await curl(['--cacert', rootCrt, `${server!.publicUrl}/health`])).json<{ status: string; warnings: string[] }>();

  it('signs it for 90 days unless told otherwise, and refuses more than a year before opening the root', async () => {
    await shortleafOk(['root', 'init', '--out', rootDir], { env: rootEnv });
    await shortleafOk(['intermediate', 'csr', '--data', data, '--out', f('int.csr'), '--ocsp-out', f('ocsp.csr')], {
      env: dataEnv,
    });
    const long = await shortleaf(
      [
        'root',
        'sign-intermediate',
        '--root',
        rootDir,
        '--csr',
        f('int.csr'),
        '--out',
        f('int.crt'),
        '--ocsp-csr',
        f('ocsp.csr'),
        '--ocsp-out',
        f('ocsp.crt'),
        '--ocsp-validity',
        '400d',
      ],
      { env: {} },
    );
    assert.equal(long.code, 2, long.stderr);
    assert.match(long.stderr, /--ocsp-validity is at most 366d/);
    const r = await shortleafOk(
      [
        'root',
        'sign-intermediate',
        '--root',
        rootDir,
        '--csr',
        f('int.csr'),
        '--out',
        f('int.crt'),
        '--validity',
        '1825d',
        '--ocsp-csr',
        f('ocsp.csr'),
        '--ocsp-out',
        f('ocsp.crt'),
      ],
      { env: rootEnv },
    );
    assert.match(r.stdout, /re-sign it before then/);
    assert.ok(
      Math.abs(lifetimeMs(f('ocsp.crt')) - (90 * DAY + 5 * 60_000)) <= 2_000,
      `90 days (and the 5-minute backdate), not the intermediate's 5 years: ${lifetimeMs(f('ocsp.crt'))}`,
    );
    assert.ok(lifetimeMs(f('int.crt')) > 1800 * DAY);
    await shortleafOk([
      'intermediate',
      'import',
      '--data',
      data,
      '--cert',
      f('int.crt'),
      '--root',
      rootCrt,
      '--ocsp-cert',
      f('ocsp.crt'),
    ]);
    await shortleafOk(['root', 'crl', '--root', rootDir, '--out', f('root.crl')], { env: rootEnv });
    await shortleafOk(['root-crl', 'import', f('root.crl'), '--data', data]);
  });

  it('warns in /health and the log when it lapses within intermediate.ocspSignerWarnBefore', async () => {
    writeFileSync(f('serve.json'), JSON.stringify({ intermediate: { ocspSignerWarnBefore: '100d' } }));
    server = await startServer({ data, env: dataEnv, args: ['--config', f('serve.json')] });
    const h = await health();
    assert.equal(h.status, 'warn');
    assert.equal(h.warnings.length, 1, h.warnings.join('\n'));
    assert.match(
      h.warnings[0]!,
      /root-delegated OCSP responder of primary expires at .* \(in 90 d\): run `shortleaf intermediate ocsp-csr --name primary`/,
    );
    assert.equal(server.logs().find((l) => l.event === 'root_ocsp_signer_warning')?.level, 'warn');
    assert.equal((await intermediateAnswer()).notAfter, new X509Certificate(readFileSync(f('ocsp.crt'))).validTo);
  });

  it('a new key awaiting the ceremony does not stop the one in use; the imported one answers without a restart', async () => {
    await shortleafOk(['intermediate', 'ocsp-csr', '--data', data, '--out', f('ocsp2.csr')], { env: dataEnv });
    // Still answered, by the responder already certified.
    assert.equal((await intermediateAnswer()).notAfter, new X509Certificate(readFileSync(f('ocsp.crt'))).validTo);
    const refused = await shortleaf(
      ['root', 'sign-ocsp', '--root', rootDir, '--csr', f('ocsp2.csr'), '--out', f('ocsp2.crt'), '--validity', '5y'],
      { env: {} },
    );
    assert.equal(refused.code, 2, refused.stderr);
    await shortleafOk(
      ['root', 'sign-ocsp', '--root', rootDir, '--csr', f('ocsp2.csr'), '--out', f('ocsp2.crt'), '--validity', '200d'],
      { env: rootEnv },
    );
    const imp = await shortleafOk([
      'intermediate',
      'ocsp-import',
      '--data',
      data,
      '--cert',
      f('ocsp2.crt'),
      '--root',
      rootCrt,
    ]);
    assert.match(imp.stdout, /imported the root-delegated OCSP responder certificate for primary/);
    const next = new X509Certificate(readFileSync(f('ocsp2.crt'))).validTo;
    await pollUntil(
      'the server answers with the new responder',
      async () => ((await intermediateAnswer()).notAfter === next ? true : undefined),
      { timeoutMs: 15_000, intervalMs: 500 },
    );
    assert.ok(server!.logs().some((l) => l.event === 'root_ocsp_signer_loaded'));
    assert.deepEqual((await health()).warnings, [], 'the 200-day responder is outside the 100-day warning');
  });

  it('intermediate list warns when the responder lapses within 14 days', async () => {
    const before = await shortleafOk(['intermediate', 'list', '--data', data]);
    assert.doesNotMatch(before.stdout, /warning/);
    await shortleafOk(['intermediate', 'ocsp-csr', '--data', data, '--out', f('ocsp3.csr')], { env: dataEnv });
    await shortleafOk(
      ['root', 'sign-ocsp', '--root', rootDir, '--csr', f('ocsp3.csr'), '--out', f('ocsp3.crt'), '--validity', '7d'],
      { env: rootEnv },
    );
    await shortleafOk(['intermediate', 'ocsp-import', '--data', data, '--cert', f('ocsp3.crt'), '--root', rootCrt]);
    const after = await shortleafOk(['intermediate', 'list', '--data', data]);
    assert.match(after.stdout, /^warning: the root-delegated OCSP responder of primary expires at .* \(in 7 d\)/m);
  });

  it('refuses a responder certificate for another key (the one it replaced)', async () => {
    const again = await shortleaf([
      'intermediate',
      'ocsp-import',
      '--data',
      data,
      '--cert',
      f('ocsp.crt'),
      '--root',
      rootCrt,
    ]);
    assert.equal(again.code, 1, again.stderr);
    assert.match(again.stderr, /not for the key sealed in this database.*\[issuerMismatch\]/);
  });
});
