import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { ProvisionerRow } from '../ports.js';
import { T0, rejectsWith } from '../test-fixtures.js';
import { BUILT_IN_PROVISIONERS, createTokenAuthorizer } from './index.js';
import { createJwksCache } from './jwks.js';
import { oidcConfigOf, oidcProvisioner } from './oidc.js';
import { idpKey, mintIdpToken, startIdpServer, type IdpKey } from './test-idp.js';

const row = (name: string, options: Record<string, unknown>): ProvisionerRow => ({
  name,
  type: 'oidc',
  publicJwk: null,
  policy: '{}',
  options: JSON.stringify(options),
  createdAt: T0,
});

describe('the OIDC provisioner verifies ID tokens of a provider it discovers', () => {
  let idp: Awaited<ReturnType<typeof startIdpServer>>;
  let key: IdpKey;
  const rows = new Map<string, ProvisionerRow>();
  const nowS = Math.floor(T0.getTime() / 1000);
  const tokens = createTokenAuthorizer({
    registry: BUILT_IN_PROVISIONERS,
    getProvisioner: async (name) => rows.get(name) ?? null,
    listProvisioners: async () => [...rows.values()],
    now: () => T0,
    maxNames: 100,
  });
  const idToken = (claims: Record<string, unknown> = {}, k: IdpKey = key) =>
    mintIdpToken(k, {
      iss: idp.url,
      aud: 'shortleaf-cli',
      sub: '248289761001',
      email: 'alice@example.org',
      email_verified: true,
      preferred_username: 'alice',
      nonce: 'n-0S6_WzA2Mj',
      iat: nowS - 10,
      exp: nowS + 3600,
      ...claims,
    });

  before(async () => {
    idp = await startIdpServer();
    key = idpKey('ES256');
    idp.keys = [key];
    // Two client ids at one provider: the token's audience picks the provisioner.
    rows.set('engineers', row('engineers', { issuer: idp.url, audience: 'shortleaf-cli' }));
    rows.set('ci', row('ci', { issuer: idp.url, audience: 'https://ci.example.org', maxTokenAge: '10m' }));
  });
  after(() => idp.close());

  it("grants the token's string claims, discovering the keys through the provider's configuration", async () => {
    const grant = await tokens.authorizeSign(await idToken(), []);
    assert.equal(grant.row.name, 'engineers');
    assert.equal(grant.subject, null);
    assert.deepEqual(grant.names, []);
    assert.deepEqual(grant.claims, { sub: '248289761001', email: 'alice@example.org', preferred_username: 'alice' });
    assert.equal(idp.requests.get('/.well-known/openid-configuration'), 1);
    assert.equal(idp.requests.get('/jwks'), 1);
    const ci = await tokens.authorizeSign(await idToken({ aud: 'https://ci.example.org', repository: 'org/app' }), []);
    assert.equal(ci.row.name, 'ci');
    assert.equal(ci.claims.repository, 'org/app');
  });

  it('leaves out an email the provider has not verified', async () => {
    const grant = await tokens.authorizeSign(await idToken({ email_verified: false }), []);
    assert.equal(grant.claims.email, undefined);
  });

  it('refuses a token for another client, or authorized for another party', async () => {
    await rejectsWith(tokens.authorizeSign(await idToken({ aud: 'another-client' }), []), 'tokenAudience', 'audience');
    await rejectsWith(
      tokens.authorizeSign(await idToken({ aud: ['shortleaf-cli', 'other'], azp: 'other' }), []),
      'tokenAudience',
      'azp',
    );
  });

  it("refuses a token older than the provisioner's maximum age, and one not yet valid", async () => {
    await rejectsWith(
      tokens.authorizeSign(await idToken({ aud: 'https://ci.example.org', iat: nowS - 1200 }), []),
      'tokenTooOld',
      'at most 10m',
    );
    await rejectsWith(tokens.authorizeSign(await idToken({ nbf: nowS + 600 }), []), 'tokenExpired', 'not valid yet');
  });

  it('refuses a token without a kid that none of the published keys verifies', async () => {
    await rejectsWith(
      tokens.authorizeSign(
        await mintIdpToken(
          idpKey('ES256'),
          { iss: idp.url, aud: 'shortleaf-cli', sub: 'x', iat: nowS, exp: nowS + 60 },
          { kid: null },
        ),
        [],
      ),
      'tokenSignature',
      'signature',
    );
  });

  it('keeps what shortleaf login needs: the client id and scopes, openid always among them', () => {
    const config = oidcConfigOf({
      publicJwk: null,
      options: JSON.stringify({ issuer: idp.url, audience: 'cli', scopes: ['email'] }),
    });
    assert.equal(config.clientId, 'cli');
    assert.deepEqual(config.scopes, ['openid', 'email']);
    assert.deepEqual(oidcConfigOf(rows.get('engineers')!).scopes, ['openid', 'email', 'profile']);
    assert.throws(
      () => oidcProvisioner.parse({ publicJwk: null, options: { issuer: 'http://idp.example.org', audience: 'a' } }),
      (err) => (err as { code?: string }).code === 'badProvisionerOptions' && /https/.test((err as Error).message),
    );
  });
});

describe('fetching keys is bounded', () => {
  let server: ReturnType<typeof createServer>;
  let url = '';
  before(async () => {
    server = createServer((req, res) => {
      if (req.url === '/huge') return res.end(JSON.stringify({ keys: [{ kty: 'oct', k: 'x'.repeat(300_000) }] }));
      if (req.url === '/.well-known/openid-configuration')
        return res.end(JSON.stringify({ issuer: 'https://someone-else.example', jwks_uri: `${url}/huge` }));
      // /slow never answers.
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  const header = { alg: 'ES256', kid: 'k' };
  it('refuses a key set larger than the cap, one that does not answer in time, and a discovery document for another issuer', async () => {
    const cache = createJwksCache({ now: () => T0, timeoutMs: 300, maxBytes: 64 * 1024 });
    await rejectsWith(
      cache.keysFor('a', { kind: 'url', url: `${url}/huge` }, header),
      'keysUnavailable',
      'larger than',
    );
    await rejectsWith(
      cache.keysFor('b', { kind: 'url', url: `${url}/slow` }, header),
      'keysUnavailable',
      'cannot be fetched',
    );
    await rejectsWith(cache.keysFor('c', { kind: 'discovery', issuer: url }, header), 'keysUnavailable', 'is not');
  });
});
