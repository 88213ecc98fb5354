// Third-party ACME clients against the ACME server, as users run them: certbot obtains, renews and
// revokes over http-01; lego over http-01, tls-alpn-01 and dns-01 (a real DNS server on loopback)
// and with External Account Binding. OpenSSL verifies what was issued and asks the OCSP responder
// about what was revoked. The server under test is chosen in one place, `startAcmeServer` below:
// Shortleaf, or Pebble with ACME_TEST_SERVER=pebble to re-check the harness itself.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  certbotObtain,
  certbotRenew,
  certbotRevoke,
  legoCommand,
  legoRenew,
  legoRevoke,
  legoRun,
  newAccountWithoutEab,
  startChallTestSrv,
  startPebble,
  writeDnsExecScript,
  type CertbotOptions,
  type ChallTestSrv,
  type LegoOptions,
  type ObtainedCertificate,
  type Pebble,
} from './helpers/acme-clients.js';
import { shortleafOk, tempDir } from './helpers/cli.js';
import { startDevCa } from './helpers/dev-ca.js';
import { request } from './helpers/http.js';
import { openssl, opensslResult, publicKeyOfCert, publicKeyOfKey } from './helpers/openssl.js';
import { ocsp } from './helpers/revocation.js';
import { freePort } from './helpers/server.js';

/** Where the server validates and resolves; it maps every name in `hosts` to 127.0.0.1. */
interface Validation {
  httpPort: number;
  tlsPort: number;
  dnsResolver: string;
  hosts: string[];
}

/** What the tests need from an ACME server, whichever it is. */
interface AcmeServerUnderTest {
  name: string;
  /** An ACME directory that needs no External Account Binding. */
  directory: string;
  /** An ACME directory that requires EAB, one key it accepts, and the root of what it issues. */
  eab: { directory: string; kid: string; hmac: string; root: string };
  /** The roots its HTTPS certificate chains to: what the clients trust. */
  httpsCa: string;
  /** The root its issued certificates chain to. */
  root: string;
  /** Whether a certificate it issued is revoked, and why (RFC 5280 reason name, as OpenSSL prints it). */
  revocationStatus(cert: ObtainedCertificate): Promise<{ status: string; reason: string | null }>;
  /** Errors it logged (a failing test's clue; none expected). */
  errors(): unknown[];
  stop(): Promise<void>;
}

/** `shortleaf init` + `serve --config` with the validation settings; EAB through a second ACME provisioner. */
async function startShortleaf(dir: string, v: Validation): Promise<AcmeServerUnderTest> {
  const config = join(dir, 'acme-config.json');
  const hosts = Object.fromEntries(v.hosts.map((h) => [h, '127.0.0.1']));
  let eab = { kid: '', hmac: '' };
  const ca = await startDevCa(dir, {
    beforeServe: async (data) => {
      writeFileSync(
        config,
        JSON.stringify({
          acme: { validation: { httpPort: v.httpPort, tlsPort: v.tlsPort, dnsResolver: v.dnsResolver, hosts } },
        }),
      );
      await shortleafOk(['provisioner', 'add', 'eab', '--type', 'acme', '--require-eab', '--data', data]);
      const out = (await shortleafOk(['acme', 'eab', 'add', '--provisioner', 'eab', '--data', data])).stdout;
      eab = { kid: /^kid: (\S+)$/m.exec(out)?.[1] ?? '', hmac: /^hmac: (\S+)$/m.exec(out)?.[1] ?? '' };
      assert.ok(eab.kid && eab.hmac, `acme eab add prints "kid:" and "hmac:" lines:\n${out}`);
    },
    serve: { args: ['--config', config] },
  });
  const { publicUrl, statusUrl } = ca.server;
  return {
    name: 'Shortleaf',
    directory: `${publicUrl}/acme/acme/directory`,
    eab: { directory: `${publicUrl}/acme/eab/directory`, ...eab, root: ca.roots },
    httpsCa: join(ca.data, 'offline-root', 'root.crt'),
    root: ca.roots,
    async revocationStatus(cert) {
      const url = (await openssl(['x509', '-in', cert.leaf, '-noout', '-ocsp_uri'])).trim();
      assert.equal(url, `${statusUrl}/ocsp`, 'the leaf names our OCSP responder');
      const r = await ocsp(['-issuer', cert.chain, '-cert', cert.leaf, '-url', url, '-CAfile', ca.roots]);
      assert.ok(r.verified, `the OCSP response must verify:\n${r.output}`);
      const single = r.single(cert.leaf);
      assert.ok(single, r.output);
      return { status: single.status, reason: single.reason };
    },
    errors: () => ca.server.logs().filter((l) => l.level === 'error'),
    stop: async () => void (await ca.server.stop()),
  };
}

const REASONS: Record<number, string> = {
  0: 'unspecified',
  1: 'keyCompromise',
  2: 'cACompromise',
  3: 'affiliationChanged',
  4: 'superseded',
  5: 'cessationOfOperation',
  6: 'certificateHold',
  8: 'removeFromCRL',
  9: 'privilegeWithdrawn',
  10: 'aACompromise',
};

/** Two Pebbles (EAB off and on, each its own root); revocation from Pebble's management API, as it has no OCSP responder. */
async function startPebbles(dir: string, v: Validation): Promise<AcmeServerUnderTest> {
  const opts = { dir, httpPort: v.httpPort, tlsPort: v.tlsPort, dnsServer: v.dnsResolver };
  const started: Pebble[] = [];
  try {
    const pebble = await startPebble(opts);
    started.push(pebble);
    const withEab = await startPebble({ ...opts, requireEab: true });
    started.push(withEab);
    return {
      name: 'Pebble',
      directory: pebble.directory,
      eab: { directory: withEab.directory, ...withEab.eab!, root: await withEab.root() },
      httpsCa: pebble.caBundle,
      root: await pebble.root(),
      async revocationStatus(cert) {
        const s = await pebble.certStatus(cert.serial);
        return {
          status: s.status === 'Revoked' ? 'revoked' : s.status === 'Valid' ? 'good' : s.status,
          reason: s.reason === null ? null : (REASONS[s.reason] ?? String(s.reason)),
        };
      },
      errors: () => [],
      stop: async () => void (await Promise.all(started.map((p) => p.stop()))),
    };
  } catch (err) {
    await Promise.all(started.map((p) => p.stop()));
    throw err;
  }
}

// The one place that chooses the server under test.
const PEBBLE = process.env.ACME_TEST_SERVER === 'pebble';
const startAcmeServer = PEBBLE ? startPebbles : startShortleaf;

const NAMES = {
  certbot: 'svc1.test',
  legoHttp: 'svc2.test',
  legoTls: 'svc3.test',
  legoDns: 'svc4.test',
  wrongDns: 'svc5.test',
  eab: 'svc6.test',
};
const EMAIL = 'acme-e2e@example.org';

describe(`real ACME clients against ${PEBBLE ? 'Pebble' : 'Shortleaf'}: certbot and lego obtain, renew and revoke`, () => {
  const dir = tempDir();
  const f = (name: string) => dir.file(name);
  let dns: ChallTestSrv | undefined;
  let server: AcmeServerUnderTest | undefined;
  let validation: Validation | undefined;
  const srv = () => {
    assert.ok(server, 'the ACME server did not start');
    return server;
  };
  const dnsSrv = () => {
    assert.ok(dns, 'pebble-challtestsrv did not start');
    return dns;
  };
  const ports = () => {
    assert.ok(validation, 'no validation ports');
    return validation;
  };

  before(async () => {
    dns = await startChallTestSrv();
    validation = {
      httpPort: await freePort(),
      tlsPort: await freePort(),
      dnsResolver: dns.dnsAddress,
      hosts: [NAMES.certbot, NAMES.legoHttp, NAMES.legoTls, NAMES.eab],
    };
    server = await startAcmeServer(f('server'), validation);
  });

  after(async () => {
    try {
      await server?.stop();
      await dns?.stop();
    } finally {
      dir.remove();
    }
  });

  /** Issued for exactly `name`, OpenSSL verifies leaf ← chain ← root, and the key is the leaf's. */
  const assertIssued = async (cert: ObtainedCertificate, name: string, root = srv().root) => {
    assert.deepEqual(cert.dnsNames, [name]);
    const v = await opensslResult(['verify', '-CAfile', root, '-untrusted', cert.chain, cert.leaf]);
    assert.match(v.stdout, /: OK$/m, `openssl verify:\n${v.stdout}\n${v.stderr}`);
    assert.equal(await publicKeyOfCert(cert.leaf), await publicKeyOfKey(cert.key), "the key is the certificate's");
  };

  const certbotOpts = (): CertbotOptions => ({
    directory: srv().directory,
    caBundle: srv().httpsCa,
    workDir: f('certbot'),
    domains: [NAMES.certbot],
    certName: 'svc1',
    httpPort: ports().httpPort,
  });
  const lego = (name: string, challenge: LegoOptions['challenge'], over: Partial<LegoOptions> = {}): LegoOptions => ({
    directory: srv().directory,
    caBundle: srv().httpsCa,
    workDir: f(`lego-${name}`),
    domains: [name],
    email: EMAIL,
    challenge,
    ...over,
  });

  let certbotFirst: ObtainedCertificate | undefined;
  let certbotRenewed: ObtainedCertificate | undefined;

  it('certbot certonly --standalone: http-01 on the configured port, a chain OpenSSL verifies to the root', async () => {
    certbotFirst = await certbotObtain(certbotOpts());
    await assertIssued(certbotFirst, NAMES.certbot);
    assert.equal((await srv().revocationStatus(certbotFirst)).status, 'good');
  });

  it('certbot renew --force-renewal: a new certificate and key for the same name', async () => {
    assert.ok(certbotFirst, 'certonly failed');
    certbotRenewed = await certbotRenew(certbotOpts());
    assert.notEqual(certbotRenewed.serial, certbotFirst.serial);
    assert.notEqual(
      await publicKeyOfKey(certbotRenewed.key),
      await publicKeyOfKey(certbotFirst.key),
      'certbot makes a new key',
    );
    await assertIssued(certbotRenewed, NAMES.certbot);
    assert.equal((await srv().revocationStatus(certbotRenewed)).status, 'good');
  });

  it('certbot revoke: the OCSP responder says revoked (cessationOfOperation); the earlier certificate stays good', async () => {
    assert.ok(certbotFirst && certbotRenewed, 'renew failed');
    await certbotRevoke(certbotOpts(), certbotRenewed.leaf, 'cessationofoperation');
    assert.deepEqual(await srv().revocationStatus(certbotRenewed), {
      status: 'revoked',
      reason: 'cessationOfOperation',
    });
    assert.equal((await srv().revocationStatus(certbotFirst)).status, 'good');
  });

  it('lego over http-01: run, renew (forced), revoke (superseded)', async () => {
    const o = lego(NAMES.legoHttp, { http: { port: ports().httpPort } });
    const first = await legoRun(o);
    await assertIssued(first, NAMES.legoHttp);
    const renewed = await legoRenew(o);
    assert.notEqual(renewed.serial, first.serial);
    await assertIssued(renewed, NAMES.legoHttp);
    assert.equal((await srv().revocationStatus(renewed)).status, 'good');
    await legoRevoke(o, 4);
    assert.deepEqual(await srv().revocationStatus(renewed), { status: 'revoked', reason: 'superseded' });
    assert.equal((await srv().revocationStatus(first)).status, 'good');
  });

  it('http-01 answered on another port than the configured one is refused', async () => {
    const r = await legoCommand(
      lego(NAMES.legoHttp, { http: { port: await freePort() } }, { workDir: f('lego-wrong-port') }),
      'run',
    );
    assert.notEqual(r.code, 0, `lego must fail:\n${r.stderr}`);
    assert.match(r.stderr, /urn:ietf:params:acme:error:connection/, r.stderr);
  });

  it('lego over tls-alpn-01', async () => {
    const cert = await legoRun(lego(NAMES.legoTls, { tls: { port: ports().tlsPort } }));
    await assertIssued(cert, NAMES.legoTls);
  });

  it('lego over dns-01: the TXT record is published on a real DNS server on loopback, then cleaned up', async () => {
    const script = writeDnsExecScript(f('dns-exec.sh'), dnsSrv().managementUrl);
    const cert = await legoRun(lego(NAMES.legoDns, { dns: { resolver: dnsSrv().dnsAddress, execPath: script.path } }));
    await assertIssued(cert, NAMES.legoDns);
    const fqdn = `_acme-challenge.${NAMES.legoDns}.`;
    const calls = script.calls();
    assert.deepEqual(
      calls.map((c) => [c.action, c.fqdn]),
      [
        ['present', fqdn],
        ['cleanup', fqdn],
      ],
    );
    assert.match(calls[0]!.value, /^[A-Za-z0-9_-]{43}$/, 'the value is a base64url SHA-256 digest (RFC 8555 §8.4)');
    assert.deepEqual(await dnsSrv().resolveTxt(fqdn), [], 'cleaned up');
  });

  it('dns-01 with the wrong TXT value is refused', async () => {
    const script = writeDnsExecScript(f('dns-exec-wrong.sh'), dnsSrv().managementUrl, { wrongValue: true });
    const r = await legoCommand(
      lego(NAMES.wrongDns, { dns: { resolver: dnsSrv().dnsAddress, execPath: script.path } }),
      'run',
    );
    assert.notEqual(r.code, 0, `lego must fail:\n${r.stderr}`);
    // RFC 8555 §8.4 names no type; Boulder and Pebble say unauthorized, Shortleaf incorrectResponse.
    assert.match(r.stderr, /urn:ietf:params:acme:error:(incorrectResponse|unauthorized)/, r.stderr);
    assert.deepEqual(
      script.calls().map((c) => c.action),
      ['present', 'cleanup'],
    );
  });

  it('External Account Binding: required by the directory and the server, wrong MACs refused, the right one registers', async () => {
    const { eab } = srv();
    const directory = (await request(eab.directory, { ca: readFileSync(srv().httpsCa, 'utf8') })).json<{
      meta?: { externalAccountRequired?: boolean };
    }>();
    assert.equal(directory.meta?.externalAccountRequired, true, 'the directory says so (RFC 8555 §7.1.1)');

    const bare = await newAccountWithoutEab(eab.directory, srv().httpsCa);
    assert.equal(bare.status >= 400 && bare.status < 500, true, `HTTP ${bare.status}: ${bare.text}`);
    assert.match(bare.contentType, /^application\/problem\+json/);
    assert.equal(bare.json<{ type: string }>().type, 'urn:ietf:params:acme:error:externalAccountRequired', bare.text);

    const o = (name: string, over: Partial<LegoOptions>) => ({
      ...lego(NAMES.eab, { http: { port: ports().httpPort } }, over),
      workDir: f(`lego-eab-${name}`),
      directory: eab.directory,
    });
    // lego reads the directory's meta and refuses before it sends anything.
    const without = await legoCommand(o('none', {}), 'run');
    assert.notEqual(without.code, 0);
    assert.match(without.stderr, /Server requires External Account Binding/, without.stderr);

    const wrong = await legoCommand(
      o('wrong', { eab: { kid: eab.kid, hmac: randomBytes(32).toString('base64url') } }),
      'run',
    );
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.stderr, /urn:ietf:params:acme:error:unauthorized/, wrong.stderr);
    const unknown = await legoCommand(o('unknown', { eab: { kid: 'no-such-kid', hmac: eab.hmac } }), 'run');
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /urn:ietf:params:acme:error:unauthorized/, unknown.stderr);

    const cert = await legoRun(o('ok', { eab: { kid: eab.kid, hmac: eab.hmac } }));
    await assertIssued(cert, NAMES.eab, eab.root);
  });

  it('the server logged no internal error', () => {
    assert.deepEqual(srv().errors(), []);
  });
});
