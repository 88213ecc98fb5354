// The README's five-minute walkthrough, driven as a user would: the shortleaf CLI, curl and
// openssl against a real server on free ports. OpenSSL, not our own parser, judges what we sign.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { shortleafOk, tempDir, type RunResult } from './helpers/cli.js';
import { assertProblem, curl } from './helpers/http.js';
import {
  certDer,
  extension,
  extensionHeading,
  handshakeCertificates,
  openssl,
  opensslResult,
  publicKeyOfCert,
  publicKeyOfKey,
  splitCertificates,
  x509Text,
  x509TextOfFile,
} from './helpers/openssl.js';
import { startServer, type RunningServer } from './helpers/server.js';

const HOUR = 3_600_000;
const mode = (path: string) => statSync(path).mode & 0o777;

describe('the five-minute walkthrough', () => {
  const dir = tempDir();
  const data = dir.file('data');
  const f = (name: string) => dir.file(name);
  const rootCrt = join(data, 'offline-root', 'root.crt');
  const adminKey = join(data, 'provisioners', 'admin.jwk');
  let init: RunResult;
  let server: RunningServer | undefined;
  const srv = () => {
    assert.ok(server, 'the server did not start');
    return server;
  };

  /** `shortleaf token` then `shortleaf certificate`, returning the time window of the request. */
  async function issue(
    subject: string,
    sans: string[],
    cert: string,
    key: string,
    extra: string[] = [],
  ): Promise<{ t0: number; t1: number; token: string }> {
    const tok = await shortleafOk([
      'token',
      subject,
      '--provisioner',
      'admin',
      '--key',
      adminKey,
      '--ca',
      srv().publicUrl,
      ...sans.flatMap((s) => ['--san', s]),
    ]);
    const token = tok.stdout.trim();
    const t0 = Date.now();
    await shortleafOk([
      'certificate',
      subject,
      '--ca',
      srv().publicUrl,
      '--root',
      f('roots.pem'),
      '--token',
      token,
      '--cert',
      cert,
      '--key',
      key,
      ...extra,
    ]);
    return { t0, t1: Date.now(), token };
  }

  async function assertVerifies(cert: string): Promise<void> {
    const out = await openssl(['verify', '-CAfile', f('roots.pem'), '-untrusted', f('intermediates.pem'), cert]);
    assert.equal(out.trim(), `${cert}: OK`);
  }

  before(async () => {
    init = await shortleafOk(['init', '--data', data]);
    server = await startServer({ data });
  });

  after(async () => {
    try {
      if (server) {
        const { code, signal } = await server.stop();
        assert.equal(code, 0, `serve should exit 0 on SIGTERM (got ${code ?? signal})\n${server.stderr()}`);
        assert.ok(
          server.logs().some((l) => l.event === 'stopped'),
          'serve logs "stopped" after a clean shutdown',
        );
      }
    } finally {
      dir.remove();
    }
  });

  it('init writes a root, its encrypted key and an admin provisioner key, secrets 0600', () => {
    assert.match(init.stdout, /root certificate \(trust this\):\s+\S*offline-root\/root\.crt/);
    assert.equal(mode(adminKey), 0o600);
    assert.equal(mode(join(data, 'offline-root', 'root.key')), 0o600);
    assert.ok(
      readFileSync(join(data, 'offline-root', 'root.key'), 'utf8').startsWith(
        `-----BEGIN ENCRYPTED ${'PRIVATE'} KEY-----`,
      ),
    );
    assert.equal(mode(join(data, 'shortleaf.db')), 0o600);
  });

  it('serves /roots.pem over HTTPS, equal to the offline root certificate', async () => {
    const res = await curl(['--cacert', rootCrt, `${srv().publicUrl}/roots.pem`]);
    assert.equal(res.status, 200);
    assert.match(res.contentType, /^application\/x-pem-file/);
    const certs = splitCertificates(res.text);
    assert.equal(certs.length, 1, 'one root');
    assert.deepEqual(certDer(certs[0]!), certDer(readFileSync(rootCrt, 'utf8')));
    writeFileSync(f('roots.pem'), res.text);
    const ints = await curl(['--cacert', f('roots.pem'), `${srv().publicUrl}/intermediates.pem`]);
    assert.equal(ints.status, 200);
    assert.equal(splitCertificates(ints.text).length, 1, 'one intermediate');
    writeFileSync(f('intermediates.pem'), ints.text);
  });

  it('its HTTPS certificate chains to roots.pem alone (the handshake sends the intermediate) and names localhost and 127.0.0.1', async () => {
    for (const base of [srv().publicUrl, srv().api]) {
      const res = await curl(['--cacert', f('roots.pem'), `${base}/health`]);
      assert.equal(res.status, 200, base);
      assert.equal(res.json().status, 'ok');
    }
    const { certs } = await handshakeCertificates('127.0.0.1', srv().apiPort);
    assert.equal(certs.length, 2, 'leaf and intermediate, never the root');
    assert.deepEqual(certDer(certs[1]!), certDer(readFileSync(f('intermediates.pem'), 'utf8')));
    const text = await x509Text(certs[0]!);
    const san = extension(text, 'X509v3 Subject Alternative Name') ?? '';
    assert.match(san, /\bDNS:localhost\b/);
    assert.match(san, /\bIP Address:127\.0\.0\.1\b/);
    writeFileSync(f('server-leaf.pem'), certs[0]!);
    writeFileSync(f('server-chain.pem'), certs[1]!);
    const verified = await openssl([
      'verify',
      '-purpose',
      'sslserver',
      '-CAfile',
      f('roots.pem'),
      '-untrusted',
      f('server-chain.pem'),
      f('server-leaf.pem'),
    ]);
    assert.match(verified, /: OK$/m);
    const s = await opensslResult(
      [
        's_client',
        '-connect',
        `127.0.0.1:${srv().apiPort}`,
        '-servername',
        'localhost',
        '-CAfile',
        f('roots.pem'),
        '-verify_return_error',
        '-verify_hostname',
        'localhost',
      ],
      '',
    );
    assert.equal(s.code, 0, s.stderr);
    assert.match(s.stdout, /Verify return code: 0 \(ok\)/);
  });

  let leafText = '';
  let window = { t0: 0, t1: 0 };

  it('token and certificate issue a leaf that openssl verifies, with its key written 0600', async () => {
    window = await issue('svc1.internal', ['10.1.2.3'], f('c.pem'), f('k.pem'));
    await assertVerifies(f('c.pem'));
    for (const purpose of ['sslserver', 'sslclient']) {
      const out = await openssl([
        'verify',
        '-x509_strict',
        '-purpose',
        purpose,
        '-CAfile',
        f('roots.pem'),
        '-untrusted',
        f('intermediates.pem'),
        f('c.pem'),
      ]);
      assert.match(out, /: OK$/m, purpose);
    }
    const written = splitCertificates(readFileSync(f('c.pem'), 'utf8'));
    assert.equal(written.length, 2, 'cert file holds the leaf then its intermediate');
    assert.deepEqual(certDer(written[1]!), certDer(readFileSync(f('intermediates.pem'), 'utf8')));
    assert.equal(mode(f('k.pem')), 0o600);
    assert.equal(
      await publicKeyOfKey(f('k.pem')),
      await publicKeyOfCert(f('c.pem')),
      'the key file holds the certified key',
    );
    leafText = await x509TextOfFile(f('c.pem'));
  });

  it('the leaf carries every extension of the profile, pointing at the status listener', async () => {
    const t = leafText;
    const { statusUrl } = srv();
    assert.equal(extensionHeading(t, 'X509v3 Basic Constraints'), 'X509v3 Basic Constraints: critical');
    assert.equal(extension(t, 'X509v3 Basic Constraints'), 'CA:FALSE');
    assert.equal(extensionHeading(t, 'X509v3 Key Usage'), 'X509v3 Key Usage: critical');
    assert.equal(extension(t, 'X509v3 Key Usage'), 'Digital Signature');
    assert.equal(
      extension(t, 'X509v3 Extended Key Usage'),
      'TLS Web Server Authentication, TLS Web Client Authentication',
    );
    const ski = extension(t, 'X509v3 Subject Key Identifier');
    assert.match(ski ?? '', /^([0-9A-F]{2}:){19}[0-9A-F]{2}$/);
    const intText = await x509TextOfFile(f('intermediates.pem'));
    assert.equal(
      extension(t, 'X509v3 Authority Key Identifier')?.replace(/^keyid:/, ''),
      extension(intText, 'X509v3 Subject Key Identifier'),
      'AKI is the intermediate SKI',
    );
    assert.equal(extension(t, 'X509v3 Subject Alternative Name'), 'DNS:svc1.internal, IP Address:10.1.2.3');
    const aia = extension(t, 'Authority Information Access') ?? '';
    assert.ok(aia.includes(`OCSP - URI:${statusUrl}/ocsp`), aia);
    // Each intermediate's own paths (`init` names the first one primary), so a leaf keeps leading to its issuer after a rotation.
    assert.ok(aia.includes(`CA Issuers - URI:${statusUrl}/intermediate/primary.crt`), aia);
    assert.match(
      extension(t, 'X509v3 CRL Distribution Points') ?? '',
      new RegExp(`URI:${statusUrl.replace(/[.]/g, '\\.')}/crl/primary$`),
    );
    assert.match(statusUrl, /^http:\/\/127\.0\.0\.1:\d+$/, 'the status listener is plain HTTP');
    assert.match(t, /Subject: CN ?= ?svc1\.internal/);
  });

  it('the leaf lives 24 h, its notBefore backdated one minute', () => {
    const x = new X509Certificate(readFileSync(f('c.pem')));
    const notBefore = Date.parse(x.validFrom);
    const notAfter = Date.parse(x.validTo);
    const secs = (ms: number) => Math.floor(ms / 1000) * 1000;
    assert.ok(
      notBefore >= secs(window.t0) - 60_000 - 1_000 && notBefore <= window.t1 - 59_000,
      `notBefore ${x.validFrom} is about a minute before issuance`,
    );
    assert.ok(
      notAfter >= secs(window.t0) + 24 * HOUR - 1_000 && notAfter <= window.t1 + 24 * HOUR,
      `notAfter ${x.validTo} is 24 h after issuance`,
    );
  });

  it('the CA Issuers URL serves the intermediate as DER', async () => {
    const url = /CA Issuers - URI:(\S+)/.exec(leafText)?.[1];
    assert.ok(url);
    const res = await curl([url]);
    assert.equal(res.status, 200);
    assert.equal(res.contentType, 'application/pkix-cert');
    const subject = await openssl(['x509', '-inform', 'DER', '-noout', '-subject'], res.body);
    assert.match(subject, /CN ?= ?Shortleaf Intermediate CA/);
    assert.deepEqual(res.body, certDer(readFileSync(f('intermediates.pem'), 'utf8')));
  });

  it('renews over mutual TLS with curl: 201, a new serial, the same names and key', async () => {
    const before = new X509Certificate(readFileSync(f('c.pem')));
    const res = await curl([
      '--cacert',
      f('roots.pem'),
      '--cert',
      f('c.pem'),
      '--key',
      f('k.pem'),
      '-X',
      'POST',
      `${srv().publicUrl}/api/v1/renew`,
    ]);
    assert.equal(res.status, 201, res.text);
    assert.match(res.contentType, /^application\/json/);
    const body = res.json<{
      serial: string;
      certificate: string;
      chain: string;
      notBefore: string;
      notAfter: string;
    }>();
    assert.match(body.serial, /^[1-9a-f][0-9a-f]{0,31}$/);
    assert.notEqual(body.serial, before.serialNumber.toLowerCase());
    const renewed = new X509Certificate(body.certificate);
    assert.equal(renewed.serialNumber.toLowerCase().replace(/^0+/, ''), body.serial.replace(/^0+/, ''));
    assert.equal(renewed.subjectAltName, before.subjectAltName);
    assert.equal(
      renewed.publicKey.export({ format: 'pem', type: 'spki' }),
      before.publicKey.export({ format: 'pem', type: 'spki' }),
    );
    assert.deepEqual(certDer(body.chain), certDer(readFileSync(f('intermediates.pem'), 'utf8')));
    writeFileSync(f('renewed.pem'), body.certificate);
    await assertVerifies(f('renewed.pem'));
    assert.equal(
      extension(await x509TextOfFile(f('renewed.pem')), 'X509v3 Subject Alternative Name'),
      'DNS:svc1.internal, IP Address:10.1.2.3',
    );
  });

  it('renew without a client certificate is 401 clientCertificateRequired', async () => {
    const res = await curl(['--cacert', f('roots.pem'), '-X', 'POST', `${srv().publicUrl}/api/v1/renew`]);
    assertProblem(res, 401, 'clientCertificateRequired');
  });

  it('shortleaf renew --rekey writes a new key (0600) and a certificate for it that verifies', async () => {
    copyFileSync(f('c.pem'), f('rk-c.pem'));
    copyFileSync(f('k.pem'), f('rk-k.pem'));
    const oldKey = readFileSync(f('rk-k.pem'), 'utf8');
    const oldSerial = new X509Certificate(readFileSync(f('rk-c.pem'))).serialNumber;
    const r = await shortleafOk([
      'renew',
      '--ca',
      srv().publicUrl,
      '--root',
      f('roots.pem'),
      '--cert',
      f('rk-c.pem'),
      '--key',
      f('rk-k.pem'),
      '--rekey',
    ]);
    assert.match(r.stdout, /renewed: certificate [0-9a-f]+ valid until/);
    assert.notEqual(readFileSync(f('rk-k.pem'), 'utf8'), oldKey, 'a new key was written');
    assert.equal(mode(f('rk-k.pem')), 0o600);
    assert.notEqual(new X509Certificate(readFileSync(f('rk-c.pem'))).serialNumber, oldSerial);
    assert.equal(
      await publicKeyOfKey(f('rk-k.pem')),
      await publicKeyOfCert(f('rk-c.pem')),
      'the new certificate is for the new key',
    );
    await assertVerifies(f('rk-c.pem'));
    assert.equal(
      extension(await x509TextOfFile(f('rk-c.pem')), 'X509v3 Subject Alternative Name'),
      'DNS:svc1.internal, IP Address:10.1.2.3',
    );
  });

  it('--kty RSA issues an RSA leaf that verifies, with Key Encipherment too', async () => {
    await issue('rsa.internal', [], f('rsa.pem'), f('rsa-key.pem'), ['--kty', 'RSA']);
    await assertVerifies(f('rsa.pem'));
    const t = await x509TextOfFile(f('rsa.pem'));
    assert.match(t, /Public Key Algorithm: rsaEncryption/);
    assert.match(t, /Public-Key: \((2048|3072|4096) bit\)/);
    assert.equal(extension(t, 'X509v3 Key Usage'), 'Digital Signature, Key Encipherment');
    assert.equal(extension(t, 'X509v3 Subject Alternative Name'), 'DNS:rsa.internal');
    assert.equal(mode(f('rsa-key.pem')), 0o600);
    assert.equal(await publicKeyOfKey(f('rsa-key.pem')), await publicKeyOfCert(f('rsa.pem')));
  });

  it('--kty OKP issues an Ed25519 leaf that verifies', async () => {
    await issue('ed.internal', [], f('ed.pem'), f('ed-key.pem'), ['--kty', 'OKP']);
    await assertVerifies(f('ed.pem'));
    const t = await x509TextOfFile(f('ed.pem'));
    assert.match(t, /Public Key Algorithm: ED25519/);
    assert.equal(extension(t, 'X509v3 Key Usage'), 'Digital Signature');
    assert.equal(extension(t, 'X509v3 Subject Alternative Name'), 'DNS:ed.internal');
    assert.equal(await publicKeyOfKey(f('ed-key.pem')), await publicKeyOfCert(f('ed.pem')));
  });

  it('the server is still healthy and logged no internal error', () => {
    assert.equal(srv().exited(), false);
    assert.deepEqual(
      srv()
        .logs()
        .filter((l) => l.level === 'error'),
      [],
    );
  });
});
