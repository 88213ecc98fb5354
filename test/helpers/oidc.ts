import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, type JWK, type JWTPayload } from 'jose';
import Provider from 'oidc-provider';
import puppeteer, { type Browser } from 'puppeteer-core';

/** A person the test identity provider knows, with the claims it puts into their ID token. */
export interface IdpUser {
  /** What they type into the provider's login form; also their `sub`. */
  login: string;
  claims: Record<string, string | boolean>;
}

/** A signing key as the test holds it: the private JWK (with `kid` and `alg`) and its key object. */
export interface SigningKey {
  jwk: JWK & { kid: string };
  key: KeyObject;
}

export interface TestIdp {
  /** The provider's issuer, http://127.0.0.1:PORT (loopback: the CA and the CLI allow http only there). */
  issuer: string;
  clientId: string;
  /** The key the provider signs ID tokens with, published at its jwks_uri. */
  signingKey: SigningKey;
  /**
   * An ID token as this provider would mint it for `user` (RS256, its key, its issuer, the
   * client as audience, an hour long), with `override` merged over those claims: for the
   * refusals a real login cannot produce on demand (another audience, an expired token).
   */
  mint(user: IdpUser, override?: JWTPayload, key?: SigningKey): Promise<string>;
  stop(): Promise<void>;
}

/** A fresh RSA signing key with a `kid`, as a provider's key set holds it. */
export async function rsaSigningKey(kid: string): Promise<SigningKey> {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { jwk: { ...(await exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' }, key: privateKey };
}

/**
 * panva's oidc-provider (a certified OpenID Provider) on a loopback port, with one public native
 * client (no secret, PKCE required, any loopback port for `http://127.0.0.1/callback`: RFC 8252
 * §7.3), optionally confidential ones, the given users, and its development login and consent pages. Claims the scopes grant
 * go into the ID token itself, as Google, Okta and Entra ID do, since that is what the CA reads.
 */
export async function startIdp(opts: {
  clientId: string;
  users: readonly IdpUser[];
  /** Confidential native clients besides: they authenticate at the token endpoint with client_secret_basic. */
  confidential?: ReadonlyArray<{ clientId: string; secret: string }>;
}): Promise<TestIdp> {
  const server: Server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const signingKey = await rsaSigningKey('idp-key-1');
  const users = new Map(opts.users.map((u) => [u.login, u]));
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: opts.clientId,
        application_type: 'native',
        token_endpoint_auth_method: 'none',
        redirect_uris: ['http://127.0.0.1/callback'],
        grant_types: ['authorization_code'],
        response_types: ['code'],
      },
      ...(opts.confidential ?? []).map((c) => ({
        client_id: c.clientId,
        client_secret: c.secret,
        application_type: 'native',
        token_endpoint_auth_method: 'client_secret_basic',
        redirect_uris: ['http://127.0.0.1/callback'],
        grant_types: ['authorization_code'],
        response_types: ['code'],
      })),
    ],
    // Only the listed users exist: any other login at the form fails the sign-in.
    findAccount: async (_ctx, id) => {
      const user = users.get(id);
      return user === undefined ? undefined : { accountId: id, claims: async () => ({ sub: id, ...user.claims }) };
    },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username'],
    },
    conformIdTokenClaims: false,
    jwks: { keys: [signingKey.jwk as unknown as Record<string, unknown>] },
    cookies: { keys: ['shortleaf-test-cookie-key-0123456789'] },
    features: { devInteractions: { enabled: true } },
  });
  server.on('request', provider.callback());
  return {
    issuer,
    clientId: opts.clientId,
    signingKey,
    async mint(user, override = {}, key = signingKey) {
      const now = Math.floor(Date.now() / 1000);
      const payload: JWTPayload = {
        iss: issuer,
        aud: opts.clientId,
        sub: user.login,
        iat: now,
        exp: now + 3600,
        ...user.claims,
        ...override,
      };
      return new SignJWT(payload).setProtectedHeader({ alg: 'RS256', kid: key.jwk.kid, typ: 'JWT' }).sign(key.key);
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * Debian's chromium, headless; no sandbox because tests run as root. It reaches this machine
 * only: every host name resolves to nothing (the tests use 127.0.0.1 literals), so neither a page's
 * external resource (the provider's pages @import a web font) nor the browser's own background
 * services send a packet elsewhere.
 */
export function launchChromium(): Promise<Browser> {
  return puppeteer.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-dev-shm-usage',
      '--disable-gpu',
      '--no-first-run',
      '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-domain-reliability',
      '--disable-sync',
      '--no-pings',
    ],
    timeout: 60_000,
  });
}

/**
 * Opens `url` (an authorization URL printed by `shortleaf login`) in a new tab and completes the
 * provider's pages as a person would: types the login and password into its sign-in form, then
 * presses Continue on its consent page (or, given 'cancel', presses Cancel on the first page),
 * until the provider redirects to the loopback callback.
 * Returns the text the callback page shows. Every step waits at most `timeoutMs`.
 */
export async function signInWithBrowser(
  browser: Browser,
  url: string,
  user: { login: string; password: string } | 'cancel',
  timeoutMs = 30_000,
): Promise<{ callbackUrl: string; text: string; steps: string[] }> {
  const page = await browser.newPage();
  page.setDefaultTimeout(timeoutMs);
  page.setDefaultNavigationTimeout(timeoutMs);
  const steps: string[] = [];
  // Only loopback requests leave the page; anything else (a web font) is refused before it is sent.
  await page.setRequestInterception(true);
  page.on('request', (request) => {
    if (new URL(request.url()).hostname === '127.0.0.1') void request.continue();
    else void request.abort('blockedbyclient');
  });
  try {
    await page.goto(url, { waitUntil: 'load' });
    // Login, then consent: a provider asks at most these two before redirecting.
    for (let i = 0; i < 4 && new URL(page.url()).pathname.startsWith('/interaction/'); i++) {
      if (user === 'cancel') {
        steps.push('cancel');
        await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click('a[href$="/abort"]')]);
        continue;
      }
      const form = (await page.$('input[name="login"]')) === null ? 'consent' : 'login';
      steps.push(form);
      if (form === 'login') {
        await page.type('input[name="login"]', user.login);
        await page.type('input[name="password"]', user.password);
      }
      await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click('button[type="submit"]')]);
    }
    // A string, evaluated in the page: the tests compile without the DOM's types.
    const text = String(await page.evaluate('document.body.innerText'));
    return { callbackUrl: page.url(), text, steps };
  } finally {
    await page.close().catch(() => undefined);
  }
}
