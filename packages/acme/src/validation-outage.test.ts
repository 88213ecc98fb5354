import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { openStore } from '@shortleaf/store';
import { startPostgres } from '@shortleaf/store/postgres-testing';
import { memoryLogger } from '../../authority/src/test-fixtures.js';
import type { AuthorizationRecord, ChallengeRecord } from './ports.js';
import { createValidationRunner } from './validation-runner.js';

// A challenge left processing is resumed when its client polls; if the database goes down at that
// moment the validation's first read fails. It must be logged and left for the next poll: a
// rejection nobody handles ends the whole server.
describe('validation runner through a PostgreSQL outage', () => {
  it('logs a resumed validation it cannot read, and the process lives on', async (t) => {
    const server = await startPostgres();
    t.after(() => server.destroy());
    const store = await openStore({ engine: 'postgres', url: await server.createDatabase() });
    t.after(() => store.close());
    const logger = memoryLogger();
    let validated = 0;
    const runner = createValidationRunner({
      store: store.acme,
      validate: async () => void validated++,
      clock: { now: () => new Date() },
      logger,
      authorizationLifetimeMs: 3_600_000,
    });
    await server.stop();
    const challenge = { id: 'chall-1', type: 'http-01', token: 'tok', status: 'processing' } as ChallengeRecord;
    const authorization = { id: 'authz-1', identifier: { type: 'dns', value: 'svc.test' } } as AuthorizationRecord;
    runner.resume(challenge, authorization, 'tok.thumb', { account: 'acct-1', provisioner: 'acme' });
    await runner.drain();
    await sleep(50); // an unhandled rejection would be reported by now
    assert.equal(validated, 0, 'nothing validated without knowing the challenge is still processing');
    assert.ok(logger.lines.some((l) => l.event === 'acme_validation_record_failed' && l.level === 'error'));
    assert.equal(runner.has('chall-1'), false, 'the next poll may resume it');
  });
});
