// The engineer's single sign-on with real parts: panva's oidc-provider on a loopback port with
// one user, Debian's chromium completing its login and consent pages while `shortleaf login` and
// `shortleaf certificate --provisioner` wait on their loopback redirect (RFC 8252, PKCE S256), and
// a real `shortleaf serve` whose oidc provisioner discovers the provider's keys. The certificate
// must carry exactly the names the template makes from the user's claims (OpenSSL reads them),
// and ID tokens for another audience, expired, signed by a key the provider does not publish,
// unsigned or MACed (HS256) are each refused by POST /api/v1/sign with their own problem type.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import type { Browser } from 'puppeteer-core';
import { CaProblemError, createClient, problemType } from '@shortleaf/client';
import { createCsr, csrToPem, generateKeyPair } from '@shortleaf/pki';
import { shortleaf, shortleafArgs, shortleafOk, tempDir, track } from './helpers/cli.js';
import { startDevCa, type DevCa } from './helpers/dev-ca.js';
import { x509TextOfFile } from './helpers/openssl.js';
import { recordSecret } from './helpers/secret-log.js';
import {
  launchChromium,
  rsaSigningKey,
  signInWithBrowser,
  startIdp,
  type IdpUser,
  type TestIdp,
} from './helpers/oidc.js';

const CLIENT_ID = 'shortleaf-cli';
/** A provider that insists on a client secret for desktop apps: `--client-secret-file`. */
const CONFIDENTIAL = { clientId: 'shortleaf-confidential', secret: 'confidential-client-secret-0123456789' };
const ALICE: IdpUser = {
  login: 'alice',
  claims: { email: 'alice@example.com', email_verified: true, preferred_username: 'alice', name: 'Alice Example' },
};
const TEMPLATE = {
  dnsNames: ['{preferred_username}.eng.example'],
  uris: ['spiffe://example.org/engineer/{preferred_username}'],
};
/** The longest a sign-in may take end to end: chromium start-up and two pages on a busy 2-core machine. */
const SIGN_IN_MS = 90_000;

const dir = tempDir();
let idp: TestIdp | undefined;
let ca: DevCa;
let browser: Browser | undefined;

before(async () => {
  idp = await startIdp({ clientId: CLIENT_ID, users: [ALICE], confidential: [CONFIDENTIAL] });
  writeFileSync(dir.file('client-secret'), `${CONFIDENTIAL.secret}\n`, { mode: 0o600 });
  recordSecret(CONFIDENTIAL.secret); // the run's secret scan checks no log shows it
  const issuer = idp.issuer;
  writeFileSync(dir.file('config.json'), JSON.stringify({ templates: { engineers: TEMPLATE } }));
  ca = await startDevCa(dir.path, {
    beforeServe: async (data) => {
      await shortleafOk([
        'provisioner',
        'add',
        'engineers',
        '--type',
        'oidc',
        '--data',
        data,
        '--issuer',
        issuer,
        '--audience',
        CLIENT_ID,
        '--allow-dns',
        '*.eng.example',
        '--allow-uri',
        'spiffe://example.org/engineer/*',
      ]);
      // The same provider, another client: its tokens' audience picks this provisioner.
      await shortleafOk([
        'provisioner',
        'add',
        'contractors',
        '--type',
        'oidc',
        '--data',
        data,
        '--issuer',
        issuer,
        '--audience',
        CONFIDENTIAL.clientId,
        '--allow-dns',
        '*.eng.example',
      ]);
    },
    serve: { args: ['--config', dir.file('config.json')] },
  });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await ca?.server.stop();
  await idp?.stop();
  dir.remove();
});

/** Resolves with the first match of `pattern` in what `child` prints on stderr, or rejects after `ms`. */
function awaitStderr(child: ChildProcess, pattern: RegExp, ms: number): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => {
      child.stderr!.off('data', onData);
      reject(new Error(`no ${pattern} on stderr within ${ms} ms; it printed: ${text}`));
    }, ms);
    const onData = (d: Buffer) => {
      text += d.toString();
      const m = pattern.exec(text);
      if (m === null) return;
      clearTimeout(timer);
      child.stderr!.off('data', onData);
      resolve(m);
    };
    child.stderr!.on('data', onData);
  });
}

/** Collects a child's output and resolves with it at exit; kills it and rejects after `ms`. */
function exited(child: ChildProcess, ms: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`did not exit within ${ms} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, ms);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * Starts a CLI verb that signs in, waits for the authorization URL it prints, lets chromium sign
 * ALICE in there, and returns how the command ended and what the browser's last page said.
 */
async function withSignIn(args: string[], as: 'alice' | 'cancel' = 'alice') {
  const child = track(process.execPath, shortleafArgs(args), {});
  child.stdin!.end();
  const done = exited(child, SIGN_IN_MS);
  const [, url] = await awaitStderr(child, /^\s+(http:\/\/127\.0\.0\.1:\d+\/auth\?\S+)$/m, SIGN_IN_MS);
  const authorization = new URL(url!);
  // Another page on this machine forging the redirect (RFC 6749 §10.12) is answered 400 and does
  // not end the wait: only the redirect carrying this sign-in's state does.
  const forged = await fetch(`${authorization.searchParams.get('redirect_uri')}?code=forged&state=guessed`, {
    signal: AbortSignal.timeout(10_000),
  });
  assert.equal(forged.status, 400);
  assert.match(await forged.text(), /not started by this shortleaf login/);
  const page = await signInWithBrowser(
    browser!,
    url!,
    as === 'cancel' ? 'cancel' : { login: ALICE.login, password: 'correct horse' },
  );
  return { authorization, page, result: await done };
}

describe('shortleaf login and certificate --provisioner through a real browser', () => {
  it('login: PKCE S256, state, nonce and a 127.0.0.1 redirect; prints who signed in and the claims', async () => {
    const { authorization, page, result } = await withSignIn([
      'login',
      '--provisioner',
      'engineers',
      '--ca',
      ca.server.publicUrl,
      '--root',
      ca.roots,
    ]);
    const q = authorization.searchParams;
    assert.equal(authorization.origin, idp!.issuer);
    assert.equal(q.get('client_id'), CLIENT_ID);
    assert.equal(q.get('response_type'), 'code');
    assert.equal(q.get('code_challenge_method'), 'S256');
    assert.match(q.get('code_challenge') ?? '', /^[A-Za-z0-9_-]{43}$/);
    assert.match(q.get('state') ?? '', /^[A-Za-z0-9_-]{43}$/);
    assert.match(q.get('nonce') ?? '', /^[A-Za-z0-9_-]{43}$/);
    assert.deepEqual(q.get('scope')?.split(' '), ['openid', 'email', 'profile']);
    assert.match(q.get('redirect_uri') ?? '', /^http:\/\/127\.0\.0\.1:\d+\/callback$/);
    assert.deepEqual(page.steps, ['login', 'consent']);
    assert.match(page.callbackUrl, /^http:\/\/127\.0\.0\.1:\d+\/callback\?/);
    assert.match(page.text, /Signed in/);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^signed in as alice@example\.com \(issuer http:\/\/127\.0\.0\.1:\d+\)$/m);
    assert.match(result.stdout, /^ {2}\{preferred_username\}: alice$/m);
    assert.match(result.stdout, /^ {2}\{email\}: alice@example\.com$/m);
    // The ID token is kept in memory only: it is printed nowhere.
    assert.doesNotMatch(result.stdout + result.stderr, /eyJ[A-Za-z0-9_-]+\.eyJ/);
  });

  it('certificate --provisioner signs in and gets a certificate named by the template from the claims', async () => {
    const cert = dir.file('alice.pem');
    const key = dir.file('alice.key');
    const { page, result } = await withSignIn([
      'certificate',
      'alice',
      '--provisioner',
      'engineers',
      '--ca',
      ca.server.publicUrl,
      '--root',
      ca.roots,
      '--cert',
      cert,
      '--key',
      key,
    ]);
    assert.match(page.text, /Signed in/);
    assert.equal(result.code, 0, result.stderr);
    const text = await x509TextOfFile(cert);
    const san = /X509v3 Subject Alternative Name:.*\n\s+(.*)/.exec(text)?.[1];
    assert.deepEqual(san?.split(', ').sort(), ['DNS:alice.eng.example', 'URI:spiffe://example.org/engineer/alice']);
    assert.match(readFileSync(key, 'utf8'), /BEGIN PRIVATE KEY/);
  });

  it('login --client-secret-file: a confidential client authenticates at the token endpoint, PKCE still on', async () => {
    const args = ['login', '--provisioner', 'contractors', '--ca', ca.server.publicUrl, '--root', ca.roots];
    const { authorization, result } = await withSignIn([...args, '--client-secret-file', dir.file('client-secret')]);
    assert.equal(authorization.searchParams.get('client_id'), CONFIDENTIAL.clientId);
    assert.equal(authorization.searchParams.get('code_challenge_method'), 'S256');
    assert.equal(authorization.searchParams.get('client_secret'), null);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^signed in as alice@example\.com /m);
    // Without its secret the provider will not redeem the code: the sign-in fails, saying why.
    const without = await withSignIn(args);
    assert.equal(without.result.code, 1, without.result.stderr);
    assert.match(without.result.stderr, /token endpoint refused: HTTP 401 invalid_client/);
  });

  it('login reports a sign-in the engineer cancelled at the provider (access_denied) and exits 1', async () => {
    const { page, result } = await withSignIn(
      ['login', '--provisioner', 'engineers', '--ca', ca.server.publicUrl, '--root', ca.roots],
      'cancel',
    );
    assert.deepEqual(page.steps, ['cancel']);
    assert.match(page.text, /Sign-in failed: access_denied/);
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, /shortleaf login: the identity provider refused the sign-in: access_denied/);
  });

  it('login gives up when no sign-in comes back in time, and says so', async () => {
    const r = await shortleaf([
      'login',
      '--provisioner',
      'engineers',
      '--ca',
      ca.server.publicUrl,
      '--root',
      ca.roots,
      '--login-timeout',
      '2s',
    ]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /shortleaf login: no sign-in came back from the identity provider within 2 s/);
  });

  it("certificate --token with an ID token a job already holds (a CI system's): names from the template", async () => {
    const cert = dir.file('ci.pem');
    await shortleafOk([
      'certificate',
      'build-runner',
      '--token',
      await idp!.mint({ login: 'ci', claims: { preferred_username: 'ci-runner' } }),
      '--ca',
      ca.server.publicUrl,
      '--root',
      ca.roots,
      '--cert',
      cert,
      '--key',
      dir.file('ci.key'),
    ]);
    const san = /X509v3 Subject Alternative Name:.*\n\s+(.*)/.exec(await x509TextOfFile(cert))?.[1];
    assert.deepEqual(san?.split(', ').sort(), [
      'DNS:ci-runner.eng.example',
      'URI:spiffe://example.org/engineer/ci-runner',
    ]);
  });

  it('login refuses a jwk provisioner, naming what it takes instead', async () => {
    const r = await shortleaf(['login', '--provisioner', 'admin', '--ca', ca.server.publicUrl, '--root', ca.roots]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /provisioner admin is a jwk provisioner; signing in needs an oidc one/);
  });
});

describe('POST /api/v1/sign refuses ID tokens that must not issue, each with its own problem type', () => {
  const csr = () => csrToPem(createCsr(generateKeyPair('EC-P256').privateKey, { commonName: 'alice' }, []));
  const sign = (token: string) =>
    createClient({ caUrl: ca.server.publicUrl, rootPem: readFileSync(ca.roots, 'utf8') }).sign({ csr: csr(), token });
  const refused = async (token: string, code: string, detail: RegExp) => {
    await assert.rejects(sign(token), (err: unknown) => {
      assert.ok(err instanceof CaProblemError, String(err));
      assert.equal(err.type, problemType(code), err.message);
      assert.equal(err.status, 401, err.message);
      assert.match(err.detail, detail);
      return true;
    });
  };
  const now = () => Math.floor(Date.now() / 1000);
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const certCount = async () =>
    (await shortleafOk(['certs', 'list', '--data', ca.data])).stdout.split('\n').filter((l) => l.trim() !== '').length;
  let countBefore = 0;

  it('a token the provider signed for this client issues (the control)', async () => {
    const issued = await sign(await idp!.mint(ALICE));
    assert.match(issued.certificate, /BEGIN CERTIFICATE/);
    countBefore = await certCount();
  });

  it('another audience: tokenAudience', async () => {
    await refused(await idp!.mint(ALICE, { aud: 'another-client' }), 'tokenAudience', /aud|audience/i);
  });

  it('expired: tokenExpired', async () => {
    await refused(await idp!.mint(ALICE, { iat: now() - 1800, exp: now() - 600 }), 'tokenExpired', /expired/i);
  });

  it('signed by a key the provider does not publish: tokenUnknownKey', async () => {
    const stranger = await rsaSigningKey('not-published');
    await refused(await idp!.mint(ALICE, {}, stranger), 'tokenUnknownKey', /not-published/);
  });

  it('alg none: tokenUnsigned', async () => {
    const claims = { iss: idp!.issuer, aud: CLIENT_ID, sub: 'alice', iat: now(), exp: now() + 600, ...ALICE.claims };
    await refused(`${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`, 'tokenUnsigned', /none/);
  });

  it('HS256 keyed with the public key: tokenSymmetric', async () => {
    const publicPart = JSON.stringify({ kty: 'RSA', n: idp!.signingKey.jwk.n, e: idp!.signingKey.jwk.e });
    const token = await new SignJWT({ aud: CLIENT_ID, sub: 'alice', ...ALICE.claims })
      .setProtectedHeader({ alg: 'HS256', kid: idp!.signingKey.jwk.kid })
      .setIssuer(idp!.issuer)
      .setIssuedAt()
      .setExpirationTime('10m')
      .sign(new TextEncoder().encode(publicPart));
    await refused(token, 'tokenSymmetric', /HS256/);
  });

  it('issued nothing for any of them', async () => {
    assert.equal(await certCount(), countBefore);
  });
});
