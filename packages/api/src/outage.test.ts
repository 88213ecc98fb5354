import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { generateKeyPair } from '@shortleaf/pki';
import { startPostgres } from '@shortleaf/store/postgres-testing';
import { createAuthority, loadActiveIssuer } from '@shortleaf/authority';
import {
  AUD,
  T0,
  URLS,
  makeCsr,
  memoryLogger,
  mint,
  movableClock,
  passphraseSealer,
  type TestProvisioner,
} from '../../authority/src/test-fixtures.js';
import { postgresDatabase, setUpIntermediate } from '../../authority/src/test-instances.js';
import { createApiApp } from './app.js';
import { PROBLEM_TYPE_PREFIX, RETRY_AFTER_SECONDS } from './problems.js';

// Issue 14, "Faults": while PostgreSQL restarts, a request that needs the database gets a
// retriable 503 problem with Retry-After, never a 500; the next one after it is back is served.
describe('REST front door through a PostgreSQL restart', () => {
  it('answers 503 storageUnavailable with Retry-After while the database is down, and serves again after', async (t) => {
    const server = await startPostgres();
    t.after(() => server.destroy());
    const store = await (await postgresDatabase(() => server.createDatabase())(t))();
    const clock = movableClock(T0);
    const sealer = passphraseSealer();
    const logger = memoryLogger();
    await setUpIntermediate(store, sealer, clock);
    const { privateKey, publicKey } = generateKeyPair('EC-P256');
    const ops: TestProvisioner = {
      name: 'ops',
      alg: 'ES256',
      privateJwk: privateKey.export({ format: 'jwk' }),
      publicJwk: publicKey.export({ format: 'jwk' }),
    };
    await store.addProvisioner({
      name: ops.name,
      type: 'jwk',
      publicJwk: JSON.stringify(ops.publicJwk),
      policy: '{}',
      createdAt: T0,
    });
    const authority = createAuthority({
      store,
      issuer: await loadActiveIssuer(store, sealer),
      clock,
      random: (n) => new Uint8Array(randomBytes(n)),
      urls: URLS,
      logger,
    });
    const app = createApiApp({
      authority,
      signAudiences: [AUD],
      clientCertificate: () => null,
      requester: () => 'test',
      roots: [],
      logger,
      maxBodyBytes: 64 * 1024,
    });
    const sign = async () =>
      app.request('/api/v1/sign', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          csr: makeCsr(['svc.internal']).pem,
          token: await mint(ops, { subject: 'svc.internal', now: clock.now() }),
        }),
      });

    await server.stop();
    const down = await sign();
    const problem = (await down.json()) as { type: string; status: number };
    assert.equal(down.status, 503);
    assert.deepEqual([problem.type, problem.status], [`${PROBLEM_TYPE_PREFIX}storageUnavailable`, 503]);
    assert.equal(down.headers.get('retry-after'), String(RETRY_AFTER_SECONDS));
    assert.equal(logger.lines.filter((l) => l.event === 'request_failed').length, 0, 'not logged as a failure of ours');

    await server.start();
    const deadline = Date.now() + 30_000;
    let up = await sign();
    while (up.status === 503 && Date.now() < deadline) {
      await sleep(100);
      up = await sign();
    }
    assert.equal(up.status, 201, await up.text());
  });
});
