import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createAuthority, type Authority } from './authority.js';
import { AuthorityError } from './errors.js';
import { DEFAULT_IDENTITY_LIMIT, formatIdentityLimit, parseIdentityLimit } from './identity-limit.js';
import type { ProvisionerRow } from './ports.js';
import { BUILT_IN_PROVISIONERS, createTokenAuthorizer } from './provisioners/index.js';
import { kubernetesIdentity } from './provisioners/kubernetes.js';
import { idpKey, kubeletClaims, mintIdpToken, type IdpKey } from './provisioners/test-idp.js';
import { parseTemplates } from './template.js';
import { AUD, HOUR, T0, URLS, createTestCa, makeCsr, rejectsWith, type TestCa } from './test-fixtures.js';

const ISSUER = 'https://kubernetes.default.svc.cluster.local';

describe('--max-certificates-per-identity is N/PERIOD or none', () => {
  it('parses and writes back a limit', () => {
    assert.deepEqual(parseIdentityLimit('20/1h'), { max: 20, periodMs: HOUR });
    assert.equal(formatIdentityLimit(parseIdentityLimit('500/1d')), '500/1d');
    assert.equal(parseIdentityLimit('none'), null);
    assert.equal(formatIdentityLimit(null), 'none');
  });

  it('refuses what it cannot read, a zero, and windows out of bounds, as badProvisionerOptions', () => {
    for (const bad of ['20', '20/', '/1h', '0/1h', '20/1x', '-1/1h', '20/0s', '20/31d', 'unlimited', 20]) {
      assert.throws(
        () => parseIdentityLimit(bad),
        (err: unknown) => err instanceof AuthorityError && err.code === 'badProvisionerOptions',
        String(bad),
      );
    }
  });
});

describe('a Kubernetes identity is its pod, or its service account when the token names no pod', () => {
  it('names both forms', () => {
    assert.equal(
      kubernetesIdentity({ namespace: 'prod', serviceaccount: 'api', pod: 'api-1' }),
      'system:serviceaccount:prod:api/pod/api-1',
    );
    assert.equal(kubernetesIdentity({ namespace: 'prod', serviceaccount: 'api' }), 'system:serviceaccount:prod:api');
  });
});

describe("an OIDC identity is the ID token's iss and sub", () => {
  it("grants it with the provisioner's limit, the default when none is set, and none when lifted", async () => {
    const key = idpKey('ES256');
    const nowS = Math.floor(T0.getTime() / 1000);
    const rows = new Map<string, ProvisionerRow>();
    const add = (name: string, audience: string, extra: Record<string, unknown> = {}) =>
      rows.set(name, {
        name,
        type: 'oidc',
        publicJwk: null,
        policy: '{}',
        options: JSON.stringify({ issuer: 'https://idp.test', audience, jwks: { keys: [key.publicJwk] }, ...extra }),
        createdAt: T0,
      });
    add('engineers', 'cli');
    add('ci', 'ci', { maxCertificatesPerIdentity: '5/10m' });
    add('open', 'open', { maxCertificatesPerIdentity: 'none' });
    const tokens = createTokenAuthorizer({
      registry: BUILT_IN_PROVISIONERS,
      getProvisioner: async (name) => rows.get(name) ?? null,
      listProvisioners: async () => [...rows.values()],
      now: () => T0,
      maxNames: 100,
    });
    const grantFor = async (aud: string, sub: unknown = 'repo:acme/api:ref:refs/heads/main') =>
      tokens.authorizeSign(
        await mintIdpToken(key, { iss: 'https://idp.test', aud, sub, iat: nowS, exp: nowS + 600 }),
        [],
      );
    assert.deepEqual((await grantFor('cli')).perIdentity, {
      identity: 'https://idp.test#repo:acme/api:ref:refs/heads/main',
      limit: DEFAULT_IDENTITY_LIMIT,
    });
    assert.deepEqual((await grantFor('ci')).perIdentity?.limit, { max: 5, periodMs: 10 * 60_000 });
    assert.equal((await grantFor('open')).perIdentity?.limit, null);
    await rejectsWith(grantFor('cli', ''), 'tokenMalformed', 'sub');
  });
});

describe('the per-identity limit on reusable bearer tokens', () => {
  let ca: TestCa;
  let authority: Authority;
  let key: IdpKey;
  before(async () => {
    ca = await createTestCa();
    key = idpKey('RS256');
    await ca.store.addProvisioner({
      name: 'cluster',
      type: 'kubernetes',
      publicJwk: null,
      policy: '{}',
      options: JSON.stringify({
        issuer: ISSUER,
        audience: 'shortleaf',
        jwks: { keys: [key.publicJwk] },
        maxCertificatesPerIdentity: '2/1h',
      }),
      createdAt: T0,
    });
    authority = createAuthority({
      store: ca.store,
      issuer: ca.issuer,
      clock: ca.clock,
      random: (n) => new Uint8Array(randomBytes(n)),
      urls: URLS,
      logger: ca.logger,
      templates: parseTemplates({ cluster: { uris: ['spiffe://example.org/ns/{namespace}/sa/{serviceaccount}'] } }),
    });
  });
  after(() => ca.close());

  /** A fresh projected token for a pod, issued now by the CA's clock. */
  const token = (pod: string) =>
    mintIdpToken(
      key,
      kubeletClaims({
        issuer: ISSUER,
        audience: 'shortleaf',
        namespace: 'prod',
        serviceAccount: 'api',
        pod,
        iat: Math.floor(ca.clock.now().getTime() / 1000),
      }),
    );
  const sign = async (pod: string) =>
    authority.sign({
      csr: makeCsr([], { commonName: null }).pem,
      token: await token(pod),
      audiences: [AUD],
      requester: '10.1.2.3',
    });

  it('issues up to the limit, records the identity as requester, then refuses with rateLimited and when to retry', async () => {
    const first = await sign('api-1');
    ca.clock.advance(10 * 60_000);
    await sign('api-1');
    const row = await ca.store.getCertificate(first.serial);
    assert.equal(row?.requester, 'system:serviceaccount:prod:api/pod/api-1');
    const audit = (await ca.store.listAudit({ action: 'issue' })).find((e) => e.serial === first.serial);
    assert.equal(audit?.detail.address, '10.1.2.3', 'the network address stays in the audit entry');

    ca.clock.advance(10 * 60_000);
    const before = await ca.counts();
    const refused = await rejectsWith(sign('api-1'), 'rateLimited', 'the limit is 2/1h');
    // The first certificate leaves the window 40 minutes from now.
    assert.equal((refused as AuthorityError).retryAfterS, 40 * 60);
    assert.deepEqual(await ca.counts(), before, 'a refusal issues and records nothing');
  });

  it('another identity of the same provisioner is not affected', async () => {
    await sign('api-2');
  });

  it('the window slides: room comes back when the oldest certificate leaves it, one at a time', async () => {
    ca.clock.advance(40 * 60_000 + 1000); // the first certificate of api-1 has left the window
    await sign('api-1');
    await rejectsWith(sign('api-1'), 'rateLimited', 'api-1');
    ca.clock.advance(10 * 60_000); // and the second
    await sign('api-1');
  });

  it('renewing over mutual TLS does not count: it proves the key, not the token', async () => {
    ca.clock.advance(2 * HOUR);
    const issued = await sign('api-3');
    await sign('api-3');
    const renewed = await authority.renew({ clientCertificate: issued.der, requester: '10.1.2.3' });
    assert.ok(renewed.serial !== issued.serial);
    await authority.renew({ clientCertificate: renewed.der, requester: '10.1.2.3' });
    await rejectsWith(sign('api-3'), 'rateLimited', 'api-3');
  });
});
