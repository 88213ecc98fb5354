import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createRevoker } from './revoke.js';
import { TOKEN_CLOCK_SKEW_S, createTokenVerifier, tokenUse } from './token.js';
import {
  AUD,
  T0,
  addProvisioner,
  at,
  createTestCa,
  makeCsr,
  mint,
  rejectsWith,
  type TestCa,
  type TestProvisioner,
} from './test-fixtures.js';

// Hole: tokens verify until exp + the clock skew, but the pruner forgot spent tokens at exp, so a
// token replayed in the minute after a prune was spent a second time.
describe('a spent token stays spent for as long as it could verify', () => {
  let ca: TestCa;
  let ops: TestProvisioner;

  before(async () => {
    ca = await createTestCa();
    ops = await addProvisioner(ca.store, 'ops', {});
  });
  after(() => ca.close());

  it("records exp + the clock skew as the spent token's expiry, for sign and revoke tokens alike", async () => {
    const verifier = createTokenVerifier({ now: () => T0, publicJwk: async () => JSON.stringify(ops.publicJwk) });
    const token = await mint(ops, { lifetimeSeconds: 300 });
    const exp = T0.getTime() + 300_000;
    assert.equal((await verifier.verifyToken(token, [AUD])).use.expiresAt.getTime(), exp + TOKEN_CLOCK_SKEW_S * 1000);
    const revokeToken = await mint(ops, { subject: 'abcdef', sans: ['abcdef'], lifetimeSeconds: 300 });
    assert.equal(
      (await verifier.verifyRevokeToken(revokeToken, [AUD])).use.expiresAt.getTime(),
      exp + TOKEN_CLOCK_SKEW_S * 1000,
    );
    assert.equal(tokenUse('p', 'jti', 100).expiresAt.getTime(), (100 + TOKEN_CLOCK_SKEW_S) * 1000);
  });

  it('refuses a sign token replayed after a prune that ran past exp but within the skew', async () => {
    ca.clock.set(T0);
    const token = await mint(ops, { subject: 'replay.internal', lifetimeSeconds: 300 });
    await ca.authority.sign({ csr: makeCsr(['replay.internal']).pem, token, audiences: [AUD], requester: 't' });
    const exp = at(T0, 300_000);
    ca.clock.set(at(exp, 30_000));
    await ca.store.pruneTokenUses(ca.clock.now());
    await rejectsWith(
      ca.authority.sign({ csr: makeCsr(['replay.internal']).pem, token, audiences: [AUD], requester: 't' }),
      'tokenReplayed',
      'already been used',
    );
    // Once the token can no longer verify, forgetting it is safe.
    ca.clock.set(at(exp, (TOKEN_CLOCK_SKEW_S + 1) * 1000));
    assert.equal(await ca.store.pruneTokenUses(ca.clock.now()), 1);
    await rejectsWith(
      ca.authority.sign({ csr: makeCsr(['replay.internal']).pem, token, audiences: [AUD], requester: 't' }),
      'tokenExpired',
      'expired',
    );
  });

  it('refuses a revoke token replayed after a prune that ran past exp but within the skew', async () => {
    ca.clock.set(T0);
    const cert = await ca.authority.sign({
      csr: makeCsr(['rv.internal']).pem,
      token: await mint(ops, { subject: 'rv.internal' }),
      audiences: [AUD],
      requester: 't',
    });
    const revoke = createRevoker({ store: ca.store, clock: ca.clock, logger: ca.logger, onRevoked: () => undefined });
    const token = await mint(ops, { subject: cert.serial, sans: [cert.serial], lifetimeSeconds: 300 });
    const once = await ca.authority.authorizeRevocation({
      serial: cert.serial,
      token,
      clientCertificate: null,
      audiences: [AUD],
    });
    await revoke({
      serial: cert.serial,
      reason: 'superseded',
      actor: once.actor,
      requester: 't',
      ...(once.tokenUse === undefined ? {} : { tokenUse: once.tokenUse }),
    });
    ca.clock.set(at(T0, 330_000));
    await ca.store.pruneTokenUses(ca.clock.now());
    const twice = await ca.authority.authorizeRevocation({
      serial: cert.serial,
      token,
      clientCertificate: null,
      audiences: [AUD],
    });
    await rejectsWith(
      revoke({
        serial: cert.serial,
        reason: 'keyCompromise',
        actor: twice.actor,
        requester: 't',
        ...(twice.tokenUse === undefined ? {} : { tokenUse: twice.tokenUse }),
      }),
      'tokenReplayed',
      'already been used',
    );
  });
});
