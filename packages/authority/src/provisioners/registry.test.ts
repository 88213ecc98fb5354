import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generateKeyPair } from '@shortleaf/pki';
import { AuthorityError } from '../errors.js';
import {
  BUILT_IN_PROVISIONERS,
  acmeProvisioner,
  createProvisionerRegistry,
  jwkProvisioner,
  type ProvisionerType,
} from './index.js';

const publicJwk = (kind: 'EC-P256' | 'Ed25519' | 'RSA' = 'EC-P256') =>
  JSON.stringify(generateKeyPair(kind).publicKey.export({ format: 'jwk' }));
const refusedWith = (code: string, fragment: string) => (err: unknown) => {
  assert.ok(err instanceof AuthorityError, String(err));
  assert.equal(err.code, code);
  assert.ok(err.message.includes(fragment), err.message);
  return true;
};

describe('provisioner registry', () => {
  it('knows jwk, acme, kubernetes and oidc, and refuses an unknown type with unknownProvisionerType naming the types', () => {
    assert.equal(BUILT_IN_PROVISIONERS.get('jwk'), jwkProvisioner);
    assert.equal(BUILT_IN_PROVISIONERS.get('acme').type, 'acme');
    assert.deepEqual(
      BUILT_IN_PROVISIONERS.types.map((t) => t.type),
      ['jwk', 'acme', 'kubernetes', 'oidc'],
    );
    for (const unknown of ['k8s', 'JWK', '', '__proto__', 'constructor']) {
      assert.throws(
        () => BUILT_IN_PROVISIONERS.get(unknown),
        refusedWith('unknownProvisionerType', 'the types are jwk, acme'),
      );
      assert.equal(BUILT_IN_PROVISIONERS.find(unknown), undefined);
    }
  });

  it('refuses a type registered twice', () => {
    assert.throws(() => createProvisionerRegistry([jwkProvisioner, jwkProvisioner]), /registered twice/);
  });

  it('reads tokens with the algorithms of the types that take them, and names those types', () => {
    assert.deepEqual(BUILT_IN_PROVISIONERS.tokenAlgorithms, [
      'ES256',
      'EdDSA',
      'RS256',
      'RS384',
      'RS512',
      'PS256',
      'ES384',
    ]);
    assert.equal(BUILT_IN_PROVISIONERS.tokenLabels, 'JWK or Kubernetes or OIDC');
    // A new token type widens both, without touching the authority.
    const bearer: ProvisionerType = {
      type: 'bearer',
      label: 'Bearer',
      summary: 'bearer',
      parse: () => ({}),
      singleUse: false,
      mtlsRenewalByDefault: true,
      authenticateAgain: 'x',
      tokens: {
        algorithms: ['RS256', 'ES256'],
        create: () => {
          throw new Error('unused');
        },
      },
    };
    const wider = createProvisionerRegistry([jwkProvisioner, acmeProvisioner(), bearer]);
    assert.deepEqual(wider.tokenAlgorithms, ['ES256', 'EdDSA', 'RS256']);
    assert.equal(wider.tokenLabels, 'JWK or Bearer');
  });

  it('says per type whether a credential is single-use and how its holders renew', () => {
    assert.equal(jwkProvisioner.singleUse, true);
    assert.equal(jwkProvisioner.mtlsRenewalByDefault, true);
    assert.equal(BUILT_IN_PROVISIONERS.get('acme').singleUse, false);
    assert.equal(BUILT_IN_PROVISIONERS.get('acme').mtlsRenewalByDefault, false);
    assert.equal(BUILT_IN_PROVISIONERS.get('acme').tokens, undefined, 'ACME takes no tokens');
  });
});

describe('each type parses its own options', () => {
  it('jwk: a public EC P-256 or Ed25519 key, no options', () => {
    const ec = publicJwk();
    assert.deepEqual(jwkProvisioner.parse({ publicJwk: ec, options: {} }), { publicJwk: JSON.parse(ec) as unknown });
    assert.equal(jwkProvisioner.parse({ publicJwk: publicJwk('Ed25519'), options: {} }).publicJwk.crv, 'Ed25519');
  });

  it('jwk: refuses no key, a non-JSON key, an RSA key, a private key and any option', () => {
    const privateJwk = JSON.stringify(generateKeyPair('EC-P256').privateKey.export({ format: 'jwk' }));
    const bad: Array<[string | null, unknown, string]> = [
      [null, {}, 'needs the public key'],
      ['{not json', {}, 'JSON Web Key'],
      ['[]', {}, 'JSON Web Key object'],
      [publicJwk('RSA'), {}, 'P-256'],
      [JSON.stringify({ kty: 'EC', crv: 'P-384', x: 'a', y: 'b' }), {}, 'P-256'],
      [privateJwk, {}, 'public half'],
      [publicJwk(), { kty: 'OKP' }, 'no options'],
      [publicJwk(), null, 'no options'],
    ];
    for (const [key, options, fragment] of bad) {
      assert.throws(
        () => jwkProvisioner.parse({ publicJwk: key, options }),
        refusedWith('badProvisionerOptions', fragment),
      );
    }
  });

  it("acme: a JSON object and no key; the apps give it the ACME front door's parser", () => {
    const acme = BUILT_IN_PROVISIONERS.get('acme');
    assert.deepEqual(acme.parse({ publicJwk: null, options: { requireEab: true } }), { requireEab: true });
    assert.throws(
      () => acme.parse({ publicJwk: publicJwk(), options: {} }),
      refusedWith('badProvisionerOptions', 'no key'),
    );
    for (const options of [null, [], 'x', 3])
      assert.throws(
        () => acme.parse({ publicJwk: null, options }),
        refusedWith('badProvisionerOptions', 'JSON object'),
      );
    // With a stricter parser (the front door's), its refusal is what the caller sees.
    const strict = acmeProvisioner((doc) => {
      if (
        (doc as { requireEab?: unknown }).requireEab !== undefined &&
        typeof (doc as { requireEab?: unknown }).requireEab !== 'boolean'
      )
        throw new TypeError('requireEab must be true or false');
      return doc;
    });
    assert.throws(
      () => strict.parse({ publicJwk: null, options: { requireEab: 'yes' } }),
      /requireEab must be true or false/,
    );
  });
});
