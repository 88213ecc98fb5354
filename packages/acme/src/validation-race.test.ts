import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openStore } from '@shortleaf/store';
import { memoryLogger } from '../../authority/src/test-fixtures.js';
import type { AuthorizationRecord, ChallengeRecord } from './ports.js';
import { createValidationRunner } from './validation-runner.js';

// With several instances, a client polling instance B resumes a challenge instance A is still
// validating; whichever records first wins. The loser must not log an error for it: that would
// fire on ordinary load-balanced traffic.
describe('a validation another instance settled first', () => {
  it('is logged as settled elsewhere, not as a failure', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'shortleaf-race-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const store = await openStore({ engine: 'sqlite', path: join(dir, 'ca.db') });
    t.after(() => store.close());
    const t0 = new Date();
    const later = new Date(t0.getTime() + 3_600_000);
    await store.addProvisioner({
      name: 'acme',
      type: 'acme',
      publicJwk: null,
      policy: '{}',
      options: '{}',
      createdAt: t0,
    });
    await store.acme.createAccount({
      id: 'acct-1',
      provisioner: 'acme',
      thumbprint: 'tp-1',
      jwk: '{"kty":"EC"}',
      status: 'valid',
      contact: [],
      eabKid: null,
      createdAt: t0,
    });
    const challenge: ChallengeRecord = {
      id: 'chall-1',
      authorizationId: 'authz-1',
      type: 'http-01',
      token: 'tok',
      status: 'pending',
      validated: null,
      error: null,
    };
    const authorization: AuthorizationRecord = {
      id: 'authz-1',
      accountId: 'acct-1',
      identifier: { type: 'dns', value: 'svc.test' },
      wildcard: false,
      status: 'pending',
      expires: later,
      challenges: [challenge],
      createdAt: t0,
    };
    await store.acme.createOrder(
      {
        id: 'order-1',
        accountId: 'acct-1',
        status: 'pending',
        identifiers: [authorization.identifier],
        authorizationIds: ['authz-1'],
        notBefore: null,
        notAfter: null,
        expires: later,
        error: null,
        certificateSerial: null,
        replaces: null,
        replacesSerial: null,
        createdAt: t0,
      },
      [authorization],
    );
    assert.ok(await store.acme.startChallenge('chall-1'));

    const logger = memoryLogger();
    const runner = createValidationRunner({
      store: store.acme,
      // The other instance records its outcome while this one is still validating.
      validate: async () => store.acme.finishChallenge('chall-1', { valid: true, at: t0, authorizationExpires: later }),
      clock: { now: () => new Date() },
      logger,
      authorizationLifetimeMs: 3_600_000,
    });
    runner.resume({ ...challenge, status: 'processing' }, authorization, 'tok.tp-1', {
      account: 'acct-1',
      provisioner: 'acme',
    });
    await runner.drain();
    assert.ok(logger.lines.some((l) => l.event === 'acme_validation_settled_elsewhere'));
    assert.deepEqual(
      logger.lines.filter((l) => l.level === 'error'),
      [],
      'nothing failed',
    );
    assert.equal((await store.acme.getChallenge('chall-1'))?.status, 'valid', 'the first outcome stands');
  });
});
