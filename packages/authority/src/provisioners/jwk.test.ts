import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { ProvisionerRow } from '../ports.js';
import { readTokenHeader } from '../token.js';
import { AUD, T0, at, mint, rejectsWith, unsecuredToken, type TestProvisioner } from '../test-fixtures.js';
import { generateKeyPair, nameToString } from '@shortleaf/pki';
import type { JWK } from 'jose';
import { jwkProvisioner } from './jwk.js';
import { BUILT_IN_PROVISIONERS, createTokenAuthorizer } from './index.js';

function testProvisioner(name: string, kty: 'EC' | 'OKP' = 'EC'): { p: TestProvisioner; row: ProvisionerRow } {
  const { privateKey, publicKey } = generateKeyPair(kty === 'OKP' ? 'Ed25519' : 'EC-P256');
  const publicJwk = publicKey.export({ format: 'jwk' }) as JWK;
  const p = {
    name,
    alg: kty === 'OKP' ? ('EdDSA' as const) : ('ES256' as const),
    privateJwk: privateKey.export({ format: 'jwk' }) as JWK,
    publicJwk,
  };
  return {
    p,
    row: { name, type: 'jwk', publicJwk: JSON.stringify(publicJwk), policy: '{}', options: '{}', createdAt: T0 },
  };
}

describe('the JWK provisioner authorizes from its one-time tokens', () => {
  const authorizer = jwkProvisioner.tokens!.create({ now: () => T0, maxNames: 100 });
  let ops: ReturnType<typeof testProvisioner>;
  before(() => {
    ops = testProvisioner('ops');
  });

  it("grants the token's names and claims, and a use to spend until exp plus the skew", async () => {
    const token = await mint(ops.p, {
      subject: 'api.internal',
      sans: ['api.internal', 'spiffe://example.org/api'],
      claims: { namespace: 'prod' },
    });
    const grant = await authorizer.authorizeSign(readTokenHeader(token), ops.row, [AUD]);
    assert.equal(grant.provisioner, 'ops');
    assert.deepEqual(grant.subject, { kind: 'dns', value: 'api.internal' });
    assert.deepEqual(grant.names.map(nameToString), ['dns:api.internal', 'uri:spiffe://example.org/api']);
    assert.deepEqual(grant.claims, { namespace: 'prod' });
    assert.ok(grant.use !== null, 'a JWK token is single-use: its grant always carries a use');
    assert.equal(grant.use.provisioner, 'ops');
    assert.equal(grant.use.expiresAt.getTime(), at(T0, 360_000).getTime());
  });

  it("grants a revoke token's serial and a use", async () => {
    const token = await mint(ops.p, { subject: '0a1b2c', sans: ['0a1b2c'] });
    const grant = await authorizer.authorizeRevoke(readTokenHeader(token), ops.row, [AUD]);
    assert.equal(grant.serial, '0a1b2c');
    assert.ok(grant.use !== null);
  });

  it("verifies against the row it is given: another provisioner's key does not verify", async () => {
    const other = testProvisioner('ops');
    await rejectsWith(
      authorizer.authorizeSign(readTokenHeader(await mint(ops.p)), other.row, [AUD]),
      'tokenSignature',
      'signature',
    );
  });

  it('refuses a row without a key as an unknown provisioner', async () => {
    await rejectsWith(
      authorizer.authorizeSign(readTokenHeader(await mint(ops.p)), { ...ops.row, publicJwk: null }, [AUD]),
      'unknownProvisioner',
      '"ops"',
    );
  });

  it('keeps its one-time token rules: five minutes at most, a sub among the sans', async () => {
    await rejectsWith(
      authorizer.authorizeSign(readTokenHeader(await mint(ops.p, { lifetimeSeconds: 600 })), ops.row, [AUD]),
      'tokenLifetime',
      '600s',
    );
    await rejectsWith(
      authorizer.authorizeSign(
        readTokenHeader(await mint(ops.p, { subject: 'a.internal', sans: ['b.internal'] })),
        ops.row,
        [AUD],
      ),
      'tokenMalformed',
      'must be one of its "sans"',
    );
  });
});

describe("the authority's token authorizer finds the provisioner a token names", () => {
  const ops = testProvisioner('ops');
  const edge = testProvisioner('edge', 'OKP');
  const rows = new Map<string, ProvisionerRow>([
    ['ops', ops.row],
    ['edge', edge.row],
    ['acme', { name: 'acme', type: 'acme', publicJwk: null, policy: '{}', options: '{}', createdAt: T0 }],
    [
      'future',
      { name: 'future', type: 'from-a-newer-version', publicJwk: null, policy: '{}', options: '{}', createdAt: T0 },
    ],
  ]);
  let lookups = 0;
  const tokens = createTokenAuthorizer({
    registry: BUILT_IN_PROVISIONERS,
    getProvisioner: async (name) => (lookups++, rows.get(name) ?? null),
    now: () => T0,
    maxNames: 100,
  });

  it('hands a token to the type of the provisioner its iss names', async () => {
    assert.equal((await tokens.authorizeSign(await mint(ops.p), [AUD])).row.name, 'ops');
    assert.equal((await tokens.authorizeSign(await mint(edge.p), [AUD])).row.name, 'edge');
  });

  it('refuses a token naming no provisioner, one that takes no tokens, or one of a type this build does not know', async () => {
    await rejectsWith(
      tokens.authorizeSign(await mint(ops.p, { claims: { iss: 'nobody' } }), [AUD]),
      'unknownProvisioner',
      'no JWK or Kubernetes or OIDC provisioner named "nobody"',
    );
    await rejectsWith(
      tokens.authorizeSign(await mint(ops.p, { claims: { iss: 'acme' } }), [AUD]),
      'unknownProvisioner',
      'no JWK or Kubernetes or OIDC provisioner named "acme"',
    );
    await rejectsWith(
      tokens.authorizeRevoke(await mint(ops.p, { claims: { iss: 'future' } }), [AUD]),
      'unknownProvisioner',
      '"future"',
    );
  });

  it('refuses an algorithm no type takes before looking anything up', async () => {
    const before = lookups;
    await rejectsWith(tokens.authorizeSign(unsecuredToken(ops.p), [AUD]), 'tokenUnsigned', '"none" is refused');
    assert.equal(lookups, before);
  });
});
