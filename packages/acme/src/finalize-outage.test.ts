import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openStore } from '@shortleaf/store';
import { startPostgres } from '@shortleaf/store/postgres-testing';
import { memoryLogger } from '../../authority/src/test-fixtures.js';
import { AcmeError } from './errors.js';
import { settleInvalid } from './orders.js';
import { NO_ACME_TELEMETRY, type OrderRecord } from './ports.js';

// finalize moves an order to `processing` before issuing; when issuance fails because the database
// went away, marking the order `invalid` fails too. Left there, the order stays `processing` until
// it expires and its client polls it for a day (seen through HAProxy during a PostgreSQL restart).
describe('an order whose finalize failed during a database outage', () => {
  it('is settled invalid once the database is back', async (t) => {
    const server = await startPostgres({ logStatements: false });
    t.after(() => server.destroy());
    const store = await openStore({ engine: 'postgres', url: await server.createDatabase() });
    t.after(() => store.close());
    const t0 = new Date();
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
    const order: OrderRecord = {
      id: 'order-1',
      accountId: 'acct-1',
      status: 'pending',
      identifiers: [{ type: 'dns', value: 'svc.test' }],
      authorizationIds: [],
      notBefore: null,
      notAfter: null,
      expires: new Date(t0.getTime() + 3_600_000),
      error: null,
      certificateSerial: null,
      replaces: null,
      replacesSerial: null,
      createdAt: t0,
    };
    await store.acme.createOrder(order, []);
    assert.ok(await store.acme.transitionOrder('order-1', 'pending', { status: 'processing' }));

    await server.stop();
    const logger = memoryLogger();
    const problem = new AcmeError(
      'serverInternal',
      'issuance failed; the order is invalid, create a new one',
    ).toProblem();
    await settleInvalid(
      { store: store.acme, telemetry: NO_ACME_TELEMETRY, clock: { now: () => new Date() }, logger },
      order,
      problem,
    );
    assert.ok(
      logger.lines.some((l) => l.event === 'acme_order_settle_retry'),
      'the failed write is retried',
    );
    await server.start();

    const deadline = Date.now() + 20_000;
    let status = (await store.acme.getOrder('order-1').catch(() => null))?.status;
    while (status !== 'invalid' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      status = (await store.acme.getOrder('order-1').catch(() => null))?.status;
    }
    assert.equal(status, 'invalid', 'the order no longer waits in processing');
  });
});
