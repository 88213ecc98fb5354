import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createAuthority, type Authority } from '../authority.js';
import {
  AUD,
  T0,
  URLS,
  addProvisioner,
  createTestCa,
  makeCsr,
  mint,
  rejectsWith,
  unchanged,
  type TestCa,
  type TestProvisioner,
} from '../test-fixtures.js';
import { acmeProvisioner, createProvisionerRegistry, jwkProvisioner, type ProvisionerType } from './index.js';

/**
 * A type whose tokens are not single-use (as a Kubernetes service-account token is not): it
 * verifies like JWK, but grants no use to spend. Registered next to the built-in ones, it needs
 * no change to the authority, and the store takes its type now that no CHECK names the types.
 */
const reusable: ProvisionerType = {
  ...jwkProvisioner,
  type: 'reusable',
  label: 'Reusable',
  summary: 'reusable (test)',
  singleUse: false,
  tokens: {
    algorithms: ['ES256'],
    create(deps) {
      const jwk = jwkProvisioner.tokens!.create(deps);
      return {
        authorizeSign: async (header, row, audiences) => ({
          ...(await jwk.authorizeSign(header, row, audiences)),
          use: null,
        }),
        authorizeRevoke: async (header, row, audiences) => ({
          ...(await jwk.authorizeRevoke(header, row, audiences)),
          use: null,
        }),
      };
    },
  },
};

/** A type that claims single use but grants none: a bug the authority must not turn into reuse. */
const forgetful: ProvisionerType = { ...reusable, type: 'forgetful', label: 'Forgetful', singleUse: true };

describe('the authority asks the provisioner, whatever its type', () => {
  let ca: TestCa;
  let authority: Authority;
  let ops: TestProvisioner;
  let pod: TestProvisioner;

  before(async () => {
    ca = await createTestCa();
    ops = await addProvisioner(ca.store, 'ops');
    pod = await addProvisioner(ca.store, 'pod');
    // The same key material, stored as the new type.
    const row = await ca.store.getProvisioner('pod');
    await ca.store.addProvisioner({ ...row!, name: 'pods', type: 'reusable' });
    await ca.store.addProvisioner({ ...row!, name: 'buggy', type: 'forgetful' });
    pod = { ...pod, name: 'pods' };
    const provisioners = createProvisionerRegistry([jwkProvisioner, acmeProvisioner(), reusable, forgetful]);
    authority = createAuthority({
      store: ca.store,
      issuer: ca.issuer,
      clock: ca.clock,
      random: (n) => new Uint8Array(randomBytes(n)),
      urls: URLS,
      logger: ca.logger,
      provisioners,
    });
  });
  after(() => ca.close());

  const sign = (token: string, name: string) =>
    authority.sign({ csr: makeCsr([name]).pem, token, audiences: [AUD], requester: 'test' });

  it('spends nothing for a credential its type says is not single-use, so it may be presented again', async () => {
    ca.clock.set(T0);
    const token = await mint(pod, { subject: 'api.internal' });
    const before = await ca.counts();
    await sign(token, 'api.internal');
    await sign(token, 'api.internal');
    const now = await ca.counts();
    assert.equal(now.certificates, before.certificates! + 2);
    assert.equal(now.token_uses, before.token_uses, 'no use recorded');
  });

  it('still spends a JWK token once, through the same authority', async () => {
    const token = await mint(ops, { subject: 'db.internal' });
    await sign(token, 'db.internal');
    await rejectsWith(sign(token, 'db.internal'), 'tokenReplayed', 'already been used');
  });

  it('refuses, issuing nothing, when a single-use type grants no use to spend', async () => {
    const token = await mint({ ...pod, name: 'buggy' }, { subject: 'bug.internal' });
    await unchanged(ca, () => rejectsWith(sign(token, 'bug.internal'), 'internal', 'without a use to spend'));
  });

  it('names every type that takes tokens when a token names no provisioner', async () => {
    await rejectsWith(
      sign(await mint(ops, { claims: { iss: 'nobody' } }), 'x.internal'),
      'unknownProvisioner',
      'no JWK or Reusable or Forgetful provisioner named "nobody"',
    );
  });
});
