import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AcmeOptionsError } from '@shortleaf/acme';
import { AuthorityError } from '@shortleaf/authority';
import { generateKeyPair } from '@shortleaf/pki';
import { openStore, sqliteAt } from './data.js';
import { PROVISIONER_TYPES, addAcmeProvisioner, addJwkProvisioner, addProvisioner } from './provisioners.js';

const code = (c: string) => (err: unknown) => err instanceof AuthorityError && err.code === c;

// Creating provisioners through the registry, against a real store: every refusal writes nothing.
describe('addProvisioner', () => {
  const dir = mkdtempSync(join(tmpdir(), 'shortleaf-provisioners-'));
  let store: Awaited<ReturnType<typeof openStore>>;
  before(async () => {
    store = await openStore(sqliteAt(dir));
  });
  after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("knows the authority's types; ACME options are checked by the ACME front door's parser", () => {
    assert.deepEqual(
      PROVISIONER_TYPES.types.map((t) => t.type),
      ['jwk', 'acme', 'kubernetes', 'oidc'],
    );
    assert.throws(
      () => PROVISIONER_TYPES.get('acme').parse({ publicJwk: null, options: { requireEab: 'yes' } }),
      AcmeOptionsError,
    );
    assert.throws(
      () => PROVISIONER_TYPES.get('acme').parse({ publicJwk: null, options: { bogus: 1 } }),
      AcmeOptionsError,
    );
  });

  it('refuses an unknown type, bad options and a private key, and stores nothing', async () => {
    const publicJwk = JSON.stringify(generateKeyPair('EC-P256').publicKey.export({ format: 'jwk' }));
    const privateJwk = JSON.stringify(generateKeyPair('EC-P256').privateKey.export({ format: 'jwk' }));
    await assert.rejects(
      addProvisioner(store, { name: 'k8s', type: 'k8s', policy: {} }),
      code('unknownProvisionerType'),
    );
    await assert.rejects(
      addAcmeProvisioner(store, { name: 'partners', policy: {}, options: { termsOfService: 'ftp://x' } }),
      AcmeOptionsError,
    );
    await assert.rejects(
      addProvisioner(store, { name: 'ops', type: 'jwk', policy: {}, publicJwk: privateJwk }),
      code('badProvisionerOptions'),
    );
    await assert.rejects(
      addProvisioner(store, { name: 'ops', type: 'jwk', policy: {}, publicJwk, options: { kty: 'OKP' } }),
      code('badProvisionerOptions'),
    );
    assert.deepEqual(await store.listProvisioners(), []);
  });

  it('stores what each type is made of, as given', async () => {
    await addAcmeProvisioner(store, { name: 'partners', policy: {}, options: { requireEab: true } });
    const keyOut = join(dir, 'ops.jwk');
    await addJwkProvisioner(store, { name: 'ops', keyOut, policy: {} });
    assert.ok(existsSync(keyOut));
    const rows = new Map((await store.listProvisioners()).map((p) => [p.name, p]));
    assert.equal(rows.get('partners')?.type, 'acme');
    assert.equal(rows.get('partners')?.options, '{"requireEab":true}');
    assert.equal(rows.get('ops')?.type, 'jwk');
    assert.equal(rows.get('ops')?.options, '{}');
    assert.equal(JSON.parse(rows.get('ops')?.publicJwk ?? '{}').d, undefined);
  });

  it('checks a JWK provisioner before it writes the private key', async () => {
    const keyOut = join(dir, 'again.jwk');
    await assert.rejects(addJwkProvisioner(store, { name: 'ops', keyOut, policy: {} }), /already exists/);
    assert.equal(existsSync(keyOut), false);
  });
});
