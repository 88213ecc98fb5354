import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { openSealer, scryptKdf, type Kdf, type Sealer } from '@shortleaf/store';
import { FlattenedSign } from 'jose';
import { eabSealContext, verifyExternalAccountBinding } from './eab.js';
import { AcmeError } from './errors.js';
import { BASE, createAcmeHarness, newKey, type AcmeHarness } from './test-fixtures.js';

// Hole 9: every unseal ran scrypt (~120 ms of CPU), before the MAC was checked, so each wrong
// External Account Binding cost the server that much. With the key derived once per process, a
// wrong MAC costs an HKDF, an AES-GCM open and an HMAC.
describe('External Account Binding cost', () => {
  let h: AcmeHarness;
  let sealer: Sealer;
  let derivations = 0;
  before(async () => {
    h = await createAcmeHarness();
    const kdf: Kdf = (p, s, params) => ((derivations += 1), scryptKdf(p, s, params));
    sealer = await openSealer('eab test passphrase', h.ca.store, { kdf });
  });
  after(() => h.close());

  it('checks 50 wrong MACs without deriving a key, then accepts the right one', async () => {
    const provisioner = 'acme';
    const kid = `kid-${randomBytes(6).toString('hex')}`;
    const secret = new Uint8Array(randomBytes(32));
    await h.ca.store.acme.createEabKey({
      kid,
      provisioner,
      sealedKey: await sealer.seal(secret, eabSealContext(provisioner, kid)),
      createdAt: h.ca.clock.now(),
    });
    const account = await newKey();
    const newAccountUrl = `${BASE}/acme/${provisioner}/new-account`;
    const bind = (key: Uint8Array) =>
      new FlattenedSign(new TextEncoder().encode(JSON.stringify(account.publicJwk)))
        .setProtectedHeader({ alg: 'HS256', kid, url: newAccountUrl })
        .sign(key);
    const services = { store: h.ca.store.acme, sealer };
    const before = derivations;
    for (let i = 0; i < 50; i++) {
      const binding = await bind(new Uint8Array(randomBytes(32)));
      await assert.rejects(
        verifyExternalAccountBinding(services, { binding, provisioner, newAccountUrl, accountJwk: account.publicJwk }),
        (err: unknown) => {
          assert.ok(err instanceof AcmeError);
          assert.equal(err.type, 'unauthorized');
          assert.match(err.message, /MAC does not verify/);
          return true;
        },
      );
    }
    assert.equal(derivations - before, 0, 'no key derivation per attempt');
    assert.equal(
      await verifyExternalAccountBinding(services, {
        binding: await bind(secret),
        provisioner,
        newAccountUrl,
        accountJwk: account.publicJwk,
      }),
      kid,
    );
    assert.equal(derivations, 1, 'one derivation in all: at open');
  });
});
