// oidcLogin against a provider the test controls on a loopback port, for what a well-behaved
// provider never does: an ID token with another nonce, for another audience or MACed with HS256,
// a discovery document for another issuer or without S256. The test plays the browser: it
// follows the printed URL's redirect_uri with the code and state. The happy path with a real
// provider and a real browser is test/oidc-login.test.ts.
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { SignJWT, exportJWK, type JWTPayload } from 'jose';
import { oidcLogin } from './login.js';

const CLIENT_ID = 'cli';
const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });

interface Behaviour {
  discovery?: (doc: Record<string, unknown>) => Record<string, unknown>;
  /** What the token endpoint signs, given the nonce the authorization request carried. */
  idToken?: (claims: JWTPayload) => Promise<string>;
}

describe('oidcLogin refuses what a provider should never send', () => {
  let server: Server;
  let issuer = '';
  let behaviour: Behaviour = {};
  let authorization: URL | undefined;
  let tokenRequest: URLSearchParams | undefined;
  let tokenHeaders: Record<string, string | string[] | undefined> = {};

  before(async () => {
    server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', issuer);
      const json = (body: unknown, status = 200) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (url.pathname === '/.well-known/openid-configuration') {
        const doc = {
          issuer,
          authorization_endpoint: `${issuer}/auth`,
          token_endpoint: `${issuer}/token`,
          jwks_uri: `${issuer}/jwks`,
          code_challenge_methods_supported: ['S256'],
        };
        return json(behaviour.discovery?.(doc) ?? doc);
      }
      if (url.pathname === '/jwks')
        return void exportJWK(publicKey).then((jwk) => json({ keys: [{ ...jwk, kid: 'k1', alg: 'ES256' }] }));
      if (url.pathname === '/token' && req.method === 'POST') {
        let body = '';
        req.on('data', (d: Buffer) => (body += d.toString()));
        req.on('end', () => {
          tokenRequest = new URLSearchParams(body);
          tokenHeaders = req.headers;
          const claims = { iss: issuer, aud: CLIENT_ID, sub: 'alice', nonce: authorization?.searchParams.get('nonce') };
          void (behaviour.idToken ?? sign)(claims).then((idToken) => json({ id_token: idToken, token_type: 'Bearer' }));
        });
        return;
      }
      json({ error: 'not_found' }, 404);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  const sign = (claims: JWTPayload) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(privateKey);

  /** Runs a login whose "browser" follows the redirect with a code and the request's state. */
  async function login(b: Behaviour, o: { clientSecret?: string } = {}) {
    behaviour = b;
    authorization = undefined;
    return oidcLogin({
      issuer,
      clientId: CLIENT_ID,
      scopes: ['openid'],
      ...o,
      open: false,
      timeoutMs: 10_000,
      tell(text) {
        authorization = new URL(/(http:\S+)/.exec(text)![1]!);
        const back = new URL(authorization.searchParams.get('redirect_uri')!);
        back.searchParams.set('code', 'the-code');
        back.searchParams.set('state', authorization.searchParams.get('state')!);
        void fetch(back).then((r) => r.text());
      },
    });
  }

  it('a well-formed sign-in: the verifier matches the S256 challenge, the public client sends no secret', async () => {
    const { idToken, claims } = await login({});
    assert.equal(claims.sub, 'alice');
    assert.match(idToken, /^eyJ/);
    const challenge = createHash('sha256').update(tokenRequest!.get('code_verifier')!).digest('base64url');
    assert.equal(authorization!.searchParams.get('code_challenge'), challenge);
    assert.equal(tokenRequest!.get('code'), 'the-code');
    assert.equal(tokenRequest!.get('client_id'), CLIENT_ID);
    assert.equal(tokenRequest!.get('redirect_uri'), authorization!.searchParams.get('redirect_uri'));
    assert.equal(tokenHeaders.authorization, undefined);
  });

  it('a confidential client sends its secret as client_secret_basic, never in the URL', async () => {
    await login({}, { clientSecret: 's3cr:t' });
    assert.equal(tokenHeaders.authorization, `Basic ${Buffer.from('cli:s3cr%3At').toString('base64')}`);
    assert.equal(tokenRequest!.get('client_secret'), null);
    assert.ok(!authorization!.href.includes('s3cr'));
  });

  it('an ID token minted for another sign-in (its nonce differs)', async () => {
    await assert.rejects(login({ idToken: (c) => sign({ ...c, nonce: 'replayed' }) }), /nonce differs/);
  });

  it('an ID token for another audience', async () => {
    await assert.rejects(login({ idToken: (c) => sign({ ...c, aud: 'other' }) }), /does not verify.*"aud"/);
  });

  it('an ID token MACed with HS256', async () => {
    const hs = (c: JWTPayload) =>
      new SignJWT(c)
        .setProtectedHeader({ alg: 'HS256' })
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(new TextEncoder().encode('a shared secret of thirty-two bytes!'));
    await assert.rejects(login({ idToken: hs }), /does not verify \(ERR_JOSE_ALG_NOT_ALLOWED/);
  });

  it('several audiences without us as the authorized party (azp)', async () => {
    await assert.rejects(
      login({ idToken: (c) => sign({ ...c, aud: [CLIENT_ID, 'other'], azp: 'other' }) }),
      /issued to another party/,
    );
  });

  it('a discovery document for another issuer, or without S256, before anything is asked of the user', async () => {
    await assert.rejects(
      login({ discovery: (d) => ({ ...d, issuer: 'https://elsewhere.example' }) }),
      /is not for issuer/,
    );
    await assert.rejects(
      login({ discovery: (d) => ({ ...d, code_challenge_methods_supported: ['plain'] }) }),
      /does not support PKCE with S256/,
    );
    await assert.rejects(
      login({ discovery: (d) => ({ ...d, token_endpoint: 'http://idp.example/token' }) }),
      /token_endpoint must be an https:\/\/ URL/,
    );
    assert.equal(authorization, undefined);
  });

  it('an issuer that is not https (http only to this machine)', async () => {
    await assert.rejects(
      oidcLogin({
        issuer: 'http://idp.example',
        clientId: CLIENT_ID,
        scopes: ['openid'],
        open: false,
        timeoutMs: 1000,
        tell: () => undefined,
      }),
      /issuer must be an https:\/\/ URL/,
    );
  });
});
