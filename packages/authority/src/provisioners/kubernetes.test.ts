import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import { nameToString } from '@shortleaf/pki';
import type { ProvisionerRow } from '../ports.js';
import { parseTemplate, renderTemplateUris } from '../template.js';
import { readTokenHeader } from '../token.js';
import { T0, rejectsWith, unsecuredToken } from '../test-fixtures.js';
import { BUILT_IN_PROVISIONERS, createTokenAuthorizer } from './index.js';
import { kubernetesProvisioner } from './kubernetes.js';
import { idpKey, kubeletClaims, mintIdpToken, startIdpServer, type IdpKey } from './test-idp.js';

const ISSUER = 'https://kubernetes.default.svc.cluster.local';
const AUDIENCE = 'shortleaf';

const row = (name: string, options: Record<string, unknown>): ProvisionerRow => ({
  name,
  type: 'kubernetes',
  publicJwk: null,
  policy: '{}',
  options: JSON.stringify(options),
  createdAt: T0,
});

/** A token issuer (the "cluster"), a CA clock the test moves, and the authority's token authorizer. */
async function setup() {
  const idp = await startIdpServer();
  const clock = { now: T0.getTime() };
  const rows = new Map<string, ProvisionerRow>();
  const tokens = createTokenAuthorizer({
    registry: BUILT_IN_PROVISIONERS,
    getProvisioner: async (name) => rows.get(name) ?? null,
    listProvisioners: async () => [...rows.values()],
    now: () => new Date(clock.now),
    maxNames: 100,
  });
  const nowS = () => Math.floor(clock.now / 1000);
  const token = (key: IdpKey, over: Record<string, unknown> = {}, header: { alg?: string; kid?: string | null } = {}) =>
    mintIdpToken(
      key,
      {
        ...kubeletClaims({
          issuer: ISSUER,
          audience: AUDIENCE,
          namespace: 'prod',
          serviceAccount: 'api',
          pod: 'api-7d4b9-xk2lp',
          iat: nowS(),
        }),
        ...over,
      },
      header,
    );
  return { idp, clock, rows, tokens, token, nowS };
}

describe('the Kubernetes provisioner verifies projected service-account tokens', () => {
  let s: Awaited<ReturnType<typeof setup>>;
  let k1: IdpKey;
  before(async () => {
    s = await setup();
    k1 = idpKey('RS256');
    s.idp.keys = [k1];
    // One provisioner keeps the cluster's keys as `kubectl get --raw /openid/v1/jwks` printed them.
    s.rows.set('cluster', row('cluster', { issuer: ISSUER, audience: AUDIENCE, jwks: { keys: [k1.publicJwk] } }));
  });
  after(() => s.idp.close());

  it('grants the claims a template turns into the SPIFFE ID and DNS name, and nothing itself', async () => {
    const grant = await s.tokens.authorizeSign(await s.token(k1), ['https://ca.test/api/v1/sign']);
    assert.equal(grant.row.name, 'cluster');
    assert.equal(grant.subject, null);
    assert.deepEqual(grant.names, []);
    assert.equal(grant.use, null);
    assert.deepEqual(grant.claims, { namespace: 'prod', serviceaccount: 'api', pod: 'api-7d4b9-xk2lp' });
    const template = parseTemplate(
      {
        uris: ['spiffe://example.org/ns/{namespace}/sa/{serviceaccount}'],
        dnsNames: ['{serviceaccount}.{namespace}.svc.cluster.local'],
      },
      'templates.cluster',
    );
    assert.deepEqual(renderTemplateUris(template, grant.claims).map(nameToString), [
      'uri:spiffe://example.org/ns/prod/sa/api',
      'dns:api.prod.svc.cluster.local',
    ]);
  });

  it('refuses a token minted for another audience', async () => {
    await rejectsWith(s.tokens.authorizeSign(await s.token(k1, { aud: ['vault'] }), []), 'tokenAudience', 'shortleaf');
  });

  it('refuses an expired token, and one too old whatever its exp says', async () => {
    const old = await s.token(k1, { iat: s.nowS() - 7200, nbf: s.nowS() - 7200, exp: s.nowS() - 120 });
    await rejectsWith(s.tokens.authorizeSign(old, []), 'tokenExpired', 'expired');
    const long = await s.token(k1, { iat: s.nowS() - 7200, nbf: s.nowS() - 7200, exp: s.nowS() + 3600 });
    await rejectsWith(s.tokens.authorizeSign(long, []), 'tokenTooOld', 'at most 1h');
  });

  it('refuses alg none, HS256, and an algorithm that does not fit the key its kid names', async () => {
    await rejectsWith(s.tokens.authorizeSign(unsecuredToken({ name: ISSUER } as never), []), 'tokenUnsigned', 'none');
    const hs = await new SignJWT(
      kubeletClaims({
        issuer: ISSUER,
        audience: AUDIENCE,
        namespace: 'prod',
        serviceAccount: 'api',
        pod: 'p',
        iat: s.nowS(),
      }),
    )
      .setProtectedHeader({ alg: 'HS256', kid: k1.kid })
      .sign(new TextEncoder().encode('a-shared-secret-of-32-bytes-long!'));
    await rejectsWith(s.tokens.authorizeSign(hs, []), 'tokenSymmetric', 'HS256');
    // Signed with an EC key, but naming the cluster's RSA key.
    const ec = idpKey('ES256');
    await rejectsWith(s.tokens.authorizeSign(await s.token(ec, {}, { kid: k1.kid }), []), 'tokenKeyMismatch', 'ES256');
    // Signed with another RSA key under the cluster key's kid.
    await rejectsWith(
      s.tokens.authorizeSign(await s.token(idpKey('RS256'), {}, { kid: k1.kid }), []),
      'tokenSignature',
      'signature',
    );
  });

  it('refuses a key the stored set lacks, and a token from another issuer', async () => {
    await rejectsWith(
      s.tokens.authorizeSign(await s.token(idpKey('RS256')), []),
      'tokenUnknownKey',
      'does not publish',
    );
    await rejectsWith(
      s.tokens.authorizeSign(await s.token(k1, { iss: 'https://other-cluster.example' }), []),
      'unknownProvisioner',
      'other-cluster',
    );
    // Handed to the provisioner directly (as a row found by name would be), the issuer still decides.
    const authorizer = kubernetesProvisioner.tokens!.create({ now: () => new Date(s.clock.now), maxNames: 100 });
    const other = await s.token(k1, { iss: 'https://other-cluster.example' });
    await rejectsWith(
      authorizer.authorizeSign(
        readTokenHeader(other, BUILT_IN_PROVISIONERS.tokenAlgorithms),
        s.rows.get('cluster')!,
        [],
      ),
      'tokenIssuer',
      'other-cluster',
    );
  });

  it('refuses a token whose sub and kubernetes.io claim disagree, and any revoke', async () => {
    await rejectsWith(
      s.tokens.authorizeSign(await s.token(k1, { sub: 'system:serviceaccount:prod:admin' }), []),
      'tokenMalformed',
      '"sub"',
    );
    await rejectsWith(s.tokens.authorizeRevoke(await s.token(k1), []), 'notAuthorized', 'cannot revoke');
  });
});

describe('the Kubernetes provisioner fetches the cluster keys from a URL', () => {
  let s: Awaited<ReturnType<typeof setup>>;
  before(async () => {
    s = await setup();
    s.rows.set('cluster', row('cluster', { issuer: ISSUER, audience: AUDIENCE, jwksUrl: `${s.idp.url}/jwks` }));
  });
  after(() => s.idp.close());

  it('picks up a key rotation without a restart, and fetches for unknown kids at most once a minute', async () => {
    const k1 = idpKey('RS256');
    const k2 = idpKey('ES256');
    s.idp.keys = [k1];
    await s.tokens.authorizeSign(await s.token(k1), []);
    await s.tokens.authorizeSign(await s.token(k1), []);
    assert.equal(s.idp.requests.get('/jwks'), 1, 'cached keys are used');

    // A stream of made-up kids within a minute of the last fetch costs the IdP nothing more.
    s.clock.now += 10_000;
    for (let i = 0; i < 5; i++)
      await rejectsWith(
        s.tokens.authorizeSign(await s.token(idpKey('RS256')), []),
        'tokenUnknownKey',
        'does not publish',
      );
    assert.equal(s.idp.requests.get('/jwks'), 1, 'no fetch within a minute of the last');

    // The cluster rotates; a minute after the last fetch, the new kid makes the CA fetch again.
    s.idp.keys = [k2, k1];
    s.clock.now += 60_000;
    const grant = await s.tokens.authorizeSign(await s.token(k2), []);
    assert.equal(grant.claims.serviceaccount, 'api');
    assert.equal(s.idp.requests.get('/jwks'), 2);

    // An unknown kid after the refetch window: fetched once more, still unknown.
    s.clock.now += 61_000;
    await rejectsWith(
      s.tokens.authorizeSign(await s.token(idpKey('RS256')), []),
      'tokenUnknownKey',
      'does not publish',
    );
    assert.equal(s.idp.requests.get('/jwks'), 3);
  });

  it('says the keys are unavailable when the URL does not serve a key set', async () => {
    s.rows.set('cluster', row('cluster', { issuer: ISSUER, audience: AUDIENCE, jwksUrl: `${s.idp.url}/missing` }));
    await rejectsWith(s.tokens.authorizeSign(await s.token(idpKey('RS256')), []), 'keysUnavailable', 'HTTP 404');
    // While it is down, the IdP is asked once a minute, not once a token.
    for (let i = 0; i < 3; i++)
      await rejectsWith(s.tokens.authorizeSign(await s.token(idpKey('RS256')), []), 'keysUnavailable', 'HTTP 404');
    assert.equal(s.idp.requests.get('/missing'), 1);
    s.clock.now += 60_000;
    await rejectsWith(s.tokens.authorizeSign(await s.token(idpKey('RS256')), []), 'keysUnavailable', 'HTTP 404');
    assert.equal(s.idp.requests.get('/missing'), 2);
  });
});

describe('a Kubernetes provisioner is refused at add for what it could not verify with', () => {
  const parse =
    (options: unknown, publicJwk: string | null = null) =>
    () =>
      kubernetesProvisioner.parse({ publicJwk, options });
  const code = (c: string, fragment: RegExp) => (err: unknown) =>
    (err as { code?: string }).code === c && fragment.test((err as Error).message);

  it('needs an issuer, an audience and keys, and refuses private keys and plain http to other hosts', () => {
    const jwks = { keys: [idpKey('RS256').publicJwk] };
    assert.equal(
      kubernetesProvisioner.parse({ publicJwk: null, options: { issuer: ISSUER, audience: 'a', jwks } }).maxTokenAgeMs,
      3_600_000,
    );
    assert.throws(parse({ audience: 'a', jwks }), code('badProvisionerOptions', /--issuer/));
    assert.throws(parse({ issuer: ISSUER, jwks }), code('badProvisionerOptions', /--audience/));
    assert.throws(parse({ issuer: ISSUER, audience: 'a' }), code('badProvisionerOptions', /--jwks-file/));
    assert.throws(
      parse({ issuer: ISSUER, audience: 'a', jwksUrl: 'http://kube.example/jwks' }),
      code('badProvisionerOptions', /https/),
    );
    const priv = idpKey('ES256').privateKey.export({ format: 'jwk' });
    assert.throws(
      parse({ issuer: ISSUER, audience: 'a', jwks: { keys: [priv] } }),
      code('badProvisionerOptions', /private/),
    );
    assert.throws(
      parse({ issuer: ISSUER, audience: 'a', jwks: { keys: [{ kty: 'oct', k: 'c2VjcmV0' }] } }),
      code('badProvisionerOptions', /no usable/),
    );
    assert.throws(
      parse({ issuer: ISSUER, audience: 'a', jwks, maxTokenAge: '2d' }),
      code('badProvisionerOptions', /at most 24h/),
    );
    assert.throws(parse({ issuer: ISSUER, audience: 'a', jwks, bogus: 1 }), code('badProvisionerOptions', /bogus/));
    assert.throws(
      parse({ issuer: ISSUER, audience: 'a', jwks }, '{}'),
      code('badProvisionerOptions', /no key of its own/),
    );
  });
});
