import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { testDatabaseUrl } from '@shortleaf/store/postgres-testing';
import { createAuthority, type Authority } from './authority.js';
import { loadActiveIssuer } from './issuer.js';
import { idpKey, kubeletClaims, mintIdpToken } from './provisioners/test-idp.js';
import { parseTemplates } from './template.js';
import { AUD, T0, URLS, makeCsr, memoryLogger, movableClock, passphraseSealer, rejectsWith } from './test-fixtures.js';
import { postgresDatabase, setUpIntermediate } from './test-instances.js';

const ISSUER = 'https://kubernetes.default.svc.cluster.local';

// Issue 14: with several instances on one PostgreSQL, a leaked token sent round-robin to each of
// them gets no more certificates than one instance would give it.
describe('the per-identity limit holds across instances on one PostgreSQL', () => {
  it('three certificates through two instances reach a 3/1h limit; the next is refused by either', async (t) => {
    const open = await postgresDatabase(testDatabaseUrl)(t);
    const clock = movableClock(T0);
    const sealer = passphraseSealer();
    const first = await open();
    await setUpIntermediate(first, sealer, clock);
    const key = idpKey('RS256');
    await first.addProvisioner({
      name: 'cluster',
      type: 'kubernetes',
      publicJwk: null,
      policy: '{}',
      options: JSON.stringify({
        issuer: ISSUER,
        audience: 'shortleaf',
        jwks: { keys: [key.publicJwk] },
        maxCertificatesPerIdentity: '3/1h',
      }),
      createdAt: T0,
    });
    const templates = parseTemplates({
      cluster: { uris: ['spiffe://example.org/ns/{namespace}/sa/{serviceaccount}'] },
    });
    const instances: Authority[] = [];
    for (const store of [first, await open()]) {
      instances.push(
        createAuthority({
          store,
          issuer: await loadActiveIssuer(store, sealer),
          clock,
          random: (n) => new Uint8Array(randomBytes(n)),
          urls: URLS,
          logger: memoryLogger(),
          templates,
        }),
      );
    }
    // One token, replayed: what a thief holds.
    const token = await mintIdpToken(
      key,
      kubeletClaims({
        issuer: ISSUER,
        audience: 'shortleaf',
        namespace: 'prod',
        serviceAccount: 'api',
        pod: 'api-1',
        iat: Math.floor(T0.getTime() / 1000),
      }),
    );
    const sign = (i: number) =>
      instances[i]!.sign({ csr: makeCsr([], { commonName: null }).pem, token, audiences: [AUD], requester: 'x' });
    await sign(0);
    await sign(1);
    await sign(0);
    await rejectsWith(sign(1), 'rateLimited', 'the limit is 3/1h');
    await rejectsWith(sign(0), 'rateLimited', 'the limit is 3/1h');
    const counted = await first.countCertificatesSince(
      'cluster',
      'system:serviceaccount:prod:api/pod/api-1',
      new Date(T0.getTime() - 1),
    );
    assert.equal(counted.count, 3);
  });
});
