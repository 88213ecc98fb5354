// The production-style ceremony: the root on its own ("offline") folder, the intermediate key
// born sealed in the server's database, and the invariant that the server never holds a root key.
import assert from 'node:assert/strict';
import { createPrivateKey, randomBytes, randomUUID, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { shortleaf, shortleafOk, tempDir } from './helpers/cli.js';
import { databasePath, tableCounts, withStore } from './helpers/data.js';
import { assertProblem, curl } from './helpers/http.js';
import {
  certDer,
  extension,
  extensionHeading,
  handshakeCertificates,
  openssl,
  opensslResult,
  publicKeyOfCert,
  x509TextOfFile,
} from './helpers/openssl.js';
import { serveExpectingFailure, startServer, type RunningServer } from './helpers/server.js';
import { sealSecret, SqliteStore } from './helpers/workspace.js';

const mode = (path: string) => statSync(path).mode & 0o777;
const csrDer = (file: string) =>
  new Uint8Array(Buffer.from(readFileSync(file, 'utf8').replace(/-----[^-]+-----|\s/g, ''), 'base64'));
const lifetimeMs = (pemFile: string) => {
  const x = new X509Certificate(readFileSync(pemFile));
  return Date.parse(x.validTo) - Date.parse(x.validFrom);
};

describe('production-style ceremony', () => {
  const dir = tempDir();
  const f = (name: string) => dir.file(name);
  const rootDir = f('root');
  const otherRootDir = f('other-root');
  const data = f('data');
  const rootCrt = join(rootDir, 'root.crt');
  const rootKey = join(rootDir, 'root.key');
  const ROOT_PW = `root-${randomBytes(12).toString('hex')}`;
  const PW = `data-${randomBytes(12).toString('hex')}`;
  const rootEnv = { SHORTLEAF_ROOT_PASSWORD: ROOT_PW };
  const dataEnv = { SHORTLEAF_PASSWORD: PW };
  let server: RunningServer | undefined;
  const srv = () => {
    assert.ok(server, 'the server did not start');
    return server;
  };

  after(async () => {
    try {
      await server?.stop();
    } finally {
      dir.remove();
    }
  });

  it('root init writes an encrypted P-384 key (0600) and a self-signed CA certificate', async () => {
    await shortleafOk(['root', 'init', '--out', rootDir], { env: rootEnv });
    assert.equal(mode(rootKey), 0o600);
    assert.ok(readFileSync(rootKey, 'utf8').startsWith(`-----BEGIN ENCRYPTED ${'PRIVATE'} KEY-----\n`));
    assert.equal(
      existsSync(join(rootDir, 'password')),
      false,
      'the passphrase from the environment is not written down',
    );
    await openssl(['pkey', '-in', rootKey, '-passin', `pass:${ROOT_PW}`, '-noout']);
    const wrong = await opensslResult(['pkey', '-in', rootKey, '-passin', 'pass:not-the-passphrase', '-noout']);
    assert.notEqual(wrong.code, 0, 'the key does not open without its passphrase');
    const t = await x509TextOfFile(rootCrt);
    assert.match(t, /ASN1 OID: secp384r1/);
    assert.equal(/Issuer: (.*)/.exec(t)?.[1], /Subject: (.*)/.exec(t)?.[1], 'self-issued');
    assert.equal(extensionHeading(t, 'X509v3 Basic Constraints'), 'X509v3 Basic Constraints: critical');
    assert.match(extension(t, 'X509v3 Basic Constraints') ?? '', /^CA:TRUE/);
    assert.match(extension(t, 'X509v3 Key Usage') ?? '', /Certificate Sign, CRL Sign/);
    assert.match(await openssl(['verify', '-CAfile', rootCrt, rootCrt]), /: OK$/m, 'self-signed');
  });

  it('root init refuses to overwrite an existing root', async () => {
    const key = readFileSync(rootKey);
    const r = await shortleaf(['root', 'init', '--out', rootDir], { env: rootEnv });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /already exists/);
    assert.deepEqual(readFileSync(rootKey), key);
  });

  it('intermediate csr seals a new key in the database and writes only its CSR', async () => {
    await shortleafOk(['intermediate', 'csr', '--data', data, '--out', f('int.csr')], { env: dataEnv });
    const v = await opensslResult(['req', '-in', f('int.csr'), '-verify', '-noout']);
    assert.equal(v.code, 0, v.stderr);
    assert.match(v.stdout + v.stderr, /verif(y|ication) OK/i);
    assert.equal(existsSync(join(data, 'password')), false, 'production writes no passphrase file');
    assert.equal(existsSync(join(data, 'offline-root')), false);
    await withStore(data, async (store) => {
      const issuer = await store.getIssuerByName('primary');
      assert.ok(issuer, 'an issuer row named primary');
      assert.equal(issuer.certDer, null);
      assert.equal(await store.getActiveIssuer(), null);
    });
  });

  it('sign-intermediate makes a CA:TRUE pathlen:0 intermediate with name constraints, inside the root validity', async () => {
    await shortleafOk(
      [
        'root',
        'sign-intermediate',
        '--root',
        rootDir,
        '--csr',
        f('int.csr'),
        '--out',
        f('int.crt'),
        '--permit-dns',
        '.internal.example',
        '--permit-uri',
        'spiffe://example.org',
      ],
      { env: rootEnv },
    );
    const t = await x509TextOfFile(f('int.crt'));
    assert.equal(extensionHeading(t, 'X509v3 Basic Constraints'), 'X509v3 Basic Constraints: critical');
    assert.equal(extension(t, 'X509v3 Basic Constraints'), 'CA:TRUE, pathlen:0');
    assert.equal(extensionHeading(t, 'X509v3 Key Usage'), 'X509v3 Key Usage: critical');
    assert.equal(extension(t, 'X509v3 Key Usage'), 'Certificate Sign, CRL Sign');
    const nc = extension(t, 'X509v3 Name Constraints') ?? '';
    assert.match(nc, /Permitted:/);
    assert.match(nc, /^DNS:\.internal\.example$/m);
    assert.match(nc, /^URI:example\.org$/m);
    const root = new X509Certificate(readFileSync(rootCrt));
    const int = new X509Certificate(readFileSync(f('int.crt')));
    assert.ok(
      Date.parse(int.validTo) <= Date.parse(root.validTo),
      `intermediate notAfter ${int.validTo} ≤ root ${root.validTo}`,
    );
    assert.ok(int.checkIssued(root) && int.verify(root.publicKey));
    assert.match(await openssl(['verify', '-CAfile', rootCrt, f('int.crt')]), /: OK$/m);
    assert.equal(
      await openssl(['req', '-in', f('int.csr'), '-noout', '-pubkey']),
      await publicKeyOfCert(f('int.crt')),
      'certifies the sealed key',
    );
  });

  it('intermediate import refuses the root certificate itself (rootKeyRefused) and records nothing', async () => {
    const before = await tableCounts(data);
    const r = await shortleaf(['intermediate', 'import', '--data', data, '--cert', rootCrt, '--root', rootCrt]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /\[rootKeyRefused\]/);
    assert.deepEqual(await tableCounts(data), before);
    await withStore(data, async (store) => {
      assert.equal((await store.getIssuerByName('primary'))?.certDer, null, 'no certificate on the issuer');
      assert.equal(await store.getActiveIssuer(), null);
      assert.deepEqual(await store.listRoots(), []);
    });
  });

  it('intermediate import refuses a certificate for the root key under an intermediate name (rootKeyRefused)', async () => {
    // Made with openssl straight from the root key: not self-issued, but its key is the root's.
    writeFileSync(
      f('v3.cnf'),
      '[v3]\nbasicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n',
    );
    await openssl([
      'req',
      '-new',
      '-key',
      rootKey,
      '-passin',
      `pass:${ROOT_PW}`,
      '-subj',
      '/O=Shortleaf/CN=Shortleaf Intermediate CA',
      '-out',
      f('rootkey.csr'),
    ]);
    await openssl([
      'x509',
      '-req',
      '-in',
      f('rootkey.csr'),
      '-CA',
      rootCrt,
      '-CAkey',
      rootKey,
      '-passin',
      `pass:${ROOT_PW}`,
      '-set_serial',
      '0x1234567890abcdef',
      '-days',
      '30',
      '-extfile',
      f('v3.cnf'),
      '-extensions',
      'v3',
      '-out',
      f('rootkey-int.crt'),
    ]);
    const before = await tableCounts(data);
    const r = await shortleaf([
      'intermediate',
      'import',
      '--data',
      data,
      '--cert',
      f('rootkey-int.crt'),
      '--root',
      rootCrt,
    ]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /\[rootKeyRefused\]/);
    assert.deepEqual(await tableCounts(data), before);
  });

  it('intermediate import refuses an intermediate signed by a different root (issuerMismatch)', async () => {
    await shortleafOk(['root', 'init', '--out', otherRootDir, '--cn', 'Some Other Root'], { env: rootEnv });
    await shortleafOk(
      ['root', 'sign-intermediate', '--root', otherRootDir, '--csr', f('int.csr'), '--out', f('int-other.crt')],
      { env: rootEnv },
    );
    const before = await tableCounts(data);
    for (const [cert, root] of [
      [f('int-other.crt'), rootCrt],
      [f('int.crt'), join(otherRootDir, 'root.crt')],
    ] as const) {
      const r = await shortleaf(['intermediate', 'import', '--data', data, '--cert', cert, '--root', root]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /\[issuerMismatch\]/);
      assert.match(r.stderr, /does not chain to the given root/);
    }
    assert.deepEqual(await tableCounts(data), before);
  });

  it('intermediate import accepts the intermediate the root signed, and activates it', async () => {
    const r = await shortleafOk(['intermediate', 'import', '--data', data, '--cert', f('int.crt'), '--root', rootCrt]);
    assert.match(r.stdout, /\(now active\)/);
    await withStore(data, async (store) => {
      const active = await store.getActiveIssuer();
      assert.equal(active?.name, 'primary');
      assert.deepEqual(Buffer.from(active?.certDer ?? []), certDer(readFileSync(f('int.crt'), 'utf8')));
      assert.deepEqual(
        (await store.listRoots()).map((d) => Buffer.from(d)),
        [certDer(readFileSync(rootCrt, 'utf8'))],
      );
    });
  });

  it('provisioner add writes its private key 0600 and stores only the public half', async () => {
    const r = await shortleafOk([
      'provisioner',
      'add',
      'svc',
      '--data',
      data,
      '--key-out',
      f('svc.jwk'),
      '--allow-dns',
      '*.internal.example',
      '--default-lifetime',
      '1h',
      '--max-lifetime',
      '2h',
    ]);
    assert.match(r.stdout, /provisioner svc added \(kid \S+\)/);
    assert.equal(mode(f('svc.jwk')), 0o600);
    const jwk = JSON.parse(readFileSync(f('svc.jwk'), 'utf8')) as Record<string, string>;
    assert.ok(jwk.d && jwk.kid, 'the key file holds the private JWK and its kid');
    await withStore(data, async (store) => {
      const p = await store.getProvisioner('svc');
      assert.ok(p?.publicJwk);
      assert.equal(
        (JSON.parse(p.publicJwk) as Record<string, unknown>).d,
        undefined,
        'no private part in the database',
      );
    });
  });

  it('serve unseals the intermediate with SHORTLEAF_PASSWORD and listens, with no development root around', async () => {
    // The intermediate may only certify names under .internal.example, so the server's own HTTPS
    // certificate must stay inside that too: it is given a permitted name, and clients below reach
    // it by its IP address (IP names are not constrained by a DNS/URI-only NameConstraints).
    writeFileSync(f('serve.json'), JSON.stringify({ dnsNames: ['ca.internal.example'] }));
    server = await startServer({ data, env: dataEnv, args: ['--config', f('serve.json')] });
    const events = srv()
      .logs()
      .map((l) => l.event);
    assert.ok(!events.includes('development_root_present'));
    assert.ok(!events.includes('first_run_init'));
    assert.ok(!srv().stderr().includes(PW), 'the passphrase is never logged');
    // Its own certificate obeys the intermediate's name constraints (openssl enforces them).
    const { certs } = await handshakeCertificates('127.0.0.1', srv().apiPort);
    writeFileSync(f('server-leaf.pem'), certs[0]!);
    assert.match(
      await openssl([
        'verify',
        '-purpose',
        'sslserver',
        '-CAfile',
        rootCrt,
        '-untrusted',
        f('int.crt'),
        f('server-leaf.pem'),
      ]),
      /: OK$/m,
    );
  });

  // https://127.0.0.1:PORT: the one address the server's certificate names under the constraints.
  const ca = () => srv().api;
  const token = async (subject: string, key = f('svc.jwk'), provisioner = 'svc') =>
    (await shortleafOk(['token', subject, '--provisioner', provisioner, '--key', key, '--ca', ca()])).stdout.trim();

  it('issues api.internal.example, which openssl verifies through the constrained intermediate', async () => {
    const t = await token('api.internal.example');
    await shortleafOk([
      'certificate',
      'api.internal.example',
      '--ca',
      ca(),
      '--root',
      rootCrt,
      '--token',
      t,
      '--cert',
      f('api.pem'),
      '--key',
      f('api.key'),
    ]);
    const out = await openssl([
      'verify',
      '-x509_strict',
      '-purpose',
      'sslserver',
      '-CAfile',
      rootCrt,
      '-untrusted',
      f('int.crt'),
      f('api.pem'),
    ]);
    assert.match(out, /: OK$/m);
    assert.equal(
      extension(await x509TextOfFile(f('api.pem')), 'X509v3 Subject Alternative Name'),
      'DNS:api.internal.example',
    );
    assert.ok(
      Math.abs(lifetimeMs(f('api.pem')) - (3_600_000 + 60_000)) <= 2_000,
      'the provisioner default of 1h (plus the 1 min backdate)',
    );
  });

  it('under the constraints the banner names a name the certificate carries, and a wrong --ca says which names it has', async () => {
    // Not https://localhost:…: the constrained intermediate keeps localhost out of the certificate.
    assert.equal(srv().publicUrl, `https://ca.internal.example:${srv().apiPort}`);
    const t = await token('wrong-host.internal.example');
    const r = await shortleaf([
      'certificate',
      'wrong-host.internal.example',
      '--ca',
      `https://localhost:${srv().apiPort}`,
      '--root',
      rootCrt,
      '--token',
      t,
      '--cert',
      f('wh.pem'),
      '--key',
      f('wh.key'),
    ]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      /the CA's HTTPS certificate does not name localhost; it names [^;]*: use one of those in --ca/,
    );
    assert.match(r.stderr, /it names [^;]*\bca\.internal\.example\b/);
    assert.ok(!existsSync(f('wh.pem')), 'nothing written');
  });

  it('refuses evil.example.com with 403 nameNotAllowed and records nothing', async () => {
    const t = await token('evil.example.com');
    const before = await tableCounts(data);
    const r = await shortleaf([
      'certificate',
      'evil.example.com',
      '--ca',
      ca(),
      '--root',
      rootCrt,
      '--token',
      t,
      '--cert',
      f('evil.pem'),
      '--key',
      f('evil.key'),
    ]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /urn:shortleaf:problem:nameNotAllowed, HTTP 403/);
    assert.ok(!existsSync(f('evil.pem')) && !existsSync(f('evil.key')), 'no files written for a refusal');
    // The same refusal seen with curl, as a problem document.
    await openssl([
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      f('evil2.key'),
      '-subj',
      '/CN=evil.example.com',
      '-addext',
      'subjectAltName=DNS:evil.example.com',
      '-out',
      f('evil.csr'),
    ]);
    writeFileSync(f('evil.json'), JSON.stringify({ csr: readFileSync(f('evil.csr'), 'utf8'), token: t }));
    const res = await curl([
      '--cacert',
      rootCrt,
      '-H',
      'content-type: application/json',
      '--data-binary',
      `@${f('evil.json')}`,
      `${ca()}/api/v1/sign`,
    ]);
    const p = assertProblem(res, 403, 'nameNotAllowed');
    assert.match(p.detail, /evil\.example\.com/);
    assert.deepEqual(await tableCounts(data), before);
  });

  it('refuses a lifetime above the provisioner maximum with 400 lifetimeTooLong', async () => {
    const t = await token('long.internal.example');
    const r = await shortleaf([
      'certificate',
      'long.internal.example',
      '--ca',
      ca(),
      '--root',
      rootCrt,
      '--token',
      t,
      '--cert',
      f('long.pem'),
      '--key',
      f('long.key'),
      '--not-after',
      '3h',
    ]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /urn:shortleaf:problem:lifetimeTooLong, HTTP 400/);
    assert.match(r.stderr, /maximum of 2h/);
  });

  it('provisioner add with only --max-lifetime 2h works, and its leaves live at most 2h', async () => {
    const r = await shortleaf([
      'provisioner',
      'add',
      'ops',
      '--data',
      data,
      '--key-out',
      f('ops.jwk'),
      '--allow-dns',
      '*.internal.example',
      '--max-lifetime',
      '2h',
    ]);
    assert.equal(r.code, 0, `the README's command must succeed; stderr: ${r.stderr}`);
    assert.equal(mode(f('ops.jwk')), 0o600);
    const t = await token('ops.internal.example', f('ops.jwk'), 'ops');
    await shortleafOk([
      'certificate',
      'ops.internal.example',
      '--ca',
      ca(),
      '--root',
      rootCrt,
      '--token',
      t,
      '--cert',
      f('ops.pem'),
      '--key',
      f('ops.key'),
    ]);
    assert.ok(lifetimeMs(f('ops.pem')) <= 2 * 3_600_000 + 60_000, 'no longer than the maximum');
  });

  it('serve with a wrong SHORTLEAF_PASSWORD exits non-zero, says it cannot unseal, and never listens', async () => {
    // One server per data directory: stop the running one, or the lock would answer first.
    await server?.stop();
    server = undefined;
    const r = await serveExpectingFailure({ data, env: { SHORTLEAF_PASSWORD: 'not-the-passphrase' } });
    assert.equal(r.listened, false, `it must not listen:\n${r.stderr}`);
    assert.equal(r.timedOut, false, `it must exit on its own:\n${r.stderr}`);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /cannot unseal: wrong passphrase/);
    assert.ok(!r.stderr.includes('not-the-passphrase'), 'the passphrase is not echoed');
  });

  describe('a tampered database: the root key sealed as if it were the intermediate', () => {
    const tampered = f('data-tampered');

    /** Seals the root's own private key into a new issuer row with `certPem` and makes it active. */
    async function sealRootKeyAsIssuer(name: string, certPem: string): Promise<void> {
      const key = createPrivateKey({ key: readFileSync(rootKey, 'utf8'), format: 'pem', passphrase: ROOT_PW });
      const pkcs8 = new Uint8Array(key.export({ format: 'der', type: 'pkcs8' }));
      const store = await SqliteStore.open(databasePath(tampered));
      try {
        const id = randomUUID();
        // The CSR column only matters to `intermediate import`; the root key's own CSR fits.
        await store.createIssuer({
          id,
          name,
          sealedKey: await sealSecret(pkcs8, PW, `issuer:${id}`),
          keyAlgorithm: 'EC-P384',
          csrDer: csrDer(f('rootkey.csr')),
          createdAt: new Date(),
        });
        await store.setIssuerCertificate(id, certDer(certPem));
        await store.activateIssuer(id, new Date());
      } finally {
        await store.close();
      }
    }

    before(async () => {
      await shortleafOk(['intermediate', 'csr', '--data', tampered, '--out', f('t.csr')], { env: dataEnv });
      await shortleafOk(['root', 'sign-intermediate', '--root', rootDir, '--csr', f('t.csr'), '--out', f('t.crt')], {
        env: rootEnv,
      });
      await shortleafOk(['intermediate', 'import', '--data', tampered, '--cert', f('t.crt'), '--root', rootCrt]);
    });

    it('control: before tampering, this data folder serves', async () => {
      const s = await startServer({ data: tampered, env: dataEnv });
      try {
        const health = await curl(['--cacert', rootCrt, `${s.api}/health`]);
        assert.equal(health.status, 200);
      } finally {
        assert.deepEqual(await s.stop(), { code: 0, signal: null });
      }
    });

    for (const [name, cert] of [
      ['the root certificate itself', () => readFileSync(rootCrt, 'utf8')],
      ['a certificate for the root key under an intermediate name', () => readFileSync(f('rootkey-int.crt'), 'utf8')],
    ] as const) {
      it(`with ${name}: serve exits non-zero with rootKeyRefused and never listens`, async () => {
        await sealRootKeyAsIssuer(`tampered-${randomBytes(3).toString('hex')}`, cert());
        const r = await serveExpectingFailure({ data: tampered, env: dataEnv });
        assert.equal(r.listened, false, `it must not listen:\n${r.stderr}`);
        assert.equal(r.timedOut, false, r.stderr);
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, /rootKeyRefused/);
        assert.ok(!r.stdout.includes('Shortleaf is serving'));
      });
    }
  });
});
