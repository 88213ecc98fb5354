// The intermediate names where its own status lives: `root sign-intermediate --status-url` puts
// the root-delegated OCSP responder and the root's certificate (AIA) and the root's CRL (CRL DP)
// on it, pointing at the status listener, so a verifier checking the whole chain (NSS with OCSP
// on every certificate) can find them. OpenSSL reads the extensions, verifies the chain with
// -x509_strict and -crl_check_all, and asks the OCSP URL the intermediate names.
import assert from 'node:assert/strict';
import { randomBytes, X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { shortleaf, shortleafOk, tempDir } from './helpers/cli.js';
import { curl } from './helpers/http.js';
import { extension, handshakeCertificates, openssl, opensslResult, x509TextOfFile } from './helpers/openssl.js';
import { ocsp } from './helpers/revocation.js';
import { freePort, startServer, type RunningServer } from './helpers/server.js';

describe('the intermediate names its OCSP responder, its issuer and its CRL', () => {
  const dir = tempDir();
  const f = (name: string) => dir.file(name);
  const rootDir = f('root');
  const data = f('data');
  const rootCrt = join(rootDir, 'root.crt');
  const rootEnv = { SHORTLEAF_ROOT_PASSWORD: `root-${randomBytes(12).toString('hex')}` };
  const dataEnv = { SHORTLEAF_PASSWORD: `data-${randomBytes(12).toString('hex')}` };
  let server: RunningServer | undefined;
  let statusUrl = '';
  let fingerprint = '';
  after(async () => {
    try {
      await server?.stop();
    } finally {
      dir.remove();
    }
  });

  it('refuses a --status-url that is not a plain http:// base URL', async () => {
    await shortleafOk(['root', 'init', '--out', rootDir], { env: rootEnv });
    await shortleafOk(['intermediate', 'csr', '--data', data, '--out', f('int.csr'), '--ocsp-out', f('ocsp.csr')], {
      env: dataEnv,
    });
    const r = await shortleaf(
      [
        'root',
        'sign-intermediate',
        '--root',
        rootDir,
        '--csr',
        f('int.csr'),
        '--out',
        f('int.crt'),
        '--status-url',
        'https://ca.internal:9080/status',
      ],
      { env: rootEnv },
    );
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--status-url must be the status listener's plain http:\/\/ base URL/);
  });

  it('sign-intermediate --status-url writes the AIA and CRL distribution point', async () => {
    statusUrl = `http://127.0.0.1:${await freePort()}`;
    fingerprint = new X509Certificate(readFileSync(rootCrt)).fingerprint256.replace(/:/g, '').toLowerCase();
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
        '--ocsp-csr',
        f('ocsp.csr'),
        '--ocsp-out',
        f('ocsp.crt'),
        '--status-url',
        `${statusUrl}/`,
      ],
      { env: rootEnv },
    );
    assert.match(r.stdout, /names the root's certificate/);
    const t = await x509TextOfFile(f('int.crt'));
    const aia = extension(t, 'Authority Information Access') ?? '';
    assert.match(aia, new RegExp(`OCSP - URI:${statusUrl}/ocsp`));
    assert.match(aia, new RegExp(`CA Issuers - URI:${statusUrl}/root/${fingerprint}\\.crt`));
    assert.match(
      extension(t, 'X509v3 CRL Distribution Points') ?? '',
      new RegExp(`URI:${statusUrl}/root/${fingerprint}\\.crl`),
    );
    assert.match(await openssl(['verify', '-x509_strict', '-CAfile', rootCrt, f('int.crt')]), /: OK$/m);
  });

  it('the status listener serves what the intermediate names, and OpenSSL checks the whole chain with it', async () => {
    await shortleafOk(
      [
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
      ],
      { env: dataEnv },
    );
    await shortleafOk(['root', 'crl', '--root', rootDir, '--out', f('root.crl')], { env: rootEnv });
    await shortleafOk(['root-crl', 'import', f('root.crl'), '--data', data]);
    server = await startServer({ data, env: dataEnv, args: ['--status-listen', statusUrl.slice('http://'.length)] });
    assert.equal(server.statusUrl, statusUrl);
    assert.equal(
      server.logs().find((l) => l.event === 'intermediate_urls_elsewhere'),
      undefined,
    );

    // caIssuers: the root in DER (RFC 5280 §4.2.2.1), the very certificate the ceremony used.
    const issuer = await curl([`${statusUrl}/root/${fingerprint}.crt`]);
    assert.equal(issuer.status, 200);
    assert.equal(issuer.contentType, 'application/pkix-cert');
    assert.deepEqual(issuer.body, new X509Certificate(readFileSync(rootCrt)).raw);
    // CRL DP: the root's CRL, signed by the root.
    const crl = await curl([`${statusUrl}/root/${fingerprint}.crl`]);
    assert.equal(crl.status, 200);
    writeFileSync(f('root-served.crl'), crl.body);
    await openssl(['crl', '-inform', 'DER', '-in', f('root-served.crl'), '-CAfile', rootCrt, '-noout']);
    const unknown = await curl([`${statusUrl}/root/${'0'.repeat(64)}.crt`]);
    assert.equal(unknown.status, 404);

    // A leaf (the server's own HTTPS certificate) through the intermediate: strict, with both CRLs.
    const { certs } = await handshakeCertificates('127.0.0.1', server.apiPort);
    writeFileSync(f('leaf.pem'), certs[0]!);
    const intCrl = await curl([`${statusUrl}/crl`]);
    writeFileSync(
      f('crls.pem'),
      `${await openssl(['crl', '-inform', 'DER', '-outform', 'PEM'], intCrl.body)}\n${await openssl(['crl', '-inform', 'DER', '-outform', 'PEM'], crl.body)}`,
    );
    const v = await opensslResult([
      'verify',
      '-x509_strict',
      '-crl_check_all',
      '-CRLfile',
      f('crls.pem'),
      '-CAfile',
      rootCrt,
      '-untrusted',
      f('int.crt'),
      f('leaf.pem'),
    ]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    assert.match(v.stdout, /: OK$/m);

    // The OCSP URL the intermediate names answers for it, through the responder the root delegated.
    const ocspUrl = /OCSP - URI:(\S+)/.exec(
      extension(await x509TextOfFile(f('int.crt')), 'Authority Information Access') ?? '',
    )![1]!;
    const answer = await ocsp([
      '-issuer',
      rootCrt,
      '-cert',
      f('int.crt'),
      '-url',
      ocspUrl,
      '-CAfile',
      rootCrt,
      '-no_nonce',
    ]);
    assert.ok(answer.verified, answer.output);
    assert.equal(answer.single(f('int.crt'))?.status, 'good', answer.output);
  });

  it('serve warns when the intermediate names another status URL than its own', async () => {
    await server!.stop();
    server = await startServer({ data, env: dataEnv });
    assert.notEqual(server.statusUrl, statusUrl);
    const warning = server.logs().find((l) => l.event === 'intermediate_urls_elsewhere');
    assert.equal(warning?.level, 'warn', server.stderr());
    assert.deepEqual(warning.urls, [
      `${statusUrl}/ocsp`,
      `${statusUrl}/root/${fingerprint}.crt`,
      `${statusUrl}/root/${fingerprint}.crl`,
    ]);
  });
});
